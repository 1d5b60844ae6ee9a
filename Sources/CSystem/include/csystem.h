#ifndef SLMREC_CSYSTEM_H
#define SLMREC_CSYSTEM_H

/* Linux system calls that Swift's Glibc module does not expose (they need _GNU_SOURCE),
   and an async-signal-safe stop flag. Wrapped for Swift in Common (Files.swift, StopSignals.swift). */

/* renameat2(a, b, RENAME_EXCHANGE): swaps two existing paths in one atomic step.
   Returns 0, or -1 with errno set (EINVAL/ENOSYS where the filesystem cannot do it). */
int slm_rename_exchange(const char *a, const char *b);

/* SIGINT and SIGTERM set a flag instead of their action (unless they were ignored); the
   first one restores the previous dispositions, so a second signal acts as usual. */
void slm_stop_signals_catch(void);
/* The previous dispositions again; returns the signal received while catching (0: none). */
int slm_stop_signals_release(void);
/* The signal received since slm_stop_signals_catch (0: none). */
int slm_stop_signal(void);

/* libFuzzer's driver (compiler-rt), present only in the `make fuzz` build of slmrec-fuzz:
   SwiftPM links an executable's entry point as <module>_main, so the fuzz build defines that
   and hands over to libFuzzer here instead of using libFuzzer's own main. */
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const unsigned char *data, unsigned long size));

#endif
