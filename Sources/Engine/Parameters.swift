// One contiguous parameter buffer with named views keyed by Hugging Face tensor names
// (llm.c's `ParameterTensors`, generalised). Gradients and AdamW moments reuse the same
// layout, so "the gradient of model.layers.3.mlp.up_proj.weight" is the same offset in the
// gradient buffer as the weight is in the parameter buffer.

/// Where each named tensor lives inside one flat Float buffer.
public struct ParamLayout: Sendable, Equatable {
    public struct Entry: Sendable, Equatable {
        public let name: String
        public let shape: [Int]
        public let offset: Int
        public var count: Int { shape.reduce(1, *) }
    }
    public private(set) var entries: [Entry] = []
    public private(set) var index: [String: Int] = [:]
    public private(set) var totalCount = 0

    public init() {}

    public init(_ specs: [(name: String, shape: [Int])]) {
        for s in specs { append(s.name, s.shape) }
    }

    /// Appends a tensor; offsets are 16-float aligned so every view starts on a 64-byte line.
    public mutating func append(_ name: String, _ shape: [Int]) {
        precondition(index[name] == nil, "duplicate parameter \(name)")
        let off = (totalCount + 15) & ~15
        index[name] = entries.count
        entries.append(Entry(name: name, shape: shape, offset: off))
        totalCount = off + shape.reduce(1, *)
    }

    public func entry(_ name: String) -> Entry? { index[name].map { entries[$0] } }
    public var names: [String] { entries.map(\.name) }

    /// The entries named in `names`, in this layout's order, packed anew: the layout of the
    /// gradients and optimizer moments of a group's trainable tensors (a frozen tensor holds no
    /// gradient or AdamW buffer, as in PyTorch where requires_grad=False tensors get none).
    public func subset(_ names: Set<String>) -> ParamLayout {
        ParamLayout(entries.filter { names.contains($0.name) }.map { ($0.name, $0.shape) })
    }
}

/// A zero-initialised, 64-byte aligned Float buffer that owns its memory. A class so that
/// kernels can write through raw pointers without copy-on-write surprises.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let ptr: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        ptr = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        ptr.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { ptr.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit { ptr.deallocate() }

    public func zero() { ptr.update(repeating: 0, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: ptr, count: count)) }
    public subscript(i: Int) -> Float {
        get { ptr[i] }
        set { ptr[i] = newValue }
    }
    public func copy(from other: FloatBuffer) {
        precondition(other.count == count)
        ptr.update(from: other.ptr, count: count)
    }
}

/// A layout plus a buffer: parameters, gradients or optimizer moments.
public final class ParamSet: @unchecked Sendable {
    public let layout: ParamLayout
    public let buffer: FloatBuffer

    public init(layout: ParamLayout) {
        self.layout = layout
        buffer = FloatBuffer(count: layout.totalCount)
    }

    /// Pointer to the named tensor, or nil if the layout has no such tensor.
    public func ptr(_ name: String) -> UnsafeMutablePointer<Float>? {
        layout.entry(name).map { buffer.ptr + $0.offset }
    }

    /// Pointer to a tensor the model knows exists (names come from the layout itself).
    public func req(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let p = ptr(name) else { preconditionFailure("no parameter named \(name)") }
        return p
    }

    public func values(_ name: String) -> [Float] {
        guard let e = layout.entry(name) else { return [] }
        return Array(UnsafeBufferPointer(start: buffer.ptr + e.offset, count: e.count))
    }

    public func set(_ name: String, _ values: [Float]) {
        guard let e = layout.entry(name) else { preconditionFailure("no parameter named \(name)") }
        precondition(values.count == e.count, "\(name): \(values.count) values for \(e.shape)")
        values.withUnsafeBufferPointer { (buffer.ptr + e.offset).update(from: $0.baseAddress!, count: e.count) }
    }

    public func zero() { buffer.zero() }

    public func copy() -> ParamSet {
        let c = ParamSet(layout: layout)
        c.buffer.copy(from: buffer)
        return c
    }

    /// A copy of the named tensors only (in a packed layout of their own).
    public func copy(_ names: Set<String>) -> ParamSet {
        let c = ParamSet(layout: layout.subset(names))
        for e in c.layout.entries { (c.buffer.ptr + e.offset).update(from: req(e.name), count: e.count) }
        return c
    }

    /// Copies every tensor of `other` (whose layout may be a subset of this one) into this set.
    public func update(from other: ParamSet) {
        for e in other.layout.entries { req(e.name).update(from: other.buffer.ptr + e.offset, count: e.count) }
    }
}

/// Reusable activation memory. A training loop or an evaluator passes one Workspace to
/// every forward/backward so buffers are allocated (and page-faulted) once, not per step.
/// Buffers handed out are NOT zeroed: every kernel that fills them writes every element.
/// An Activations object built from a workspace is valid until the next forward with it.
public final class Workspace: @unchecked Sendable {
    private var buffers: [String: FloatBuffer] = [:]
    public init() {}

    public func get(_ key: String, _ count: Int) -> FloatBuffer {
        if let b = buffers[key], b.count >= count { return b }
        let b = FloatBuffer(count: count)
        buffers[key] = b
        return b
    }

}

extension Optional where Wrapped == Workspace {
    /// A buffer from the workspace, or a fresh zeroed one without a workspace.
    func buffer(_ key: String, _ count: Int) -> FloatBuffer {
        switch self {
        case .some(let ws): ws.get(key, count)
        case .none: FloatBuffer(count: count)
        }
    }
}
