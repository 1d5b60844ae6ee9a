// Int8Quantization pass
