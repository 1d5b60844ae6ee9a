import Foundation
import Common

/// A checkpoint directory's tensors: `model.safetensors`, or `model.safetensors.index.json`
/// plus its shards (as `save_pretrained` writes for large models). Read only: the toolbench
/// always writes a single file.
public struct TensorStore: Sendable {
    private let files: [SafetensorsFile]
    private let location: [String: Int]  // tensor name -> index into files
    private let sortedNames: [String]
    public let bytesOnDisk: Int

    public static let singleFile = "model.safetensors"
    public static let indexFile = "model.safetensors.index.json"

    public static func open(directory: URL) throws -> TensorStore {
        let fm = FileManager.default
        let single = directory.appendingPathComponent(singleFile)
        let index = directory.appendingPathComponent(indexFile)
        if fm.fileExists(atPath: single.path) {
            let f = try SafetensorsFile(url: single)
            return TensorStore(files: [f], location: Dictionary(uniqueKeysWithValues: f.names.map { ($0, 0) }), bytesOnDisk: f.fileSize)
        }
        guard fm.fileExists(atPath: index.path) else {
            throw ModelFormatError(file: directory.path, problem: "no \(singleFile) or \(indexFile)",
                                   fix: "point to a checkpoint directory (save it with save_pretrained(..., safe_serialization=True))")
        }
        let json = try readJSONFile(index, syntaxFix: "re-export the checkpoint")
        guard let map = json["weight_map"]?.objectValue else {
            throw ModelFormatError(file: index.path, problem: "no \"weight_map\" object", fix: "re-export the checkpoint with save_pretrained")
        }
        var shardIndex: [String: Int] = [:]
        var files: [SafetensorsFile] = []
        var location: [String: Int] = [:]
        var bytes = (try? fm.attributesOfItem(atPath: index.path)[.size] as? Int) ?? 0
        for name in map.keys.sorted() {
            guard let shard = map[name]?.stringValue else {
                throw ModelFormatError(file: index.path, problem: "weight_map entry for \"\(name)\" is not a file name", fix: "fix the index")
            }
            // Shards live next to the index; refuse paths that would escape the directory.
            guard !shard.contains("/"), shard != "..", !shard.isEmpty else {
                throw ModelFormatError(file: index.path, problem: "shard name \"\(shard)\" for \"\(name)\" is not a plain file name",
                                       fix: "shards must sit in the same directory as the index")
            }
            let k: Int
            if let existing = shardIndex[shard] {
                k = existing
            } else {
                let url = directory.appendingPathComponent(shard)
                guard fm.fileExists(atPath: url.path) else {
                    throw ModelFormatError(file: index.path, problem: "shard \"\(shard)\" (holding \"\(name)\") is missing",
                                           fix: "copy every shard listed in the index into \(directory.path)")
                }
                let f = try SafetensorsFile(url: url)
                files.append(f)
                bytes += f.fileSize
                k = files.count - 1
                shardIndex[shard] = k
            }
            guard files[k].info(name) != nil else {
                throw ModelFormatError(file: files[k].url.path, problem: "tensor \"\(name)\" is listed in \(indexFile) but not in this shard",
                                       fix: "the index and shards do not match; re-export the checkpoint")
            }
            location[name] = k
        }
        return TensorStore(files: files, location: location, bytesOnDisk: bytes)
    }

    private init(files: [SafetensorsFile], location: [String: Int], bytesOnDisk: Int) {
        self.files = files
        self.location = location
        self.sortedNames = location.keys.sorted()
        self.bytesOnDisk = bytesOnDisk
    }

    public var names: [String] { sortedNames }

    public func info(_ name: String) -> TensorInfo? {
        guard let k = location[name] else { return nil }
        return files[k].info(name)
    }

    private func file(_ name: String) throws -> SafetensorsFile {
        guard let k = location[name] else {
            throw ModelFormatError(file: files.first?.url.deletingLastPathComponent().path ?? "checkpoint",
                                   problem: "no tensor named \"\(name)\"", fix: "check the tensor name")
        }
        return files[k]
    }

    public func tensor(_ name: String) throws -> Tensor { try file(name).tensor(name) }

    public func floats(_ name: String) throws -> [Float] { try file(name).floats(name) }
}
