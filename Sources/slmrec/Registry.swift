import Foundation
import Toolbench
import LayerPruning
import LoRAMerge
import Int8Quantization

/// The one place in code that names the compression passes (the composition root picks the
/// implementations, as swift-log's bootstrap does). Order = the order `slmrec passes` lists.
let registry = PassRegistry([
    PruneLayers.self,
    LoRAMerge.self,
    QuantizeInt8.self,
])

/// The evaluation hook until the CLI wires the real evaluator (RecData + Evaluation): every
/// evaluated stage records why nothing was measured in its metrics.json.
struct UnconfiguredEvaluator: StageEvaluator {
    func evaluate(stage: StageOutput, spec: EvaluateSpec) throws -> [String: Double] {
        throw EvaluationUnavailable("evaluation not configured (this build has no evaluator wired into slmrec run)")
    }
}
