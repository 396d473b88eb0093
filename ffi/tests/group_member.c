/*
 * One member of the 3-process group test (ffi/tests/group_kill.sh).
 *
 *   group_member ID MEMBERS COUNT LOG DONE
 *
 * MEMBERS is "1=127.0.0.1:PORT,2=...". The member broadcasts COUNT messages
 * "ID:K" (K = 1..COUNT, one per millisecond or so) from the main thread while a
 * receiver thread appends every event to LOG, one line each, written with a single
 * write(2) so that a SIGKILL never leaves half a line:
 *
 *   D SEQ ORIGIN PAYLOAD      a delivery
 *   L SEQ MEMBER              member left
 *   J SEQ MEMBER              member joined
 *   R SEQ EPOCH RELAYER       relayer changed
 *   X                         this member was excluded
 *
 * Once it has delivered COUNT messages from every member still in the view, it stops
 * logging, creates the file DONE, and waits for SIGTERM; then it leaves the group,
 * frees everything and exits 0 (so that AddressSanitizer checks the whole run).
 */
#define _POSIX_C_SOURCE 200809L

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abcast.h"

#define MAX_MEMBERS 16

static abcast_node *node;
static uint32_t self_id;
static uint32_t ids[MAX_MEMBERS];
static int n_members;
static long count;
static int log_fd;

static void die(const char *what, abcast_status st) {
    fprintf(stderr, "member %u: %s: %s (%s)\n", (unsigned)self_id, what, abcast_status_str(st),
            abcast_last_error());
    exit(3);
}

static void log_line(const char *line) {
    size_t len = strlen(line);
    if (write(log_fd, line, len) != (ssize_t)len) {
        perror("write log");
        exit(3);
    }
}

static int index_of(uint32_t id) {
    int i;
    for (i = 0; i < n_members; i++)
        if (ids[i] == id) return i;
    return -1;
}

/* Receives and logs until COUNT deliveries from every member still in the view. */
static void *receiver(void *arg) {
    long delivered[MAX_MEMBERS] = {0};
    int left[MAX_MEMBERS] = {0};
    char line[512];
    abcast_event ev = {0};
    (void)arg;
    for (;;) {
        int i, done = 1;
        abcast_status st;
        for (i = 0; i < n_members; i++)
            if (!left[i] && delivered[i] < count) done = 0;
        if (done) return NULL;
        st = abcast_recv(node, &ev, -1);
        if (st != ABCAST_OK) die("abcast_recv", st);
        switch (ev.kind) {
        case ABCAST_EVENT_DELIVER:
            snprintf(line, sizeof line, "D %llu %u %.*s\n", (unsigned long long)ev.seq,
                     (unsigned)ev.origin, (int)ev.len, (const char *)ev.data);
            if ((i = index_of(ev.origin)) >= 0) delivered[i]++;
            break;
        case ABCAST_EVENT_MEMBER_LEFT:
            snprintf(line, sizeof line, "L %llu %u\n", (unsigned long long)ev.seq,
                     (unsigned)ev.member);
            if ((i = index_of(ev.member)) >= 0) left[i] = 1;
            break;
        case ABCAST_EVENT_MEMBER_JOINED:
            snprintf(line, sizeof line, "J %llu %u\n", (unsigned long long)ev.seq,
                     (unsigned)ev.member);
            break;
        case ABCAST_EVENT_RELAYER_CHANGED:
            snprintf(line, sizeof line, "R %llu %llu %u\n", (unsigned long long)ev.seq,
                     (unsigned long long)ev.epoch, (unsigned)ev.member);
            break;
        case ABCAST_EVENT_EXCLUDED:
            log_line("X\n");
            fprintf(stderr, "member %u: excluded\n", (unsigned)self_id);
            exit(4);
        default:
            snprintf(line, sizeof line, "? %d\n", (int)ev.kind);
        }
        abcast_event_release(&ev);
        log_line(line);
    }
}

int main(int argc, char **argv) {
    abcast_config *cfg;
    abcast_status st;
    pthread_t rx;
    sigset_t term;
    char *members, *item, *save = NULL;
    size_t failed = 0;
    long k;
    int sig, fd;
    struct timespec pace = {0, 1000000L};

    if (argc != 6) {
        fprintf(stderr, "usage: %s ID MEMBERS COUNT LOG DONE\n", argv[0]);
        return 2;
    }
    self_id = (uint32_t)strtoul(argv[1], NULL, 10);
    count = strtol(argv[3], NULL, 10);

    /* SIGTERM is taken with sigwait: block it in every thread (the library's threads
     * inherit this mask). */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &term, NULL);

    cfg = abcast_config_new(self_id);
    if (cfg == NULL) die("abcast_config_new", ABCAST_INTERNAL_ERROR);
    members = strdup(argv[2]);
    for (item = strtok_r(members, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL || n_members == MAX_MEMBERS) {
            fprintf(stderr, "bad member list: %s\n", argv[2]);
            return 2;
        }
        *eq = '\0';
        ids[n_members] = (uint32_t)strtoul(item, NULL, 10);
        st = abcast_config_add_member(cfg, ids[n_members], eq + 1);
        if (st != ABCAST_OK) die("abcast_config_add_member", st);
        n_members++;
    }
    free(members);
    if ((st = abcast_config_set_timeouts(cfg, 100, 2000)) != ABCAST_OK ||
        (st = abcast_config_set_startup_timeout(cfg, 30000)) != ABCAST_OK)
        die("abcast_config_set_*", st);
    st = abcast_node_start(cfg, &node);
    abcast_config_free(cfg);
    if (st != ABCAST_OK) die("abcast_node_start", st);
    if ((st = abcast_node_failed_at_start(node, NULL, 0, &failed)) != ABCAST_OK)
        die("abcast_node_failed_at_start", st);
    if (failed != 0) {
        fprintf(stderr, "member %u: %zu members did not connect\n", (unsigned)self_id, failed);
        return 3;
    }

    log_fd = open(argv[4], O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (log_fd < 0) {
        perror(argv[4]);
        return 3;
    }
    if (pthread_create(&rx, NULL, receiver, NULL) != 0) return 3;
    for (k = 1; k <= count; k++) {
        char msg[64];
        snprintf(msg, sizeof msg, "%u:%ld", (unsigned)self_id, k);
        st = abcast_broadcast(node, (const uint8_t *)msg, strlen(msg));
        if (st != ABCAST_OK) die("abcast_broadcast", st);
        nanosleep(&pace, NULL); /* pacing: the stream lasts a while */
    }
    pthread_join(rx, NULL);
    close(log_fd);

    fd = open(argv[5], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        perror(argv[5]);
        return 3;
    }
    close(fd);

    if (sigwait(&term, &sig) != 0) return 3;
    abcast_node_stop(node);
    return 0;
}
