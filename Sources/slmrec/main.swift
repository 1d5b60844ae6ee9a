import Engine
import Foundation
let name = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "small"
let cfg = BenchConfig.named(name)!
print("sgemm GFLOP/s:", measureSgemmGFLOPs())
OpProfiler.enabled = true
for r in try EngineBenchmark.run(cfg, seconds: 1, log: { print($0) }) { print(r) }
print(OpProfiler.report())
