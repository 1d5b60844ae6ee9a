// SASRec (Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018), trained
// with full softmax cross-entropy over all items at every position (Klenitskiy & Vasilev,
// "Turning Dross Into Gold Loss: is BERT4Rec really better than SASRec?", RecSys 2023).
//
//   SASRecModel.swift   config, parameter layout (PyTorch-port names), forward/backward
//   SASRecTrainer.swift windows, batches, the epoch loop, validation, outputs
//   SASRecEval.swift    ranking the valid/test item (sampled 999 and full), as ModelEvaluator
//
// The architecture follows the official code's arrangement (pmixer/SASRec.pytorch, which
// mirrors kang205/SASRec): the attention query is layer-normalised, keys and values are not
// ("pre-LN query"), the residual adds the normalised query, then a LayerNorm, then the
// point-wise feed-forward with its residual around it, and a final LayerNorm.
