import Foundation

/// What a job's processes are to each other. A plain `slmrec …` is one process (rank 0 of 1):
/// every operation below is then the identity, MPI is never initialised and needs no
/// environment. Under `mpirun -np K` (Open MPI sets OMPI_COMM_WORLD_SIZE) the world is K
/// ranks and the collectives go through MPI (MPI.swift). docs/scale-out.md.
public final class Communicator: @unchecked Sendable {
    public let rank: Int
    public let size: Int
    let mpi: MPIWorld?

    /// A single process.
    public init() { rank = 0; size = 1; mpi = nil }

    init(mpi: MPIWorld) { self.mpi = mpi; rank = mpi.rank; size = mpi.size }

    public var isDistributed: Bool { size > 1 }
    /// Rank 0 alone writes outputs, logs and state, and prints.
    public var isLeader: Bool { rank == 0 }

    /// Element-wise sum over ranks, in place (every rank gets the same sums).
    public func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) throws { try mpi?.allreduceSum(p, count: count) }
    public func allreduceSum(_ p: UnsafeMutablePointer<Double>, count: Int) throws { try mpi?.allreduceSum(p, count: count) }
    public func allreduceSum(_ p: UnsafeMutablePointer<Int32>, count: Int) throws { try mpi?.allreduceSum(p, count: count) }
    public func allreduceSum(_ a: inout [Double]) throws { try a.withUnsafeMutableBufferPointer { try allreduceSum($0.baseAddress!, count: $0.count) } }
    public func allreduceSum(_ a: inout [Int32]) throws {
        if a.isEmpty { return }
        try a.withUnsafeMutableBufferPointer { try allreduceSum($0.baseAddress!, count: $0.count) }
    }
    /// Every rank's value, by rank.
    public func allgather(_ value: UInt64) throws -> [UInt64] { try mpi?.allgather(value) ?? [value] }
    /// Rank `root`'s bytes on every rank.
    public func broadcast(_ bytes: inout [UInt8], root: Int = 0) throws { try mpi?.broadcast(&bytes, root: root) }
    public func barrier() throws { try mpi?.barrier() }

    /// Refuses to go on unless every rank computed the same `value` for `what` (a hash of
    /// the recipe, the data, the weights): ranks that disagree would train different models.
    public func requireAgreement(_ what: String, _ value: UInt64) throws {
        guard isDistributed else { return }
        let all = try allgather(value)
        let odd = all.indices.filter { all[$0] != all[0] }
        if !odd.isEmpty {
            throw ClusterError("ranks disagree on \(what): rank\(odd.count > 1 ? "s" : "") \(odd.map(String.init).joined(separator: ", ")) differ\(odd.count > 1 ? "" : "s") from rank 0. Every rank must read the same files: put them on a shared filesystem or copy them byte for byte to every node")
        }
    }

    /// The contiguous share [lo, hi) of `count` items that this rank takes (the first
    /// count % size ranks take one more).
    public func share(of count: Int) -> Range<Int> {
        let base = count / size, extra = count % size
        let lo = rank * base + min(rank, extra)
        return lo..<(lo + base + (rank < extra ? 1 : 0))
    }

    /// The end of the process: a clean exit finalises MPI; a failed rank aborts the whole
    /// job (mpirun then ends every rank and names this one), so no rank waits forever in a
    /// collective that the failed one will never join.
    public func finish(status: Int32) {
        guard let mpi else { return }
        if status != 0 && isDistributed {
            FileHandle.standardError.write(Data("slmrec: rank \(rank) of \(size) failed (exit status \(status)); aborting the job\n".utf8))
            mpi.abort(status)
        }
        mpi.finalize()
    }
}

public struct ClusterError: Error, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum Cluster {
    /// True when this process was started by Open MPI's mpirun (or a launcher that sets its
    /// environment, e.g. srun with PMIx).
    public static var launchedByMPI: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil
    }

    nonisolated(unsafe) private static var cached: Communicator?
    nonisolated(unsafe) private static var failure: String?

    /// The job's communicator: a single process unless launched by mpirun. Initialised on
    /// first use from the main thread (the CLI does so before running a command).
    public static var world: Communicator {
        if let c = cached { return c }
        var c = Communicator()
        if launchedByMPI {
            do { c = Communicator(mpi: try MPIWorld()) } catch { failure = "\(error)" }
        }
        cached = c
        return c
    }

    /// Why MPI could not start under mpirun (nil: it did, or this is a single process).
    public static var initialisationFailure: String? { _ = world; return failure }

    /// Tests: run `body` with `communicator` as the world.
    public static func withWorld<T>(_ communicator: Communicator, _ body: () throws -> T) rethrows -> T {
        let saved = cached
        cached = communicator
        defer { cached = saved }
        return try body()
    }
}

/// A 64-bit fingerprint of bytes (FNV-1a over 8-byte words, then the tail), for checking
/// that ranks read the same inputs; not a cryptographic hash.
public struct Fingerprint: Sendable {
    public private(set) var value: UInt64 = 0xCBF2_9CE4_8422_2325
    public init() {}
    public mutating func add(_ bytes: UnsafeRawBufferPointer) {
        var h = value
        let words = bytes.count / 8
        for i in 0..<words { h = (h ^ bytes.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)) &* 0x0000_0100_0000_01B3 }
        for i in (words * 8)..<bytes.count { h = (h ^ UInt64(bytes[i])) &* 0x0000_0100_0000_01B3 }
        value = (h ^ UInt64(bytes.count)) &* 0x0000_0100_0000_01B3
    }
    public mutating func add(_ data: Data) { data.withUnsafeBytes { add($0) } }
    /// A float buffer's bytes (weights: equal on every rank that holds the same values).
    public mutating func add(floats p: UnsafePointer<Float>, count: Int) { add(UnsafeRawBufferPointer(start: p, count: count * 4)) }
    public mutating func add(_ s: String) { add(Data(s.utf8)) }
}
