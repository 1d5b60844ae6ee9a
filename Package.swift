// swift-tools-version:6.0
// The SLMRec toolbench. Reads like a table: system libraries, the core targets
// (dependencies point one way: ModelFormat ← Engine ← ModelEvaluation ← Training ←
// TrainingKit ← training passes; the host Toolbench needs only ModelFormat, RecData and
// Evaluation's vocabulary; Reports and the CLI compose everything), the pass plugins, and
// one test target per source target.
import PackageDescription

/// A compression pass lives in `Plugins/<name>/` and depends on the host and on the core
/// targets it really imports (listed per pass below); its tests run the shared conformance kit.
func pass(_ name: String, _ dependencies: [String]) -> [Target] {
    let testDependencies = ["TestKit", "Toolbench", "Common"].filter { !dependencies.contains($0) } + dependencies
    return [
        .target(name: name, dependencies: ["Toolbench"] + dependencies.map { .target(name: $0) }, path: "Plugins/\(name)"),
        .testTarget(name: "\(name)Tests", dependencies: [.target(name: name)] + testDependencies.map { .target(name: $0) },
                    path: "Tests/Plugins/\(name)Tests"),
    ]
}

/// The passes, in the order `slmrec passes` lists them (the CLI's registry is the one place
/// that names them in code), each with what it imports besides the host. A training pass
/// uses the kit (`TrainingKit`: shared options, `train(…)`); the others use the engine only.
let passes: [(name: String, dependencies: [String])] = [
    ("LayerPruning", ["Common", "Engine", "ModelFormat"]),
    ("LoRAMerge", ["Common", "Engine", "ModelFormat"]),
    ("Int8Quantization", ["Common", "Engine", "ModelFormat"]),
    ("FineTune", ["TrainingKit", "Training", "Engine", "ModelFormat", "RecData"]),
    ("LayerwiseKD", ["TrainingKit", "Training", "Common", "Engine", "ModelFormat", "RecData"]),
]

