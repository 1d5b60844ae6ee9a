// FineTune pass
