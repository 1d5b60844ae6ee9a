// LayerPruning pass
