/*
 * What this machine costs a latency-bound program, measured without abcast: built and
 * run by host-noise.sh, beside this file.
 *
 *   stalls SECS [LOOPS]
 *                    a busy loop pinned to each of the first LOOPS CPUs (default:
 *                    every CPU), for SECS seconds; prints, per CPU, the time lost in
 *                    gaps over 100 us between two clock reads and how many gaps were
 *                    over 1, 2 and 5 ms. On a quiet machine a loop loses almost
 *                    nothing; gaps of milliseconds come from other threads of the
 *                    machine that take the CPU (the loops run at the ordinary
 *                    priority; sched-intruders.sh, beside this file, names them) or
 *                    from a hypervisor that deschedules the vCPU. With one loop alone
 *                    such threads run on another CPU; with one per CPU they must take
 *                    one of them.
 *   handoff CPU_A CPU_B ROUNDS
 *                    two threads, pinned to CPU_A and CPU_B (-1: not pinned), hand a
 *                    token back and forth with a futex ROUNDS times; prints the mean
 *                    time per hand-off (one wake-up and one context switch) and the
 *                    CPU time it cost (user + system, from getrusage).
 *
 * Linux only (futex, sched_setaffinity).
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int pin(int cpu) {
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

/* ---- stalls ---- */

static double stall_secs;

struct stall_result {
    long cpu;
    long long lost_ns, max_ns;
    int over1, over2, over5;
};

static void *stall_loop(void *arg) {
    struct stall_result *r = arg;
    if (pin((int)r->cpu) != 0) {
        fprintf(stderr, "cannot pin to cpu %ld\n", r->cpu);
        return NULL;
    }
    long long start = now_ns(), last = start, end = start + (long long)(stall_secs * 1e9);
    for (;;) {
        long long t = now_ns(), gap = t - last;
        last = t;
        if (gap > 100000) {
            r->lost_ns += gap;
            r->over1 += gap > 1000000;
            r->over2 += gap > 2000000;
            r->over5 += gap > 5000000;
            if (gap > r->max_ns)
                r->max_ns = gap;
        }
        if (t >= end)
            break;
    }
    return NULL;
}

static int stalls(double secs, long loops) {
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1 || ncpu > 256)
        ncpu = 1;
    if (loops > 0 && loops < ncpu)
        ncpu = loops;
    stall_secs = secs;
    pthread_t *t = calloc((size_t)ncpu, sizeof *t);
    struct stall_result *r = calloc((size_t)ncpu, sizeof *r);
    if (!t || !r)
        return 1;
    for (long i = 0; i < ncpu; i++) {
        r[i].cpu = i;
        pthread_create(&t[i], NULL, stall_loop, &r[i]);
    }
    for (long i = 0; i < ncpu; i++)
        pthread_join(t[i], NULL);
    for (long i = 0; i < ncpu; i++)
        printf("cpu %ld: lost %.1f ms in %.1f s; gaps over 1 ms: %d, over 2 ms: %d, "
               "over 5 ms: %d; longest %.2f ms\n",
               r[i].cpu, r[i].lost_ns / 1e6, secs, r[i].over1, r[i].over2, r[i].over5,
               r[i].max_ns / 1e6);
    free(t);
    free(r);
    return 0;
}

/* ---- handoff ---- */

static double tv_us(const struct timeval *t) {
    return (double)t->tv_sec * 1e6 + (double)t->tv_usec;
}

static atomic_int turn;
static long rounds;
static int cpus[2];

static void *handoff_loop(void *arg) {
    int me = (int)(long)arg;
    if (pin(cpus[me]) != 0) {
        /* Not this machine's CPU (a cpuset): say so and measure nothing. */
        printf("futex hand-off: cannot pin to cpu %d, skipped\n", cpus[me]);
        exit(0);
    }
    for (long i = 0; i < rounds; i++) {
        while (atomic_load(&turn) != me)
            syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, 1 - me, NULL, NULL, 0);
        atomic_store(&turn, 1 - me);
        syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

static int handoff(int a, int b, long n) {
    cpus[0] = a;
    cpus[1] = b;
    rounds = n;
    atomic_store(&turn, 0);
    pthread_t t0, t1;
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    long long start = now_ns();
    pthread_create(&t0, NULL, handoff_loop, (void *)0L);
    pthread_create(&t1, NULL, handoff_loop, (void *)1L);
    pthread_join(t0, NULL);
    pthread_join(t1, NULL);
    double us = (now_ns() - start) / 1e3 / (2.0 * (double)n);
    getrusage(RUSAGE_SELF, &r1);
    double cpu_us = (tv_us(&r1.ru_utime) - tv_us(&r0.ru_utime) + tv_us(&r1.ru_stime) -
                     tv_us(&r0.ru_stime)) /
                    (2.0 * (double)n);
    printf("futex hand-off, threads on cpu %d and cpu %d: %.2f us each, %.2f us of CPU "
           "(%ld round trips)\n",
           a, b, us, cpu_us, n);
    return 0;
}

int main(int argc, char **argv) {
    if ((argc == 3 || argc == 4) && strcmp(argv[1], "stalls") == 0)
        return stalls(atof(argv[2]), argc == 4 ? atol(argv[3]) : 0);
    if (argc == 5 && strcmp(argv[1], "handoff") == 0)
        return handoff(atoi(argv[2]), atoi(argv[3]), atol(argv[4]));
    fprintf(stderr, "usage: %s stalls SECS [LOOPS] | handoff CPU_A CPU_B ROUNDS\n", argv[0]);
    return 2;
}
