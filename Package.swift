// swift-tools-version:6.0
// The SLMRec toolbench. Reads like a table: system libraries, the core targets
// (dependencies point one way: ModelFormat ← Engine ← RecData/Evaluation ← Toolbench ←
// passes ← the CLI), the pass plugins, and one test target per source target.
import PackageDescription

/// A compression pass lives in `Plugins/<name>/` and depends only on the host (and the
/// core targets the host re-uses); its tests run the shared conformance kit.
func pass(_ name: String) -> [Target] {
    [
        .target(name: name, dependencies: ["Toolbench", "Training", "Engine", "ModelFormat", "RecData", "Evaluation", "Common"],
                path: "Plugins/\(name)"),
        .testTarget(name: "\(name)Tests", dependencies: [.target(name: name), "TestKit", "Toolbench", "Training", "Engine", "ModelFormat", "RecData", "Common"],
                    path: "Tests/Plugins/\(name)Tests"),
    ]
}

/// The passes, in the order `slmrec passes` lists them (the CLI's registry is the one place
/// that names them in code).
let passes = ["LayerPruning", "LoRAMerge", "Int8Quantization", "FineTune", "LayerwiseKD"]

let package = Package(
    name: "SLMRecToolbench",
    products: [
        .executable(name: "slmrec", targets: ["slmrec"]),
    ],
    targets: [
        // System C libraries (Debian: libopenblas-dev, zlib1g-dev).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
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
        .target(name: "Engine", dependencies: ["Common", "CBLAS", "CKernels", "CInt8", "ModelFormat"]),
        .target(name: "RecData", dependencies: ["Common", "CZlib"]),
        .target(name: "Evaluation", dependencies: ["Common", "RecData", "Engine", "ModelFormat"]),
        .target(name: "Training", dependencies: ["Common", "ModelFormat", "Engine", "RecData", "Evaluation"]),
        .target(name: "SASRec", dependencies: ["Common", "ModelFormat", "Engine", "RecData", "Evaluation"]),
        .target(name: "CommandKit"),
        .target(name: "Toolbench", dependencies: ["Common", "Training", "ModelFormat", "Engine", "RecData", "Evaluation"]),
        .target(name: "TestKit", dependencies: ["ModelFormat", "Engine", "Toolbench", "RecData", "Common"]),

        // The CLI: the composition root, and the one place that lists the passes.
        .executableTarget(name: "slmrec", dependencies: [
            "Common", "CommandKit", "ModelFormat", "Engine", "RecData", "Evaluation", "Toolbench", "Training", "SASRec",
        ] + passes.map { .target(name: $0) }),

        // Tests.
        .testTarget(name: "ModelFormatTests", dependencies: ["ModelFormat"]),
        .testTarget(name: "CInt8Tests", dependencies: ["CInt8"]),
        .testTarget(name: "CommonTests", dependencies: ["Common"]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "ModelFormat", "TestKit", "CInt8", "CKernels", "Common"]),
        .testTarget(name: "RecDataTests", dependencies: ["RecData", "Common"], exclude: ["Fixtures"]),
        .testTarget(name: "EvaluationTests", dependencies: ["Evaluation", "RecData", "Common"]),
        .testTarget(name: "CommandKitTests", dependencies: ["CommandKit"]),
        .testTarget(name: "CLITests", dependencies: ["TestKit", "ModelFormat", "Common"]),
        .testTarget(name: "TrainingTests", dependencies: ["Training", "TestKit", "Engine", "RecData", "Common", "ModelFormat"]),
        .testTarget(name: "SASRecTests", dependencies: ["SASRec", "TestKit", "Engine", "RecData", "Evaluation", "Common", "ModelFormat"]),
        .testTarget(name: "ToolbenchTests", dependencies: ["Toolbench", "TestKit", "ModelFormat", "Common"]),
    ] + passes.flatMap(pass),
    swiftLanguageModes: [.v6]
)
