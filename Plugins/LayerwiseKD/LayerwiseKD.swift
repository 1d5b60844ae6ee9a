// LayerwiseKD pass
