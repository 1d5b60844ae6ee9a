#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "csystem.h"

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

int slm_rename_exchange(const char *a, const char *b) {
#ifdef SYS_renameat2
    return (int)syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
#else
    errno = ENOSYS;
    return -1;
#endif
}

/* SIGINT and SIGTERM while catching. A signal that was ignored when catching began (a
   background job's SIGINT under a non-interactive shell, nohup's) stays ignored; the previous
   dispositions come back on release. The first signal puts both back to their previous
   dispositions at once (sigaction is async-signal-safe), so a second SIGINT or SIGTERM acts
   as it would have without us: usually it kills. */
static volatile sig_atomic_t stop_signal = 0;
static struct sigaction previous[2];
static volatile sig_atomic_t installed[2];
static const int stop_signals[2] = {SIGINT, SIGTERM};

static void restore_previous(void) {
    for (int i = 0; i < 2; i++) {
        if (installed[i]) {
            sigaction(stop_signals[i], &previous[i], NULL);
            installed[i] = 0;
        }
    }
}

static void on_stop(int sig) {
    stop_signal = sig;
    restore_previous();
}

void slm_stop_signals_catch(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    sa.sa_flags = SA_RESTART;
    stop_signal = 0;
    for (int i = 0; i < 2; i++) {
        struct sigaction old;
        if (sigaction(stop_signals[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        previous[i] = old;
        if (sigaction(stop_signals[i], &sa, NULL) == 0) installed[i] = 1;
    }
}

int slm_stop_signals_release(void) {
    restore_previous();
    int s = stop_signal;
    stop_signal = 0;
    return s;
}

int slm_stop_signal(void) { return stop_signal; }
