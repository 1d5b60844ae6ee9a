#!/usr/bin/env python3
"""Optional tooling: writes the GGUF reference fixture the Swift GGUF tests read
(Tests/GGUFTests/Fixtures/types.gguf and types-expected.safetensors), with gguf-py, the
reference Python implementation of GGUF that llama.cpp maintains and transformers' GGUF
loader uses.

    pip install gguf==0.19.0 numpy
    python3 scripts/make-gguf-fixture.py Tests/GGUFTests/Fixtures

types.gguf holds (a) one metadata entry of every GGUF value type, arrays of strings and of
numbers included, and (b) for every ggml type the Swift reader supports, a (2, 256) tensor:
F32/F16/BF16 and Q4_0/Q4_1/Q5_0/Q5_1/Q8_0 quantized from seeded normal data by gguf-py's own
quantizers; the K-quants (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K), for which gguf-py has dequantizers
only, as seeded random block bytes whose fp16 scale fields are finite. The expected fp32
values are gguf-py's `quants.dequantize` of exactly those bytes, stored in
types-expected.safetensors under the tensor's name; the Swift test requires bit equality.
"""
import json, struct, sys
from pathlib import Path

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q, GGUFWriter, GGUFValueType as V
from gguf.quants import dequantize, quantize

out = Path(sys.argv[1] if len(sys.argv) > 1 else "Tests/GGUFTests/Fixtures")
out.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(20261202)

w = GGUFWriter(str(out / "types.gguf"), arch="llama")   # writes general.architecture
w.add_key_value("test.uint8", 200, V.UINT8)
w.add_key_value("test.int8", -100, V.INT8)
w.add_key_value("test.uint16", 60000, V.UINT16)
w.add_key_value("test.int16", -30000, V.INT16)
w.add_key_value("test.uint32", 4000000000, V.UINT32)
w.add_key_value("test.int32", -2000000000, V.INT32)
w.add_key_value("test.float32", 0.15625, V.FLOAT32)
w.add_key_value("test.bool", True, V.BOOL)
w.add_key_value("test.string", "héllo, 世界 🙂", V.STRING)
w.add_key_value("test.uint64", 18000000000000000000, V.UINT64)
w.add_key_value("test.int64", -9000000000000000000, V.INT64)
w.add_key_value("test.float64", 1e-300, V.FLOAT64)
w.add_array("test.strings", ["a", "", "▁the", "Ġworld", "<0x0A>"])
w.add_array("test.floats", [1.5, -2.25, 0.0])
w.add_key_value("test.int32s", [1, -2, 3], V.ARRAY, sub_type=V.INT32)

expected = {}
def f16_scales(b, offsets):
    """Overwrite the fp16 fields at byte `offsets` of every block with finite random halves."""
    for o in offsets:
        h = (rng.standard_normal(b.shape[0]) * 0.05).astype(np.float16).view(np.uint8).reshape(-1, 2)
        b[:, o:o + 2] = h
    return b

shape = (2, 256)
data = rng.standard_normal(shape).astype(np.float32)
for qt in [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]:
    raw = quantize(data, qt)
    w.add_tensor(qt.name.lower(), raw, raw_shape=raw.shape, raw_dtype=qt)
    expected[qt.name.lower()] = dequantize(raw, qt).astype(np.float32).reshape(shape)

# K-quants: (type size, offsets of fp16 fields) per 256-weight block (ggml-common.h).
kq = {Q.Q2_K: (84, [80, 82]), Q.Q3_K: (110, [108]), Q.Q4_K: (144, [0, 2]), Q.Q5_K: (176, [0, 2]), Q.Q6_K: (210, [208])}
for qt, (ts, offs) in kq.items():
    blocks = rng.integers(0, 256, size=(shape[0] * shape[1] // 256, ts), dtype=np.uint8)
    blocks = f16_scales(blocks, offs)
    raw = blocks.reshape(shape[0], -1)
    w.add_tensor(qt.name.lower(), raw, raw_shape=raw.shape, raw_dtype=qt)
    expected[qt.name.lower()] = dequantize(raw, qt).astype(np.float32).reshape(shape)

w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

# safetensors, written by hand (8-byte header length, JSON header, raw little-endian data).
header, blobs, off = {}, [], 0
for name in sorted(expected):
    b = np.ascontiguousarray(expected[name], dtype="<f4").tobytes()
    header[name] = {"dtype": "F32", "shape": list(expected[name].shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b); off += len(b)
header["__metadata__"] = {"generator": "scripts/make-gguf-fixture.py", "gguf-py": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0"}
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(out / "types-expected.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for b in blobs: f.write(b)
print(f"wrote {out/'types.gguf'} and {out/'types-expected.safetensors'}: {len(expected)} tensors")
