/* Installing a seccomp filter in a test program (tests/native): what the allocator must do,
 * or not do, while a program that sandboxes itself runs. */
#ifndef KONFISCATOR_TESTS_SECCOMP_FILTER_H
#define KONFISCATOR_TESTS_SECCOMP_FILTER_H

#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>

/* Makes on_trap (when not NULL) the SIGSYS handler, for a filter that answers
 * SECCOMP_RET_TRAP, then installs the filter's `count` instructions, after
 * PR_SET_NO_NEW_PRIVS as an unprivileged process must. 0, or -1 with errno set. */
static inline int install_seccomp_filter(struct sock_filter *filter, unsigned short count,
                                         void (*on_trap)(int, siginfo_t *, void *))
{
    if (on_trap != NULL) {
        struct sigaction action;
        memset(&action, 0, sizeof action);
        action.sa_sigaction = on_trap;
        action.sa_flags = SA_SIGINFO;
        if (sigaction(SIGSYS, &action, NULL) != 0) return -1;
    }
    struct sock_fprog program = {count, filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program);
}

#endif
