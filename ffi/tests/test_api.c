/*
 * Tests of every function of the C API, error paths included: NULL arguments, bad
 * addresses, invalid values, duplicate ids, stop(NULL), leaving twice, releasing empty
 * events, a delivery callback (and stopping from it), and two members in one process
 * (deliveries in the same order, member-left and relayer-changed events), and a
 * late joiner that installs the group's state through the state-transfer callbacks,
 * abcast_recv_many, abcast_node_fd (under poll and EPOLLET) and abcast_node_stats.
 * Built with -Wall -Wextra -Werror -pedantic and run under AddressSanitizer by
 * ffi/ci.sh. Prints "N passed, N failed".
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include "util.h"

/* A configuration for member `self` of the group 1..n on `ports`. */
static abcast_config *group_config(uint32_t self, int n, const uint16_t *ports) {
    char addr[64];
    int i;
    abcast_config *cfg = abcast_config_new(self);
    CHECK(cfg != NULL);
    for (i = 0; i < n; i++) {
        CHECK_ST(abcast_config_add_member(cfg, (uint32_t)(i + 1),
                                          loopback(addr, sizeof addr, ports[i])),
                 ABCAST_OK);
    }
    CHECK_ST(abcast_config_set_startup_timeout(cfg, 10000), ABCAST_OK);
    return cfg;
}

/* A started one-member group (member 1). */
static abcast_node *start_single(void) {
    uint16_t port = free_port();
    abcast_node *node = NULL;
    abcast_config *cfg = group_config(1, 1, &port);
    CHECK_ST(abcast_node_start(cfg, &node), ABCAST_OK);
    abcast_config_free(cfg);
    CHECK(node != NULL);
    return node;
}

static void test_status_strings(void) {
    int s;
    for (s = ABCAST_OK; s <= ABCAST_INTERNAL_ERROR; s++) {
        const char *text = abcast_status_str(s);
        CHECK(text != NULL && strncmp(text, "ABCAST_", 7) == 0);
    }
    CHECK(strcmp(abcast_status_str(ABCAST_OK), "ABCAST_OK: success") == 0);
    CHECK(strncmp(abcast_status_str(ABCAST_TIMEOUT), "ABCAST_TIMEOUT", 14) == 0);
    CHECK(strcmp(abcast_status_str(-1), "unknown abcast_status") == 0);
    CHECK(strcmp(abcast_status_str(12345), "unknown abcast_status") == 0);
    /* Stable numbers: these values are a contract. */
    CHECK(ABCAST_OK == 0 && ABCAST_TIMEOUT == 1 && ABCAST_WOULD_BLOCK == 2 &&
          ABCAST_STOPPED == 3 && ABCAST_EXCLUDED == 4 && ABCAST_NULL_ARGUMENT == 5 &&
          ABCAST_INVALID_ARGUMENT == 6 && ABCAST_INVALID_CONFIG == 7 &&
          ABCAST_PAYLOAD_TOO_LARGE == 8 && ABCAST_IO == 9 && ABCAST_WRONG_MODE == 10 &&
          ABCAST_INTERNAL_ERROR == 11);
    CHECK(sizeof(abcast_status) == 4);
}

