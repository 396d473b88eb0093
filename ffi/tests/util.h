/* Helpers shared by the C tests: a tiny test harness, free loopback ports, time. */
#ifndef ABCAST_TEST_UTIL_H
#define ABCAST_TEST_UTIL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "abcast.h"

static int tests_passed, tests_failed, current_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            current_failed = 1;                                                      \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n", __FILE__,  \
                    __LINE__, #cond, abcast_last_error());                           \
        }                                                                            \
    } while (0)

/* Checks that `call` returns status `expect`. */
#define CHECK_ST(call, expect)                                                       \
    do {                                                                             \
        abcast_status st_ = (call);                                                  \
        if (st_ != (expect)) {                                                       \
            current_failed = 1;                                                      \
            fprintf(stderr, "%s:%d: %s returned %s, expected %s (last error: %s)\n", \
                    __FILE__, __LINE__, #call, abcast_status_str(st_),               \
                    abcast_status_str(expect), abcast_last_error());                 \
        }                                                                            \
    } while (0)

/* Checks that abcast_last_error() contains `text`. */
#define CHECK_LAST_ERROR(text)                                                       \
    do {                                                                             \
        if (strstr(abcast_last_error(), (text)) == NULL) {                          \
            current_failed = 1;                                                      \
            fprintf(stderr, "%s:%d: last error \"%s\" lacks \"%s\"\n", __FILE__,     \
                    __LINE__, abcast_last_error(), (text));                          \
        }                                                                            \
    } while (0)

#define RUN(test)                                                                    \
    do {                                                                             \
        current_failed = 0;                                                          \
        test();                                                                      \
        if (current_failed) {                                                        \
            tests_failed++;                                                          \
            printf("FAIL %s\n", #test);                                              \
        } else {                                                                     \
            tests_passed++;                                                          \
            printf("ok   %s\n", #test);                                              \
        }                                                                            \
        fflush(stdout);                                                              \
    } while (0)

/* Prints the summary line and returns the exit code. */
static int test_summary(void) {
    printf("%d passed, %d failed\n", tests_passed, tests_failed);
    return tests_failed == 0 ? 0 : 1;
}

/* A free TCP port on 127.0.0.1 (bound to port 0, then released). */
static uint16_t free_port(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    uint16_t port = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        perror("socket");
        exit(2);
    }
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("bind 127.0.0.1:0");
        exit(2);
    }
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

/* "127.0.0.1:PORT" into buf. */
static const char *loopback(char *buf, size_t cap, uint16_t port) {
    snprintf(buf, cap, "127.0.0.1:%u", (unsigned)port);
    return buf;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms) {
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    nanosleep(&ts, NULL);
}

#endif /* ABCAST_TEST_UTIL_H */
