// SASRec
