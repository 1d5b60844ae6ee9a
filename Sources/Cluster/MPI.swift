import CMPI
import Foundation

// The one file that imports CMPI (Open MPI's C API, Sources/CMPI/shim.h).
// docs/scale-out.md: why MPI is linked at build time and initialised only under `mpirun`.

/// Open MPI's world communicator, initialised once. Only the main thread calls it.
final class MPIWorld: @unchecked Sendable {
    let rank: Int
    let size: Int

    init() throws {
        if slm_mpi_initialized() == 0 {
            let rc = slm_mpi_init()
            if rc != 0 { throw ClusterError("MPI_Init_thread failed: \(Self.describe(rc)). Start the job with mpirun (Open MPI, Debian's openmpi-bin)") }
        }
        rank = Int(slm_mpi_rank())
        size = Int(slm_mpi_size())
    }

    static func describe(_ rc: Int32) -> String {
        var buf = [CChar](repeating: 0, count: 512)
        slm_mpi_error_string(rc, &buf, 512)
        return String(cString: buf)
    }

    private func check(_ rc: Int32, _ what: String) throws {
        if rc != 0 { throw ClusterError("rank \(rank) of \(size): \(what) failed: \(Self.describe(rc)) (another rank probably died: see mpirun's message)") }
    }

    /// MPI counts are C ints: a longer buffer goes in chunks of 2^30 elements.
    private func chunked<T>(_ p: UnsafeMutablePointer<T>, _ count: Int, _ what: String, _ call: (UnsafeMutablePointer<T>, Int32) -> Int32) throws {
        var off = 0
        while off < count {
            let n = min(count - off, 1 << 30)
            try check(call(p + off, Int32(n)), what)
            off += n
        }
    }

    func allreduceSum(_ p: UnsafeMutablePointer<Float>, count: Int) throws {
        try chunked(p, count, "MPI_Allreduce (float sum)") { slm_mpi_allreduce_sum_float($0, $1) }
    }
    func allreduceSum(_ p: UnsafeMutablePointer<Double>, count: Int) throws {
        try chunked(p, count, "MPI_Allreduce (double sum)") { slm_mpi_allreduce_sum_double($0, $1) }
    }
    func allreduceSum(_ p: UnsafeMutablePointer<Int32>, count: Int) throws {
        try chunked(p, count, "MPI_Allreduce (int32 sum)") { slm_mpi_allreduce_sum_int32($0, $1) }
    }
    func allgather(_ value: UInt64) throws -> [UInt64] {
        var out = [UInt64](repeating: 0, count: size)
        try check(out.withUnsafeMutableBufferPointer { slm_mpi_allgather_uint64(value, $0.baseAddress!) }, "MPI_Allgather")
        return out
    }
    func broadcast(_ bytes: inout [UInt8], root: Int) throws {
        var n = [UInt8](repeating: 0, count: 8)
        if rank == root { withUnsafeBytes(of: UInt64(bytes.count).littleEndian) { for i in 0..<8 { n[i] = $0[i] } } }
        try check(slm_mpi_bcast_bytes(&n, 8, Int32(root)), "MPI_Bcast")
        let count = Int(n.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        if rank != root { bytes = [UInt8](repeating: 0, count: count) }
        if count > 0 { try check(bytes.withUnsafeMutableBytes { slm_mpi_bcast_bytes($0.baseAddress!, Int32(count), Int32(root)) }, "MPI_Bcast") }
    }
    func barrier() throws { try check(slm_mpi_barrier(), "MPI_Barrier") }
    func finalize() { _ = slm_mpi_finalize() }
    func abort(_ code: Int32) -> Never {
        slm_mpi_abort(code)
        exit(code)
    }
}
