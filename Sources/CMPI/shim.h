// Open MPI through a few C functions: MPI's handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are
// macros over the library's globals, which Swift cannot import, so every call the toolbench
// makes is wrapped here. Only Sources/Cluster/MPI.swift imports this module.
#include <mpi.h>
#include <stdint.h>

static inline int slm_mpi_initialized(void) { int f = 0; MPI_Initialized(&f); return f; }
static inline int slm_mpi_init(void) {
    int provided = 0;
    // FUNNELED: only the main thread calls MPI (the engine's worker threads never do).
    int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    // Errors come back as return codes (the caller names the operation), not an abort.
    if (rc == MPI_SUCCESS) MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    return rc;
}
static inline int slm_mpi_finalize(void) { return MPI_Finalize(); }
static inline int slm_mpi_rank(void) { int r = 0; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
static inline int slm_mpi_size(void) { int s = 1; MPI_Comm_size(MPI_COMM_WORLD, &s); return s; }
static inline int slm_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }
static inline void slm_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static inline int slm_mpi_allreduce_sum_float(float *buf, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
}
static inline int slm_mpi_allreduce_sum_double(double *buf, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}
static inline int slm_mpi_allreduce_sum_int32(int32_t *buf, int count) {
    return MPI_Allreduce(MPI_IN_PLACE, buf, count, MPI_INT32_T, MPI_SUM, MPI_COMM_WORLD);
}
static inline int slm_mpi_allgather_uint64(uint64_t value, uint64_t *out) {
    return MPI_Allgather(&value, 1, MPI_UINT64_T, out, 1, MPI_UINT64_T, MPI_COMM_WORLD);
}
static inline int slm_mpi_bcast_bytes(void *buf, int count, int root) {
    return MPI_Bcast(buf, count, MPI_BYTE, root, MPI_COMM_WORLD);
}
static inline void slm_mpi_error_string(int code, char *out, int capacity) {
    char s[MPI_MAX_ERROR_STRING]; int n = 0;
    MPI_Error_string(code, s, &n);
    int k = n < capacity - 1 ? n : capacity - 1;
    for (int i = 0; i < k; i++) out[i] = s[i];
    out[k] = 0;
}
