import Toolbench
import LayerPruning
import LoRAMerge
import Int8Quantization
import FineTune
import LayerwiseKD

/// The one place in code that names the compression passes (the composition root picks the
/// implementations, as swift-log's bootstrap does). Order = the order `slmrec passes` lists.
let registry = PassRegistry([
    PruneLayers.self,
    LoRAMerge.self,
    QuantizeInt8.self,
    FineTune.self,
    LayerwiseKD.self,
])
