/*
 * avx2_only.so: makes a process see an AVX2 + FMA CPU on a CPU that also has AVX-512, so that
 * a peer engine choosing its kernels by CPUID (ONNX Runtime's MLAS) can be measured on the
 * AVX2 path beside resnetc's `RESNETC_CPU=avx2` on one machine.
 *
 * Loaded with LD_PRELOAD (the `vs_onnxruntime` bench does this when `RESNETC_PEER_CPU=avx2`;
 * it builds this file with the C compiler that links Rust programs). Its constructor asks the
 * kernel to make every CPUID instruction fault (`arch_prctl(ARCH_SET_CPUID, 0)`, Linux on x86-64
 * CPUs with CPUID faulting: the `cpuid_fault` flag in /proc/cpuinfo) and answers each faulting
 * CPUID itself: the real answer, with the AVX-512 and AMX feature bits of leaf 7 cleared. The
 * setting is per thread and inherited by the threads and processes it starts; the constructor
 * runs before the program's `main`, so every thread of the process has it. Where CPUID faulting
 * is not available the constructor writes why to stderr and exits with status 3, so that a
 * peer can never be timed on the wrong path unnoticed.
 *
 * A SIGSEGV that is not a CPUID is handed back to the default action (the process dies as it
 * would have). Detection of the OS's AVX-512 register state (XGETBV) is not masked; engines
 * require both the CPUID bit and that state, as MLAS does.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_GET_CPUID 0x1011
#define ARCH_SET_CPUID 0x1012

/* Leaf 7, subleaf 0. EBX: AVX512F (16), DQ (17), IFMA (21), PF (26), ER (27), CD (28), BW (30),
 * VL (31). ECX: VBMI (1), VBMI2 (6), VNNI (11), BITALG (12), VPOPCNTDQ (14). EDX: 4VNNIW (2),
 * 4FMAPS (3), VP2INTERSECT (8), AMX-BF16 (22), AVX512-FP16 (23), AMX-TILE (24), AMX-INT8 (25). */
static const uint32_t EBX7 = (1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) |
                             (1u << 28) | (1u << 30) | (1u << 31);
static const uint32_t ECX7 = (1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14);
static const uint32_t EDX7 = (1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) |
                             (1u << 24) | (1u << 25);
/* Leaf 7, subleaf 1. EAX: AVX512-BF16 (5). */
static const uint32_t EAX7_1 = 1u << 5;

static long set_cpuid(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void on_segv(int sig, siginfo_t *info, void *context) {
    (void)sig;
    (void)info;
    ucontext_t *uc = context;
    greg_t *r = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)r[REG_RIP];
    if (ip[0] != 0x0f || ip[1] != 0xa2) {
        /* Not a CPUID: the fault recurs under the default action. */
        signal(SIGSEGV, SIG_DFL);
        return;
    }
    uint32_t leaf = (uint32_t)r[REG_RAX], sub = (uint32_t)r[REG_RCX];
    uint32_t a, b, c, d;
    set_cpuid(1);
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(leaf), "c"(sub));
    set_cpuid(0);
    if (leaf == 7 && sub == 0) {
        b &= ~EBX7;
        c &= ~ECX7;
        d &= ~EDX7;
    } else if (leaf == 7 && sub == 1) {
        a &= ~EAX7_1;
    }
    /* CPUID writes the low 32 bits and zeroes the high ones. */
    r[REG_RAX] = a;
    r[REG_RBX] = b;
    r[REG_RCX] = c;
    r[REG_RDX] = d;
    r[REG_RIP] += 2;
}

__attribute__((constructor)) static void avx2_only(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, NULL) != 0 || set_cpuid(0) != 0) {
        fprintf(stderr, "avx2_only: this CPU or kernel cannot make CPUID fault "
                        "(no cpuid_fault in /proc/cpuinfo?)\n");
        _exit(3);
    }
}