let package = Package(
    name: "SLMRecToolbench",
    products: [
        .executable(name: "slmrec", targets: ["slmrec"]),
        .executable(name: "slmrec-fuzz", targets: ["slmrec-fuzz"]),
    ],
    targets: [
        // System C libraries (Debian: libopenblas-dev, zlib1g-dev).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // Open MPI (Debian: libopenmpi-dev; mpirun from openmpi-bin): linked, initialised only
        // under mpirun (docs/scale-out.md).
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // Small C target: int8 GEMM kernels with runtime CPU dispatch.
        .target(name: "CInt8", path: "Sources/CInt8",
                cSettings: [.unsafeFlags(["-O3"])]),

        // Vectorised element-wise kernels (SiLU, softmax, RMSNorm) for the engine.
        .target(name: "CKernels", path: "Sources/CKernels", cSettings: [.unsafeFlags(["-O3"])]),

        // Linux system calls Swift's Glibc module lacks (renameat2) and the stop-signal flag.
        .target(name: "CSystem", path: "Sources/CSystem"),

        // Core.
        .target(name: "Common", dependencies: ["CSystem"]),
        .target(name: "ModelFormat", dependencies: ["Common"]),
        // Text ↔ token ids for a pretrained trunk's prompt (byte-level and SentencePiece BPE).
        .target(name: "Tokenizer", dependencies: ["Common", "ModelFormat"]),
        // llama.cpp's GGUF files (memory-mapped, dequantized) seen as Hugging Face LLaMa trunks.
        .target(name: "GGUF", dependencies: ["Common", "ModelFormat", "Tokenizer"]),
        .target(name: "Engine", dependencies: ["Common", "CBLAS", "CKernels", "CInt8", "ModelFormat", "GGUF", "Tokenizer"]),
        .target(name: "RecData", dependencies: ["Common", "CZlib"]),
        // The job's ranks: one process, or data-parallel ranks under mpirun (the only user of CMPI).
        .target(name: "Cluster", dependencies: ["CMPI"]),
        // Ranking metrics and their vocabulary (protocols, metric names): pure, no model.
        .target(name: "Evaluation", dependencies: ["RecData"]),
        // Ranking a model's users (float or int8) and the metrics file's record.
        .target(name: "ModelEvaluation", dependencies: ["Common", "RecData", "Engine", "ModelFormat", "Evaluation", "Cluster"]),
        .target(name: "Training", dependencies: ["Common", "ModelFormat", "Engine", "RecData", "Evaluation", "ModelEvaluation", "Cluster"]),
        .target(name: "SASRec", dependencies: ["Common", "ModelFormat", "Engine", "RecData", "Evaluation", "ModelEvaluation", "Cluster"]),
        .target(name: "CommandKit"),
        // The plugin host: the pass protocol, strict options, recipes, planner and runner. It
        // runs no model (evaluation is plugged in), so it needs only formats and vocabulary.
        .target(name: "Toolbench", dependencies: ["Common", "ModelFormat", "RecData", "Evaluation"]),
        // The kit every training pass uses: one options type, one `train` helper.
        .target(name: "TrainingKit", dependencies: ["Toolbench", "Training", "Engine", "ModelFormat", "RecData", "Common"]),
        // The comparison report and the recipe's stage evaluator (they run models).
        .target(name: "Reports", dependencies: ["Toolbench", "ModelEvaluation", "Evaluation", "Engine", "ModelFormat", "RecData", "Common"]),
        .target(name: "TestKit", dependencies: ["ModelFormat", "Engine", "Toolbench", "RecData", "Common"]),

        // The CLI: the composition root, and the one place that lists the passes.
        .executableTarget(name: "slmrec", dependencies: [
            "Common", "Cluster", "CommandKit", "ModelFormat", "GGUF", "Tokenizer", "Engine", "RecData", "Evaluation", "ModelEvaluation", "Toolbench", "Training",
            "SASRec", "Reports",
        ] + passes.map { .target(name: $0.name) }),
        // Fuzz targets over every parser entry point (docs/reliability.md): a replay driver in
        // the normal build, libFuzzer's in `make fuzz` (-sanitize=fuzzer,address -DFUZZING).
        .executableTarget(name: "slmrec-fuzz", dependencies: ["CSystem", "Common", "ModelFormat", "Engine", "GGUF", "Tokenizer", "RecData", "Toolbench"]),

        // Tests.
        .testTarget(name: "ModelFormatTests", dependencies: ["ModelFormat", "Common"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "Tokenizer", "ModelFormat", "TestKit", "Common"], exclude: ["Fixtures"]),
        .testTarget(name: "CInt8Tests", dependencies: ["CInt8"]),
        .testTarget(name: "CommonTests", dependencies: ["Common"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "ModelFormat", "TestKit", "CInt8", "CKernels", "Common"], exclude: ["Fixtures"]),
        .testTarget(name: "RecDataTests", dependencies: ["RecData", "Common"], exclude: ["Fixtures"]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "ModelFormat", "TestKit", "Common"], exclude: ["Fixtures"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "ModelEvaluation", "RecData", "Common", "Engine"]),
        .testTarget(name: "CommandKitTests", dependencies: ["CommandKit"]),
        .testTarget(name: "CLITests", dependencies: ["TestKit", "ModelFormat", "RecData", "Common"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "TrainingKit", "TestKit", "Engine", "RecData", "Common", "ModelFormat"]),
        .testTarget(name: "SASRecTests", dependencies: ["SASRec", "TestKit", "Engine", "RecData", "Evaluation", "Common", "ModelFormat"]),
        .testTarget(name: "ToolbenchTests", dependencies: ["Toolbench", "TestKit", "ModelFormat", "Common"]),
        .testTarget(name: "ReportsTests", dependencies: ["Reports", "Toolbench", "TestKit", "Engine", "ModelFormat", "Common"]),
    ] + passes.flatMap { pass($0.name, $0.dependencies) },
    swiftLanguageModes: [.v6]
)