static void test_version_and_log_level(void) {
    CHECK(abcast_version() != NULL && strlen(abcast_version()) > 0);
    CHECK_ST(abcast_set_log_level(4), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("abcast_set_log_level");
    CHECK_ST(abcast_set_log_level(0), ABCAST_OK);
    CHECK_ST(abcast_thread_set_batch_scheduling(), ABCAST_OK);
    CHECK_ST(abcast_set_log_level(1), ABCAST_OK);
}

/* This thread's "Cpus_allowed_list" from /proc (e.g. "0-1"), into buf; 0 on success. */
static int cpus_allowed(char *buf, size_t n) {
    char line[512];
    int found = -1;
    FILE *f = fopen("/proc/thread-self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        const char *key = "Cpus_allowed_list:";
        if (strncmp(line, key, strlen(key)) == 0) {
            const char *v = line + strlen(key);
            size_t len;
            while (*v == ' ' || *v == '\t')
                v++;
            len = strcspn(v, "\n");
            if (len < n) {
                memcpy(buf, v, len);
                buf[len] = '\0';
                found = 0;
            }
            break;
        }
    }
    fclose(f);
    return found;
}

/* In a thread of its own, so that the test's other threads keep their CPUs. */
static void *cpu_affinity_thread(void *arg) {
    char before[256], after[256], want[32];
    const char *p;
    uint32_t too_big = 5000, cpu;
    (void)arg;
    CHECK(cpus_allowed(before, sizeof before) == 0);
    CHECK_ST(abcast_thread_set_cpu_affinity(NULL, 1), ABCAST_NULL_ARGUMENT);
    CHECK_LAST_ERROR("`cpus` is NULL");
    CHECK_ST(abcast_thread_set_cpu_affinity(NULL, 0), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_thread_set_cpu_affinity(&too_big, 1), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("CPU 5000");
    CHECK(cpus_allowed(after, sizeof after) == 0 && strcmp(before, after) == 0);
    /* The last CPU of the list: its highest. */
    p = before + strlen(before);
    while (p > before && p[-1] >= '0' && p[-1] <= '9')
        p--;
    cpu = (uint32_t)strtoul(p, NULL, 10);
    CHECK_ST(abcast_thread_set_cpu_affinity(&cpu, 1), ABCAST_OK);
    snprintf(want, sizeof want, "%u", (unsigned)cpu);
    CHECK(cpus_allowed(after, sizeof after) == 0 && strcmp(after, want) == 0);
    return NULL;
}

static void test_thread_cpu_affinity(void) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, cpu_affinity_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

/* This thread's scheduling policy (field 41 of /proc/thread-self/stat), or -1. */
static int thread_policy(void) {
    char buf[1024];
    FILE *f = fopen("/proc/thread-self/stat", "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return -1;
    p += 2; /* field 3 on */
    for (int field = 3; field < 41; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return -1;
        p++;
    }
    return atoi(p);
}

static void *realtime_thread(void *arg) {
    (void)arg;
    /* Inherited from the main thread (SCHED_BATCH after an earlier test): not FIFO. */
    int before = thread_policy();
    CHECK(before >= 0 && before != 1);
    CHECK_ST(abcast_thread_set_realtime_priority(0), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_thread_set_realtime_priority(100), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("not 100");
    CHECK(thread_policy() == before); /* unchanged */
    abcast_status st = abcast_thread_set_realtime_priority(1);
    if (st == ABCAST_OK) {
        CHECK(thread_policy() == 1); /* SCHED_FIFO */
    } else {
        /* Without CAP_SYS_NICE or RLIMIT_RTPRIO: a clear error, policy kept. */
        CHECK_ST(st, ABCAST_IO);
        CHECK_LAST_ERROR("sched_setscheduler");
        CHECK(thread_policy() == before);
    }
    return NULL;
}

static void test_thread_realtime_priority(void) {
    pthread_t t;
    CHECK(pthread_create(&t, NULL, realtime_thread, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
}

static void *last_error_other_thread(void *arg) {
    (void)arg;
    /* A fresh thread has no failure yet: "" (never NULL). */
    return (void *)(strcmp(abcast_last_error(), "") == 0 ? "empty" : "not empty");
}

static void test_last_error_is_per_thread(void) {
    pthread_t t;
    void *result = NULL;
    CHECK_ST(abcast_config_add_member(NULL, 1, "127.0.0.1:1"), ABCAST_NULL_ARGUMENT);
    CHECK_LAST_ERROR("abcast_config_add_member: `cfg` is NULL");
    CHECK(pthread_create(&t, NULL, last_error_other_thread, NULL) == 0);
    CHECK(pthread_join(t, &result) == 0);
    CHECK(result != NULL && strcmp((const char *)result, "empty") == 0);
    /* Success leaves the message in place. */
    CHECK_ST(abcast_set_log_level(1), ABCAST_OK);
    CHECK_LAST_ERROR("`cfg` is NULL");
}

static void test_config_null_arguments(void) {
    abcast_config *cfg = abcast_config_new(1);
    CHECK(cfg != NULL);
    CHECK_ST(abcast_config_add_member(NULL, 1, "127.0.0.1:7001"), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_add_member(cfg, 1, NULL), ABCAST_NULL_ARGUMENT);
    CHECK_LAST_ERROR("`host_port` is NULL");
    CHECK_ST(abcast_config_set_buffering(NULL, ABCAST_BUFFERING_REPLICATED),
             ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_timeouts(NULL, 100, 500), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_startup_timeout(NULL, 100), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_leave_timeout(NULL, 100), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_send_window(NULL, 10), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_delivery_queue(NULL, 10), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_io_coalesce(NULL, 10), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_batch_scheduling(NULL, 1), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_realtime_priority(NULL, 1), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_validate(NULL), ABCAST_NULL_ARGUMENT);
    abcast_config_free(NULL); /* a no-op */
    abcast_config_free(cfg);
}

static void test_config_bad_addresses(void) {
    abcast_config *cfg = abcast_config_new(1);
    CHECK_ST(abcast_config_add_member(cfg, 1, "not an address"), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("address `not an address` of member 1");
    CHECK_ST(abcast_config_add_member(cfg, 1, "127.0.0.1"), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_add_member(cfg, 1, "127.0.0.1:99999"), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_add_member(cfg, 1, ""), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_add_member(cfg, 1, "\xff\xfe:1"), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("not UTF-8");
    /* Id 0 is reserved (an event's `member` 0 means "none"). */
    CHECK_ST(abcast_config_add_member(cfg, 0, "127.0.0.1:7000"), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("member id 0 is reserved");
    /* Nothing was added: the configuration has no member. */
    CHECK_ST(abcast_config_validate(cfg), ABCAST_INVALID_CONFIG);
    CHECK_LAST_ERROR("the member list is empty");
    /* Good forms. */
    CHECK_ST(abcast_config_add_member(cfg, 1, "127.0.0.1:7001"), ABCAST_OK);
    CHECK_ST(abcast_config_add_member(cfg, 2, "[::1]:7002"), ABCAST_OK);
    CHECK_ST(abcast_config_add_member(cfg, 3, "localhost:7003"), ABCAST_OK);
    CHECK_ST(abcast_config_validate(cfg), ABCAST_OK);
    abcast_config_free(cfg);
    cfg = abcast_config_new(0);
    CHECK_ST(abcast_config_add_member(cfg, 1, "127.0.0.1:7001"), ABCAST_OK);
    CHECK_ST(abcast_config_validate(cfg), ABCAST_INVALID_CONFIG);
    CHECK_LAST_ERROR("this member's id is 0, which is reserved");
    abcast_config_free(cfg);
}

static void test_config_invalid_values(void) {
    abcast_config *cfg = abcast_config_new(1);
    CHECK_ST(abcast_config_set_buffering(cfg, ABCAST_BUFFERING_DISTRIBUTED), ABCAST_OK);
    CHECK_ST(abcast_config_set_buffering(cfg, ABCAST_BUFFERING_REPLICATED), ABCAST_OK);
    CHECK_ST(abcast_config_set_buffering(cfg, (abcast_buffering)7), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("unknown buffering mode 7");
    CHECK_ST(abcast_config_set_buffering(cfg, (abcast_buffering)-1), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_timeouts(cfg, 0, 1000), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("heartbeat interval is zero");
    CHECK_ST(abcast_config_set_timeouts(cfg, 500, 500), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("at least 3 heartbeat intervals");
    CHECK_ST(abcast_config_set_timeouts(cfg, 5, 40), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("below the minimum of 50 ms");
    CHECK_ST(abcast_config_set_timeouts(cfg, 500, 0), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_quorum(NULL, ABCAST_QUORUM_NONE), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_quorum(cfg, ABCAST_QUORUM_NONE), ABCAST_OK);
    CHECK_ST(abcast_config_set_quorum(cfg, ABCAST_QUORUM_MAJORITY), ABCAST_OK);
    CHECK_ST(abcast_config_set_quorum(cfg, (abcast_quorum)9), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("unknown quorum rule 9");
    CHECK_ST(abcast_config_set_timeouts(cfg, 100, 1000), ABCAST_OK);
    CHECK_ST(abcast_config_set_startup_timeout(cfg, 0), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_startup_timeout(cfg, 5000), ABCAST_OK);
    CHECK_ST(abcast_config_set_send_window(cfg, 0), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_send_window(cfg, 16), ABCAST_OK);
    CHECK_ST(abcast_config_set_delivery_queue(cfg, 0), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_delivery_queue(cfg, 64), ABCAST_OK);
    CHECK_ST(abcast_config_set_io_coalesce(cfg, 10001), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_io_coalesce(cfg, 0), ABCAST_OK);
    CHECK_ST(abcast_config_set_io_coalesce(cfg, 75), ABCAST_OK);
    CHECK_ST(abcast_config_set_batch_scheduling(cfg, 2), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_batch_scheduling(cfg, -1), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_batch_scheduling(cfg, 0), ABCAST_OK);
    CHECK_ST(abcast_config_set_batch_scheduling(cfg, 1), ABCAST_OK);
    CHECK_ST(abcast_config_set_realtime_priority(cfg, 100), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("not 100");
    CHECK_ST(abcast_config_set_realtime_priority(cfg, -1), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_realtime_priority(cfg, 5), ABCAST_OK);
    CHECK_ST(abcast_config_set_realtime_priority(cfg, 0), ABCAST_OK);
    CHECK_ST(abcast_config_set_leave_timeout(cfg, 0), ABCAST_OK);
    CHECK_ST(abcast_config_set_leave_timeout(cfg, 2000), ABCAST_OK);
    abcast_config_free(cfg);
}

/* A key file for this process's groups (the format `abcast keygen` writes). */
static const char *test_key_file(void) {
    static char path[64];
    if (path[0] == 0) {
        snprintf(path, sizeof path, "/tmp/abcast-c-test-key-%d", (int)getpid());
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (f != NULL) {
            fprintf(f, "abcast-group-key-v1 ");
            for (int i = 0; i < 32; i++) fprintf(f, "%02x", (i * 37 + 11) & 0xff);
            fprintf(f, "\n");
            fclose(f);
        }
    }
    return path;
}

static void test_config_group_key(void) {
    abcast_config *cfg = abcast_config_new(1);
    CHECK_ST(abcast_config_set_group_key_file(NULL, test_key_file()), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_group_key_file(cfg, NULL), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_group_key_file(cfg, "/nonexistent/abcast.key"),
             ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("/nonexistent/abcast.key");
    CHECK_ST(abcast_config_set_group_key_file(cfg, "/dev/null"), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("not an abcast group key file");
    CHECK_ST(abcast_config_set_group_key_file(cfg, test_key_file()), ABCAST_OK);
    CHECK_ST(abcast_config_set_authenticate_only(NULL, 1), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_authenticate_only(cfg, 1), ABCAST_OK);
    CHECK_ST(abcast_config_set_authenticate_only(cfg, 0), ABCAST_OK);
    abcast_config_free(cfg);
}

static void test_config_validate(void) {
    abcast_config *cfg = abcast_config_new(9);
    CHECK_ST(abcast_config_add_member(cfg, 1, "127.0.0.1:7001"), ABCAST_OK);
    CHECK_ST(abcast_config_validate(cfg), ABCAST_INVALID_CONFIG);
    CHECK_LAST_ERROR("id 9 is not in the member list");
    abcast_config_free(cfg);

    cfg = abcast_config_new(1);
    CHECK_ST(abcast_config_add_member(cfg, 1, "127.0.0.1:7001"), ABCAST_OK);
    CHECK_ST(abcast_config_add_member(cfg, 2, "127.0.0.1:7001"), ABCAST_OK);
    CHECK_ST(abcast_config_validate(cfg), ABCAST_INVALID_CONFIG);
    CHECK_LAST_ERROR("given to two members");
    abcast_config_free(cfg);
}

static void test_start_errors(void) {
    uint16_t ports[2];
    char addr[64];
    abcast_node *sentinel = (abcast_node *)&ports; /* never dereferenced */
    abcast_node *node = sentinel;
    abcast_config *cfg;

    CHECK_ST(abcast_node_start(NULL, &node), ABCAST_NULL_ARGUMENT);
    CHECK_LAST_ERROR("abcast_node_start: `cfg` is NULL");
    cfg = abcast_config_new(1);
    CHECK_ST(abcast_node_start(cfg, NULL), ABCAST_NULL_ARGUMENT);
    CHECK_LAST_ERROR("`out` is NULL");

    /* No members. */
    CHECK_ST(abcast_node_start(cfg, &node), ABCAST_INVALID_CONFIG);
    CHECK(node == sentinel);

    /* Duplicate ids: start fails with a clear status and message; *out untouched. */
    ports[0] = free_port();
    ports[1] = free_port();
    CHECK_ST(abcast_config_add_member(cfg, 1, loopback(addr, sizeof addr, ports[0])),
             ABCAST_OK);
    CHECK_ST(abcast_config_add_member(cfg, 1, loopback(addr, sizeof addr, ports[1])),
             ABCAST_OK);
    CHECK_ST(abcast_node_start(cfg, &node), ABCAST_INVALID_CONFIG);
    CHECK_LAST_ERROR("abcast_node_start: invalid configuration: member id 1 appears twice");
    CHECK(node == sentinel);
    abcast_config_free(cfg);
}

static void test_start_address_in_use(void) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    char addr[64];
    abcast_node *node = NULL;
    abcast_config *cfg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    CHECK(listen(fd, 1) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    cfg = abcast_config_new(1);
    CHECK_ST(abcast_config_add_member(cfg, 1, loopback(addr, sizeof addr, ntohs(a.sin_port))),
             ABCAST_OK);
    CHECK_ST(abcast_node_start(cfg, &node), ABCAST_IO);
    CHECK_LAST_ERROR("listen on");
    CHECK(node == NULL);
    abcast_config_free(cfg);
    close(fd);
}

/* 1 if a socket on 127.0.0.1 holds `port`: binding it fails with EADDRINUSE. */
static int port_taken(uint16_t port) {
    struct sockaddr_in a;
    int taken, fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(port);
    taken = bind(fd, (struct sockaddr *)&a, sizeof a) != 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

/* The listen address, the relay window and the maximum payload: refused values leave
 * the configuration as it was; valid ones take effect. */
static void test_config_listen_addr_relay_window_max_payload(void) {
    uint16_t ports[2];
    char addr[64];
    abcast_config *cfg;
    abcast_node *node = NULL;
    abcast_event ev = {0};
    size_t max = 0;
    uint8_t *big;
    int i;

    ports[0] = free_port();
    ports[1] = free_port();
    cfg = group_config(1, 1, &ports[0]);
    CHECK_ST(abcast_config_set_listen_addr(NULL, "127.0.0.1:7001"), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_listen_addr(cfg, NULL), ABCAST_NULL_ARGUMENT);
    CHECK_LAST_ERROR("`host_port` is NULL");
    CHECK_ST(abcast_config_set_listen_addr(cfg, "127.0.0.1"), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("abcast_config_set_listen_addr: listen address `127.0.0.1`");
    CHECK_ST(abcast_config_set_listen_addr(cfg, "not an address"), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_listen_addr(cfg, "127.0.0.1:99999"), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_listen_addr(cfg, ""), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_relay_window(NULL, 8, 4096), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_relay_window(cfg, 0, 4096), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("the relay window is zero messages");
    CHECK_ST(abcast_config_set_relay_window(cfg, 8, 0), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("the relay window is zero bytes");
    CHECK_ST(abcast_config_set_max_payload(NULL, 5000), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_max_payload(cfg, 0), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("below the minimum of 4032 bytes");
    CHECK_ST(abcast_config_set_max_payload(cfg, 4031), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_config_set_max_payload(cfg, (size_t)UINT32_MAX), ABCAST_INVALID_ARGUMENT);
    CHECK_LAST_ERROR("over the maximum of 4294967231 bytes");
    CHECK_ST(abcast_config_validate(cfg), ABCAST_OK);

    /* Listen on another port than the one in the member list; a relay window of one
     * message and one byte; payloads of at most 5000 bytes. */
    CHECK_ST(abcast_config_set_listen_addr(cfg, loopback(addr, sizeof addr, ports[1])),
             ABCAST_OK);
    CHECK_ST(abcast_config_set_relay_window(cfg, 1, 1), ABCAST_OK);
    CHECK_ST(abcast_config_set_max_payload(cfg, 5000), ABCAST_OK);
    CHECK_ST(abcast_node_start(cfg, &node), ABCAST_OK);
    abcast_config_free(cfg);
    if (node == NULL) return;
    CHECK(port_taken(ports[1]));
    CHECK(!port_taken(ports[0]));
    CHECK_ST(abcast_node_max_payload(node, &max), ABCAST_OK);
    CHECK(max == 5000);
    big = (uint8_t *)calloc(5001, 1);
    CHECK(big != NULL);
    if (big != NULL) {
        CHECK_ST(abcast_broadcast(node, big, 5001), ABCAST_PAYLOAD_TOO_LARGE);
        CHECK_LAST_ERROR("payload of 5001 bytes exceeds the maximum of 5000 bytes");
        CHECK_ST(abcast_try_broadcast(node, big, 5001), ABCAST_PAYLOAD_TOO_LARGE);
        /* The relayer orders one message at a time, each larger than the byte window:
         * all of them are delivered, in order. */
        for (i = 0; i < 20; i++) {
            big[0] = (uint8_t)i;
            CHECK_ST(abcast_broadcast(node, big, 5000), ABCAST_OK);
        }
        for (i = 0; i < 20; i++) {
            CHECK_ST(abcast_recv(node, &ev, 5000), ABCAST_OK);
            CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.seq == (uint64_t)i + 1);
            CHECK(ev.len == 5000 && ev.data != NULL && ev.data[0] == (uint8_t)i);
            abcast_event_release(&ev);
        }
        free(big);
    }
    abcast_node_stop(node);
}

static void test_node_null_arguments(void) {
    abcast_event ev = {0};
    uint32_t id = 77;
    size_t n = 77;
    const uint8_t byte = 1;
    CHECK_ST(abcast_broadcast(NULL, &byte, 1), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_try_broadcast(NULL, &byte, 1), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_recv(NULL, &ev, 0), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_id(NULL, &id), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_max_payload(NULL, &n), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_failed_at_start(NULL, NULL, 0, &n), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_leave(NULL), ABCAST_NULL_ARGUMENT);
    CHECK(id == 77 && n == 77); /* out-parameters untouched on failure */
    abcast_node_stop(NULL);     /* a no-op */
    abcast_event_release(NULL); /* a no-op */
}

static void test_event_release_empty(void) {
    abcast_event ev = {0};
    abcast_event_release(&ev);
    abcast_event_release(&ev);
    CHECK(ev.kind == ABCAST_EVENT_NONE && ev.data == NULL && ev.len == 0);
}

static void test_single_member(void) {
    abcast_node *node = start_single();
    abcast_event ev = {0};
    abcast_event untouched;
    uint32_t id = 0, ids[4] = {0, 0, 0, 0};
    size_t max = 0, count = 99;
    const char *hello = "hello";
    uint8_t *big;

    CHECK_ST(abcast_node_id(node, &id), ABCAST_OK);
    CHECK(id == 1);
    CHECK_ST(abcast_node_id(node, NULL), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_max_payload(node, &max), ABCAST_OK);
    CHECK(max > 4000);
    CHECK_ST(abcast_node_max_payload(node, NULL), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_failed_at_start(node, ids, 4, &count), ABCAST_OK);
    CHECK(count == 0);
    CHECK_ST(abcast_node_failed_at_start(node, NULL, 0, &count), ABCAST_OK);
    CHECK_ST(abcast_node_failed_at_start(node, NULL, 4, &count), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_failed_at_start(node, ids, 4, NULL), ABCAST_NULL_ARGUMENT);

    /* Nothing yet: a poll and a short wait time out, and leave *out untouched. */
    memset(&untouched, 0xAB, sizeof untouched);
    CHECK_ST(abcast_recv(node, &untouched, 0), ABCAST_TIMEOUT);
    CHECK_ST(abcast_recv(node, &untouched, 20), ABCAST_TIMEOUT);
    CHECK_LAST_ERROR("abcast_recv: timed out");
    CHECK(((unsigned char *)&untouched)[0] == 0xAB);
    CHECK_ST(abcast_recv(node, NULL, 0), ABCAST_NULL_ARGUMENT);

    /* Broadcast errors. */
    CHECK_ST(abcast_broadcast(node, NULL, 3), ABCAST_NULL_ARGUMENT);
    CHECK_LAST_ERROR("`data` is NULL");
    big = (uint8_t *)calloc(max + 1, 1);
    CHECK(big != NULL);
    CHECK_ST(abcast_broadcast(node, big, max + 1), ABCAST_PAYLOAD_TOO_LARGE);
    CHECK_ST(abcast_try_broadcast(node, big, max + 1), ABCAST_PAYLOAD_TOO_LARGE);
    CHECK_LAST_ERROR("exceeds the maximum");

    /* A message, an empty one (NULL, 0), and the largest one. */
    CHECK_ST(abcast_broadcast(node, (const uint8_t *)hello, strlen(hello)), ABCAST_OK);
    CHECK_ST(abcast_broadcast(node, NULL, 0), ABCAST_OK);
    memset(big, 'x', max);
    CHECK_ST(abcast_try_broadcast(node, big, max), ABCAST_OK);
    free(big);

    CHECK_ST(abcast_recv(node, &ev, 5000), ABCAST_OK);
    CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.seq == 1 && ev.origin == 1);
    CHECK(ev.len == 5 && ev.data != NULL && memcmp(ev.data, "hello", 5) == 0);
    abcast_event_release(&ev);
    CHECK(ev.kind == ABCAST_EVENT_NONE && ev.data == NULL && ev.internal == NULL);
    abcast_event_release(&ev); /* again: a no-op */

    CHECK_ST(abcast_recv(node, &ev, -1), ABCAST_OK);
    CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.seq == 2 && ev.len == 0 && ev.data != NULL);
    abcast_event_release(&ev);
    CHECK_ST(abcast_recv(node, &ev, 5000), ABCAST_OK);
    CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.seq == 3 && ev.len == max);
    CHECK(ev.len == max && ev.data[0] == 'x' && ev.data[max - 1] == 'x');
    CHECK(ev.origin_seq == 3);
    abcast_event_release(&ev);

    /* The broadcast's number comes back in its delivery. */
    {
        uint64_t origin_seq = 0;
        CHECK_ST(abcast_broadcast_id(node, (const uint8_t *)hello, 5, &origin_seq), ABCAST_OK);
        CHECK(origin_seq == 4);
        CHECK_ST(abcast_broadcast_id(node, (const uint8_t *)hello, 5, NULL), ABCAST_OK);
        CHECK_ST(abcast_broadcast_id(NULL, (const uint8_t *)hello, 5, &origin_seq),
                 ABCAST_NULL_ARGUMENT);
        CHECK_ST(abcast_recv(node, &ev, 5000), ABCAST_OK);
        CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.origin == 1 && ev.origin_seq == origin_seq);
        abcast_event_release(&ev);
        CHECK_ST(abcast_recv(node, &ev, 5000), ABCAST_OK);
        CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.origin_seq == 5);
        abcast_event_release(&ev);
    }

    /* Leave: once OK, then STOPPED ("stopping twice as documented"). */
    CHECK_ST(abcast_node_leave(node), ABCAST_OK);
    CHECK_ST(abcast_node_leave(node), ABCAST_STOPPED);
    CHECK_LAST_ERROR("already left");
    CHECK_ST(abcast_broadcast(node, (const uint8_t *)hello, 5), ABCAST_STOPPED);
    CHECK_ST(abcast_try_broadcast(node, (const uint8_t *)hello, 5), ABCAST_STOPPED);
    CHECK_ST(abcast_recv(node, &ev, 100), ABCAST_STOPPED);
    CHECK_ST(abcast_recv(node, &ev, -1), ABCAST_STOPPED);
    CHECK(ev.kind == ABCAST_EVENT_NONE);
    CHECK_ST(abcast_node_id(node, &id), ABCAST_OK); /* getters still work */
    abcast_node_stop(node);                         /* frees; never call it twice */
    abcast_node_stop(NULL);
}

static void test_try_broadcast_would_block(void) {
    uint16_t port = free_port();
    abcast_node *node = NULL;
    abcast_config *cfg = group_config(1, 1, &port);
    abcast_event ev = {0};
    abcast_status st = ABCAST_OK;
    int sent = 0, received = 0;
    double deadline = now_s() + 10;
    CHECK_ST(abcast_config_set_send_window(cfg, 1), ABCAST_OK);
    CHECK_ST(abcast_config_set_delivery_queue(cfg, 2), ABCAST_OK);
    CHECK_ST(abcast_node_start(cfg, &node), ABCAST_OK);
    abcast_config_free(cfg);
    /* Nobody receives: the window or the queue fills, and try_broadcast says so. */
    while (now_s() < deadline) {
        st = abcast_try_broadcast(node, (const uint8_t *)"m", 1);
        if (st == ABCAST_WOULD_BLOCK) break;
        CHECK_ST(st, ABCAST_OK);
        if (st != ABCAST_OK) break;
        sent++;
    }
    CHECK_ST(st, ABCAST_WOULD_BLOCK);
    CHECK_LAST_ERROR("would block");
    CHECK(sent >= 1);
    /* Receiving makes room. */
    while (received < sent && abcast_recv(node, &ev, 5000) == ABCAST_OK) {
        CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.seq == (uint64_t)received + 1);
        abcast_event_release(&ev);
        received++;
    }
    CHECK(received == sent);
    deadline = now_s() + 10;
    while ((st = abcast_try_broadcast(node, (const uint8_t *)"n", 1)) == ABCAST_WOULD_BLOCK &&
           now_s() < deadline)
        sleep_ms(1);
    CHECK_ST(st, ABCAST_OK);
    CHECK_ST(abcast_recv(node, &ev, 5000), ABCAST_OK);
    CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.len == 1 && ev.data[0] == 'n');
    abcast_event_release(&ev);
    abcast_node_stop(node);
}

static void *recv_blocked(void *arg) {
    abcast_event ev = {0};
    abcast_status st = abcast_recv((abcast_node *)arg, &ev, -1);
    abcast_event_release(&ev);
    return (void *)(st == ABCAST_STOPPED ? "stopped" : "other");
}

/* A thread blocked in abcast_recv(-1) is woken by abcast_node_leave from another. */
static void test_leave_wakes_receiver(void) {
    abcast_node *node = start_single();
    pthread_t t;
    void *result = NULL;
    CHECK(pthread_create(&t, NULL, recv_blocked, node) == 0);
    sleep_ms(50); /* let it block (the test passes either way) */
    CHECK_ST(abcast_node_leave(node), ABCAST_OK);
    CHECK(pthread_join(t, &result) == 0);
    CHECK(result != NULL && strcmp((const char *)result, "stopped") == 0);
    abcast_node_stop(node);
}

/* ---- the delivery callback ---- */

struct collector {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    uint64_t delivered;   /* deliveries seen */
    uint64_t out_of_order;
    int stop_on_left;     /* call abcast_node_stop from the callback on MEMBER_LEFT */
    abcast_node *node;
    int stop_returned;    /* the callback's abcast_node_stop returned */
};

static void on_event(void *userdata, const abcast_event *ev) {
    struct collector *c = (struct collector *)userdata;
    char expect[32];
    pthread_mutex_lock(&c->lock);
    if (ev->kind == ABCAST_EVENT_DELIVER) {
        snprintf(expect, sizeof expect, "msg %llu", (unsigned long long)c->delivered);
        if (ev->len != strlen(expect) || memcmp(ev->data, expect, ev->len) != 0 ||
            ev->seq != c->delivered + 1)
            c->out_of_order++;
        c->delivered++;
    }
    if (c->stop_on_left && ev->kind == ABCAST_EVENT_MEMBER_LEFT && c->node != NULL) {
        abcast_node *node = c->node;
        c->node = NULL;
        pthread_mutex_unlock(&c->lock);
        abcast_node_stop(node); /* the callback's last use of the node */
        pthread_mutex_lock(&c->lock);
        c->stop_returned = 1;
    }
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
}

static int wait_delivered(struct collector *c, uint64_t n, int timeout_s) {
    struct timespec until;
    int ok;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_s;
    pthread_mutex_lock(&c->lock);
    while (c->delivered < n) {
        if (pthread_cond_timedwait(&c->changed, &c->lock, &until) != 0) break;
    }
    ok = c->delivered >= n;
    pthread_mutex_unlock(&c->lock);
    return ok;
}

static void collector_init(struct collector *c) {
    memset(c, 0, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    pthread_cond_init(&c->changed, NULL);
}

static void collector_destroy(struct collector *c) {
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->changed);
}

static void broadcast_numbered(abcast_node *node, int n) {
    char msg[32];
    int i;
    for (i = 0; i < n; i++) {
        snprintf(msg, sizeof msg, "msg %d", i);
        CHECK_ST(abcast_broadcast(node, (const uint8_t *)msg, strlen(msg)), ABCAST_OK);
    }
}

static void test_callback(void) {
    uint16_t port = free_port();
    abcast_config *cfg = group_config(1, 1, &port);
    abcast_node *node = NULL;
    abcast_event ev = {0};
    struct collector c;
    uint64_t seen;
    collector_init(&c);

    CHECK_ST(abcast_node_start_with_callback(cfg, NULL, &c, &node), ABCAST_NULL_ARGUMENT);
    CHECK_LAST_ERROR("`callback` is NULL");
    CHECK_ST(abcast_node_start_with_callback(NULL, on_event, &c, &node), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_start_with_callback(cfg, on_event, &c, NULL), ABCAST_NULL_ARGUMENT);
    CHECK(node == NULL);
    CHECK_ST(abcast_node_start_with_callback(cfg, on_event, &c, &node), ABCAST_OK);
    abcast_config_free(cfg);

    CHECK_ST(abcast_recv(node, &ev, 0), ABCAST_WRONG_MODE);
    CHECK_LAST_ERROR("delivers through a callback");
    broadcast_numbered(node, 500);
    CHECK(wait_delivered(&c, 500, 20));
    abcast_node_stop(node);
    pthread_mutex_lock(&c.lock);
    seen = c.delivered;
    CHECK(c.delivered == 500 && c.out_of_order == 0);
    pthread_mutex_unlock(&c.lock);
    /* No callback after stop returned. */
    sleep_ms(20);
    CHECK(c.delivered == seen);
    collector_destroy(&c);
}

/* ---- two members in one process ---- */

struct starter {
    abcast_config *cfg;
    abcast_node *node;
    abcast_status st;
    struct collector *callback; /* NULL: abcast_recv */
};

static void *start_thread(void *arg) {
    struct starter *s = (struct starter *)arg;
    if (s->callback != NULL)
        s->st = abcast_node_start_with_callback(s->cfg, on_event, s->callback, &s->node);
    else
        s->st = abcast_node_start(s->cfg, &s->node);
    return NULL;
}

/* Starts members 1..n of a group in parallel (abcast_node_start blocks until all are
 * connected); members with a collector deliver through the callback. */
static int start_group(int n, struct starter *s, struct collector **callbacks) {
    uint16_t ports[8];
    pthread_t t[8];
    int i, ok = 1;
    for (i = 0; i < n; i++) ports[i] = free_port();
    for (i = 0; i < n; i++) {
        s[i].cfg = group_config((uint32_t)i + 1, n, ports);
        CHECK_ST(abcast_config_set_timeouts(s[i].cfg, 100, 3000), ABCAST_OK);
        /* The groups of these tests hold a key: their frames are sealed. */
        CHECK_ST(abcast_config_set_group_key_file(s[i].cfg, test_key_file()), ABCAST_OK);
        s[i].node = NULL;
        s[i].callback = callbacks != NULL ? callbacks[i] : NULL;
        CHECK(pthread_create(&t[i], NULL, start_thread, &s[i]) == 0);
    }
    for (i = 0; i < n; i++) {
        CHECK(pthread_join(t[i], NULL) == 0);
        CHECK_ST(s[i].st, ABCAST_OK);
        abcast_config_free(s[i].cfg);
        if (s[i].node == NULL) ok = 0;
    }
    if (!ok)
        for (i = 0; i < n; i++) abcast_node_stop(s[i].node);
    return ok;
}

/* Receives until `n` deliveries (recording their origins) or a deadline. */
static int recv_deliveries(abcast_node *node, int n, uint32_t *origins, char (*texts)[16]) {
    int got = 0;
    abcast_event ev = {0};
    double deadline = now_s() + 20;
    while (got < n && now_s() < deadline) {
        abcast_status st = abcast_recv(node, &ev, 200);
        if (st == ABCAST_TIMEOUT) continue;
        CHECK_ST(st, ABCAST_OK);
        if (st != ABCAST_OK) break;
        if (ev.kind == ABCAST_EVENT_DELIVER) {
            origins[got] = ev.origin;
            snprintf(texts[got], 16, "%.*s", (int)ev.len, (const char *)ev.data);
            got++;
        }
        abcast_event_release(&ev);
    }
    return got;
}

static void test_two_members(void) {
    enum { N = 50 };
    struct starter s[2];
    uint32_t origins[2][2 * N];
    char texts[2][2 * N][16];
    abcast_event ev = {0};
    int i, got0, got1, left = 0, relayer = 0;
    double deadline;
    char msg[16];

    if (!start_group(2, s, NULL)) return;
    for (i = 0; i < N; i++) {
        snprintf(msg, sizeof msg, "a%d", i);
        CHECK_ST(abcast_broadcast(s[0].node, (const uint8_t *)msg, strlen(msg)), ABCAST_OK);
        snprintf(msg, sizeof msg, "b%d", i);
        CHECK_ST(abcast_broadcast(s[1].node, (const uint8_t *)msg, strlen(msg)), ABCAST_OK);
    }
    got0 = recv_deliveries(s[0].node, 2 * N, origins[0], texts[0]);
    got1 = recv_deliveries(s[1].node, 2 * N, origins[1], texts[1]);
    CHECK(got0 == 2 * N && got1 == 2 * N);
    for (i = 0; i < got0 && i < got1; i++) {
        CHECK(origins[0][i] == origins[1][i] && strcmp(texts[0][i], texts[1][i]) == 0);
    }

    /* The relayer (member 1) leaves: member 2 sees it leave and becomes the relayer. */
    CHECK_ST(abcast_node_leave(s[0].node), ABCAST_OK);
    deadline = now_s() + 20;
    while (!(left && relayer) && now_s() < deadline) {
        abcast_status st = abcast_recv(s[1].node, &ev, 200);
        if (st != ABCAST_OK) continue;
        if (ev.kind == ABCAST_EVENT_MEMBER_LEFT && ev.member == 1) left = 1;
        if (ev.kind == ABCAST_EVENT_RELAYER_CHANGED && ev.member == 2 && ev.epoch > 0)
            relayer = 1;
        abcast_event_release(&ev);
    }
    CHECK(left && relayer);
    /* Member 2 goes on alone. */
    CHECK_ST(abcast_broadcast(s[1].node, (const uint8_t *)"solo", 4), ABCAST_OK);
    deadline = now_s() + 20;
    while (now_s() < deadline) {
        if (abcast_recv(s[1].node, &ev, 200) != ABCAST_OK) continue;
        if (ev.kind == ABCAST_EVENT_DELIVER) break;
        abcast_event_release(&ev);
    }
    CHECK(ev.kind == ABCAST_EVENT_DELIVER && ev.len == 4 && memcmp(ev.data, "solo", 4) == 0);
    abcast_event_release(&ev);
    abcast_node_stop(s[0].node);
    abcast_node_stop(s[1].node);
}

/* Member 2 delivers through a callback and stops itself from it when it sees member 1
 * leave (no other thread uses member 2's node meanwhile, as abcast_node_stop asks). */
static void test_stop_from_callback(void) {
    struct starter s[2];
    struct collector c, *callbacks[2];
    int done = 0;
    double deadline;
    collector_init(&c);
    c.stop_on_left = 1;
    callbacks[0] = NULL;
    callbacks[1] = &c;
    pthread_mutex_lock(&c.lock); /* the callback waits until c.node is set */
    if (!start_group(2, s, callbacks)) {
        pthread_mutex_unlock(&c.lock);
        collector_destroy(&c);
        return;
    }
    c.node = s[1].node;
    pthread_mutex_unlock(&c.lock);
    broadcast_numbered(s[0].node, 5);
    CHECK(wait_delivered(&c, 5, 20));
    CHECK_ST(abcast_node_leave(s[0].node), ABCAST_OK);
    deadline = now_s() + 20;
    while (!done && now_s() < deadline) {
        pthread_mutex_lock(&c.lock);
        done = c.stop_returned;
        pthread_mutex_unlock(&c.lock);
        if (!done) sleep_ms(5);
    }
    CHECK(done);
    pthread_mutex_lock(&c.lock);
    CHECK(c.delivered == 5 && c.out_of_order == 0);
    pthread_mutex_unlock(&c.lock);
    abcast_node_stop(s[0].node);
    collector_destroy(&c);
}

/* abcast_recv_many fills an array in order; abcast_node_fd is readable exactly while
 * events wait (poll), and once the node stopped. */
static void test_recv_many_and_fd(void) {
    abcast_node *node = start_single();
    abcast_event evs[8];
    abcast_event ev = {0};
    size_t count = 99, i;
    int fd = -1;
    struct pollfd p;
    char msg[8];

    memset(evs, 0, sizeof evs);
    CHECK_ST(abcast_node_fd(node, &fd), ABCAST_OK);
    CHECK(fd >= 0);
    CHECK_ST(abcast_node_fd(node, NULL), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_node_fd(NULL, &fd), ABCAST_NULL_ARGUMENT);
    p.fd = fd;
    p.events = POLLIN;
    CHECK(poll(&p, 1, 0) == 0); /* nothing waits */
    CHECK_ST(abcast_recv_many(node, evs, 8, 0, &count), ABCAST_TIMEOUT);
    CHECK(count == 99);
    CHECK_ST(abcast_recv_many(node, NULL, 8, 0, &count), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_recv_many(node, evs, 0, 0, &count), ABCAST_INVALID_ARGUMENT);
    CHECK_ST(abcast_recv_many(node, evs, 8, 0, NULL), ABCAST_NULL_ARGUMENT);
    for (i = 0; i < 5; i++) {
        snprintf(msg, sizeof msg, "n%d", (int)i);
        CHECK_ST(abcast_broadcast(node, (const uint8_t *)msg, strlen(msg)), ABCAST_OK);
    }
    CHECK(poll(&p, 1, 5000) == 1 && (p.revents & POLLIN)); /* readable once they wait */
    {
        size_t got = 0;
        double deadline = now_s() + 10;
        while (got < 5 && now_s() < deadline) {
            if (abcast_recv_many(node, evs, 3, 200, &count) != ABCAST_OK) continue;
            CHECK(count >= 1 && count <= 3);
            for (i = 0; i < count; i++) {
                CHECK(evs[i].kind == ABCAST_EVENT_DELIVER && evs[i].seq == got + 1);
                got++;
                abcast_event_release(&evs[i]);
            }
        }
        CHECK(got == 5);
    }
    CHECK(poll(&p, 1, 0) == 0); /* all taken: not readable */
    {
        abcast_stats st;
        memset(&st, 0xFF, sizeof st);
        st.size = sizeof st;
        CHECK_ST(abcast_node_stats(node, &st), ABCAST_OK);
        CHECK(st.size == sizeof st && st.relayer == 1);
        CHECK(st.sent_msgs == 5 && st.delivered_msgs == 5 && st.relayed_msgs == 5);
        CHECK(st.delivered_bytes == 10 && st.sent_bytes == 10 && st.delivered_seq == 5);
        /* Everything delivered, no peer: every queue is empty. */
        CHECK(st.delivery_queue == 0 && st.unrelayed == 0 && st.pending_msgs == 0);
        CHECK(st.write_queue_bytes == 0 && st.relay_backlog_bytes == 0);
        CHECK(st.repaired_relays == 0 && st.relayer_changes == 0);
        /* An older, smaller struct gets only its fields. */
        memset(&st, 0xFF, sizeof st);
        st.size = 2 * sizeof(uint32_t);
        CHECK_ST(abcast_node_stats(node, &st), ABCAST_OK);
        CHECK(st.size == 2 * sizeof(uint32_t) && st.relayer == 1 && st.epoch == UINT64_MAX);
        st.size = 0;
        CHECK_ST(abcast_node_stats(node, &st), ABCAST_INVALID_ARGUMENT);
        CHECK_ST(abcast_node_stats(node, NULL), ABCAST_NULL_ARGUMENT);
    }
    CHECK_ST(abcast_recv(node, &ev, 0), ABCAST_TIMEOUT);
    CHECK_ST(abcast_node_leave(node), ABCAST_OK);
    CHECK(poll(&p, 1, 5000) == 1); /* stopped: a receive returns at once */
    CHECK_ST(abcast_recv_many(node, evs, 8, -1, &count), ABCAST_STOPPED);
    abcast_node_stop(node);
}

#ifdef __linux__
/* Waits up to 10 s until `n` events wait for abcast_recv. */
static int wait_queued(abcast_node *node, uint64_t n) {
    double deadline = now_s() + 10;
    abcast_stats st;
    do {
        memset(&st, 0, sizeof st);
        st.size = sizeof st;
        if (abcast_node_stats(node, &st) == ABCAST_OK && st.delivery_queue == n) return 1;
        sleep_ms(1);
    } while (now_s() < deadline);
    return 0;
}

/* abcast_node_fd under EPOLLET: one edge each time events start to wait; events that
 * arrive while some still wait make none, so a program drains it until ABCAST_TIMEOUT
 * before waiting again. */
static void test_fd_edge_triggered(void) {
    abcast_node *node = start_single();
    abcast_event ev = {0};
    struct epoll_event want, got;
    int fd = -1, ep = epoll_create1(0);

    CHECK(ep >= 0);
    CHECK_ST(abcast_node_fd(node, &fd), ABCAST_OK);
    memset(&want, 0, sizeof want);
    want.events = EPOLLIN | EPOLLET;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &want) == 0);
    CHECK(epoll_wait(ep, &got, 1, 0) == 0); /* nothing waits: no edge */
    CHECK_ST(abcast_broadcast(node, (const uint8_t *)"a", 1), ABCAST_OK);
    CHECK_ST(abcast_broadcast(node, (const uint8_t *)"b", 1), ABCAST_OK);
    CHECK(wait_queued(node, 2));
    CHECK(epoll_wait(ep, &got, 1, 5000) == 1); /* the edge: events started to wait */
    CHECK(epoll_wait(ep, &got, 1, 0) == 0);    /* reported once */
    CHECK_ST(abcast_recv(node, &ev, 0), ABCAST_OK); /* one taken, one still waits */
    abcast_event_release(&ev);
    CHECK_ST(abcast_broadcast(node, (const uint8_t *)"c", 1), ABCAST_OK);
    CHECK(wait_queued(node, 2));
    CHECK(epoll_wait(ep, &got, 1, 0) == 0); /* no new edge while some still wait */
    while (abcast_recv(node, &ev, 0) == ABCAST_OK) abcast_event_release(&ev); /* drain */
    CHECK_ST(abcast_broadcast(node, (const uint8_t *)"d", 1), ABCAST_OK);
    CHECK(epoll_wait(ep, &got, 1, 5000) == 1); /* drained, then one more: a new edge */
    CHECK_ST(abcast_recv(node, &ev, 0), ABCAST_OK);
    abcast_event_release(&ev);
    CHECK_ST(abcast_node_leave(node), ABCAST_OK);
    CHECK(epoll_wait(ep, &got, 1, 5000) == 1); /* stopped: an edge, a receive returns */
    CHECK_ST(abcast_recv(node, &ev, -1), ABCAST_STOPPED);
    close(ep);
    abcast_node_stop(node);
}
#endif

/* ---- state transfer ---- */

/* A member's application state: how many messages it applied and their byte sum. */
struct app_state {
    uint64_t count;
    uint64_t sum;
};

static void on_snapshot(void *userdata, uint64_t seq, abcast_state *state) {
    const struct app_state *a = (const struct app_state *)userdata;
    (void)seq;
    CHECK_ST(abcast_state_append(state, (const uint8_t *)a, sizeof *a), ABCAST_OK);
}

static void on_install(void *userdata, uint64_t seq, const uint8_t *data, size_t len) {
    struct app_state *a = (struct app_state *)userdata;
    (void)seq;
    CHECK(len == sizeof *a);
    if (len == sizeof *a) memcpy(a, data, len);
}

/* Receives on `node` for up to `ms`, applying deliveries to `a`; counts the
 * ABCAST_EVENT_STATE_INSTALLED events (with their seq in *installed_at). */
static int apply_for(abcast_node *node, struct app_state *a, int ms, uint64_t *installed_at) {
    abcast_event ev = {0};
    int installed = 0;
    double deadline = now_s() + ms / 1000.0;
    while (now_s() < deadline) {
        abcast_status st = abcast_recv(node, &ev, 20);
        if (st != ABCAST_OK) continue;
        if (ev.kind == ABCAST_EVENT_DELIVER) {
            size_t i;
            a->count++;
            for (i = 0; i < ev.len; i++) a->sum += ev.data[i];
        } else if (ev.kind == ABCAST_EVENT_STATE_INSTALLED) {
            CHECK(ev.len == sizeof *a);
            if (installed_at != NULL) *installed_at = ev.seq;
            installed++;
        }
        abcast_event_release(&ev);
    }
    return installed;
}

static void *start_joiner(void *arg) {
    struct starter *s = (struct starter *)arg;
    s->st = abcast_node_start(s->cfg, &s->node);
    return NULL;
}

/* Members 1 and 2 form a group of three without member 3 (with safe delivery);
 * member 3 joins late and installs the state member 1 or 2 took at its process
 * joined, then applies what follows: all three end with the same state. */
static void test_state_transfer(void) {
    struct app_state a[3];
    struct starter s[3];
    uint16_t ports[3];
    pthread_t joiner, first[2];
    uint64_t installed_at = 0;
    int i, installed = 0;
    char msg[16];

    CHECK_ST(abcast_config_set_join(NULL, 1), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_delivery(NULL, ABCAST_DELIVERY_SAFE), ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_config_set_state_transfer(NULL, on_snapshot, on_install, NULL),
             ABCAST_NULL_ARGUMENT);
    CHECK_ST(abcast_state_append(NULL, (const uint8_t *)"x", 1), ABCAST_NULL_ARGUMENT);
    memset(a, 0, sizeof a);
    for (i = 0; i < 3; i++) ports[i] = free_port();
    for (i = 0; i < 3; i++) {
        s[i].cfg = group_config((uint32_t)i + 1, 3, ports);
        CHECK_ST(abcast_config_set_timeouts(s[i].cfg, 100, 1000), ABCAST_OK);
        CHECK_ST(abcast_config_set_startup_timeout(s[i].cfg, 1000), ABCAST_OK);
        CHECK_ST(abcast_config_set_delivery(s[i].cfg, 7), ABCAST_INVALID_ARGUMENT);
        /* Safe delivery: what one member applied, every survivor applies. */
        CHECK_ST(abcast_config_set_delivery(s[i].cfg, ABCAST_DELIVERY_SAFE), ABCAST_OK);
        CHECK_ST(abcast_config_set_state_transfer(s[i].cfg, NULL, on_install, &a[i]),
                 ABCAST_NULL_ARGUMENT);
        CHECK_ST(abcast_config_set_state_transfer(s[i].cfg, on_snapshot, on_install, &a[i]),
                 ABCAST_OK);
        s[i].node = NULL;
        s[i].callback = NULL;
    }
    CHECK_ST(abcast_config_set_join(s[2].cfg, 1), ABCAST_OK);
    /* Members 1 and 2 start together; member 3 counts as failed when they start. */
    for (i = 0; i < 2; i++) CHECK(pthread_create(&first[i], NULL, start_thread, &s[i]) == 0);
    for (i = 0; i < 2; i++) {
        CHECK(pthread_join(first[i], NULL) == 0);
        CHECK_ST(s[i].st, ABCAST_OK);
    }
    if (s[0].node == NULL || s[1].node == NULL) return;
    for (i = 0; i < 20; i++) {
        snprintf(msg, sizeof msg, "before%d", i);
        CHECK_ST(abcast_broadcast(s[i % 2].node, (const uint8_t *)msg, strlen(msg)), ABCAST_OK);
    }
    apply_for(s[0].node, &a[0], 300, NULL);
    apply_for(s[1].node, &a[1], 300, NULL);
    CHECK(a[0].count == 20 && a[1].count == 20);
    CHECK(pthread_create(&joiner, NULL, start_joiner, &s[2]) == 0);
    /* Members 1 and 2 receive meanwhile: they take the snapshot at the join. */
    apply_for(s[0].node, &a[0], 500, NULL);
    apply_for(s[1].node, &a[1], 500, NULL);
    CHECK(pthread_join(joiner, NULL) == 0);
    CHECK_ST(s[2].st, ABCAST_OK);
    if (s[2].node != NULL) {
        installed = apply_for(s[2].node, &a[2], 1000, &installed_at);
        CHECK(installed == 1 && installed_at > 20);
        CHECK(a[2].count == 20 && a[2].sum == a[0].sum);
        for (i = 0; i < 10; i++) {
            snprintf(msg, sizeof msg, "after%d", i);
            CHECK_ST(abcast_broadcast(s[i % 3].node, (const uint8_t *)msg, strlen(msg)),
                     ABCAST_OK);
        }
        for (i = 0; i < 3; i++) apply_for(s[i].node, &a[i], 500, NULL);
        CHECK(a[2].count == 30 && a[2].sum == a[0].sum && a[1].sum == a[0].sum);
    }
    for (i = 0; i < 3; i++) {
        abcast_config_free(s[i].cfg);
        abcast_node_stop(s[i].node);
    }
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    RUN(test_status_strings);
    RUN(test_version_and_log_level);
    RUN(test_last_error_is_per_thread);
    RUN(test_thread_cpu_affinity);
    RUN(test_thread_realtime_priority);
    RUN(test_config_null_arguments);
    RUN(test_config_bad_addresses);
    RUN(test_config_invalid_values);
    RUN(test_config_group_key);
    RUN(test_config_validate);
    RUN(test_start_errors);
    RUN(test_start_address_in_use);
    RUN(test_config_listen_addr_relay_window_max_payload);
    RUN(test_node_null_arguments);
    RUN(test_event_release_empty);
    RUN(test_single_member);
    RUN(test_try_broadcast_would_block);
    RUN(test_leave_wakes_receiver);
    RUN(test_callback);
    RUN(test_stop_from_callback);
    RUN(test_two_members);
    RUN(test_recv_many_and_fd);
#ifdef __linux__
    RUN(test_fd_edge_triggered);
#endif
    RUN(test_state_transfer);
    unlink(test_key_file());
    return test_summary();
}
