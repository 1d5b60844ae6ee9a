import CKernels
import Foundation

// The scores a ranking reads: s_bj = u_b · e_j, each formed as a chain of fused multiply-adds
// in d order (CKernels ck_item_scores; `score` below is the same chain in Swift). Its float
// depends on the two vectors only. sgemm's does not: OpenBLAS adds the D products in another
// order for another matrix shape or thread split (measured: 3% of the entries of a 256 × 18,358
// product differ in the last bit when it is formed in 8,192-column blocks), and a ranking
// whose target and a competitor sit one ulp apart would then depend on how the items were
// blocked. With these scores the whole-row path (`infer`, `recommend`, `slmrec scores`) and
// the streamed one (StreamedRanking) rank on the very same floats, on every machine.
// Training keeps sgemm (its loss has no ties to break).

public enum ItemScores {
    /// Items per packed panel: the kernel's widest block.
    static let panel = 32

    /// out[b·ldo + j] = users_b · table_{j0+j} for b < count, j < n. `users` (count, dim),
    /// `table` (rows, dim).
    public static func tile(users: UnsafePointer<Float>, count B: Int, dim D: Int, table: UnsafePointer<Float>, from j0: Int, n: Int,
                            out: UnsafeMutablePointer<Float>, ldo: Int, workspace ws: Workspace? = nil) {
        guard B > 0, n > 0 else { return }
        // Each worker packs 32 items at a time, transposed to (D, 32) in its own 8 KB (at D = 64)
        // panel that stays in L1 while all B users are scored against it; a whole-block
        // transpose would write with a stride of the block's width and thrash the TLB.
        let panels = (n + panel - 1) / panel
        let scratch = ws.buffer("scores.panels", ParallelConfig.workers * D * panel)
        parallelFor(panels, withWorker: true) { p, worker in
            let et = scratch.ptr + worker * D * panel
            let c0 = p * panel, w = min(panel, n - c0)
            for x in 0..<w {
                let e = table + (j0 + c0 + x) * D
                for d in 0..<D { et[d * panel + x] = e[d] }
            }
            if w < panel { for d in 0..<D { for x in w..<panel { et[d * panel + x] = 0 } } }
            ck_item_scores(B, D, users, w, et, panel, out + c0, ldo)
        }
        withExtendedLifetime(scratch) {}
    }

    /// One score, the same float `tile` gives it.
    @inline(__always)
    public static func score(_ u: UnsafePointer<Float>, _ e: UnsafePointer<Float>, dim: Int) -> Float {
        var acc: Float = 0
        for d in 0..<dim { acc = acc.addingProduct(u[d], e[d]) }
        return acc
    }
}
