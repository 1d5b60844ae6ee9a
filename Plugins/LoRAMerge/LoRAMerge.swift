// LoRAMerge pass
