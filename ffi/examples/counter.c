/*
 * A replicated counter over abcast: copy this to start your own C program.
 *
 *   counter ID MEMBERS [OPS]
 *
 *   counter 1 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 &
 *   counter 2 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003 &
 *   counter 3 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
 *
 * Every member broadcasts OPS operations (default 1000), "add N" or "double", then
 * "done". Every member applies every operation in the order abcast delivers them;
 * since that order is the same everywhere, so is the result (the operations do not
 * commute: the order matters). Once every member still in the group has said "done"
 * (one that crashed or left counts as done), a member prints the counter and a digest
 * of the order: every member prints the same line. It then says "bye" and leaves once
 * every member has said "bye": a member that left at once could leave a slower one
 * alone before it delivered everything (delivery is not uniform: what a member that
 * leaves or crashes delivered last may never reach the others).
 *
 * Build:  cc -std=c99 counter.c $(pkg-config --cflags --libs abcast) \
 *            -Wl,-rpath,$(pkg-config --variable=libdir abcast) -o counter
 * (the rpath lets it find libabcast.so where `make -C ffi install` put it; or link
 * statically with `pkg-config --cflags --libs abcast-static`)
 *
 * One thread does everything, so it uses abcast_try_broadcast: a blocking
 * abcast_broadcast could wait for room in the delivery queue, which only abcast_recv
 * empties (a program with a receiving thread can use abcast_broadcast).
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abcast.h"

#define MAX_MEMBERS 64

struct member {
    uint32_t id;
    int done; /* said "done", crashed or left */
    int bye;  /* said "bye", crashed or left */
};

static int all(const struct member *m, int n, int bye) {
    int i;
    for (i = 0; i < n; i++)
        if (!(bye ? m[i].bye : m[i].done)) return 0;
    return 1;
}

static int fail(const char *what, abcast_status st) {
    /* abcast_last_error(): this thread's last failure, with the function's name. */
    fprintf(stderr, "counter: %s failed: %s\n  %s\n", what, abcast_status_str(st),
            abcast_last_error());
    return 1;
}

int main(int argc, char **argv) {
    struct member members[MAX_MEMBERS];
    int n_members = 0, i, finished = 0, rc = 0;
    uint32_t self;
    long ops, sent = 0, to_send;
    uint64_t counter = 0, digest = 1469598103934665603ULL, applied = 0;
    char *list, *item, *save = NULL, msg[64];
    abcast_config *cfg;
    abcast_node *node = NULL;
    abcast_event ev = {0}; /* zeroed: abcast_event_release is then always safe */
    abcast_status st;

    if (argc < 3) {
        fprintf(stderr, "usage: %s ID ID=HOST:PORT,ID=HOST:PORT,... [OPS]\n", argv[0]);
        return 2;
    }
    self = (uint32_t)strtoul(argv[1], NULL, 10);
    ops = argc > 3 ? strtol(argv[3], NULL, 10) : 1000;

    /* 1. The configuration: every member, this one included, same list everywhere. */
    cfg = abcast_config_new(self);
    if (cfg == NULL) return fail("abcast_config_new", ABCAST_INTERNAL_ERROR);
    list = strdup(argv[2]);
    for (item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (eq == NULL || n_members == MAX_MEMBERS) {
            fprintf(stderr, "counter: bad member `%s`\n", item);
            return 2;
        }
        *eq = '\0';
        members[n_members].id = (uint32_t)strtoul(item, NULL, 10);
        members[n_members].done = 0;
        members[n_members].bye = 0;
        st = abcast_config_add_member(cfg, members[n_members].id, eq + 1);
        if (st != ABCAST_OK) return fail("abcast_config_add_member", st);
        n_members++;
    }
    free(list);

    /* 2. Start: blocks until every member is connected (or the start-up timeout). */
    st = abcast_node_start(cfg, &node);
    abcast_config_free(cfg); /* the node keeps a copy */
    if (st != ABCAST_OK) return fail("abcast_node_start", st);

    /* 3. Broadcast and receive in one loop: OPS operations and "done", then, once
     * everyone is done, "bye". */
    to_send = ops + 1;
    while (!all(members, n_members, 1)) {
        int sending = sent < to_send;
        if (sending) {
            if (sent == ops + 1)
                snprintf(msg, sizeof msg, "bye");
            else if (sent == ops)
                snprintf(msg, sizeof msg, "done");
            else if (sent % 7 == 3)
                snprintf(msg, sizeof msg, "double");
            else
                snprintf(msg, sizeof msg, "add %u", (unsigned)(self * 1000 + sent % 100));
            st = abcast_try_broadcast(node, (const uint8_t *)msg, strlen(msg));
            if (st == ABCAST_OK)
                sent++;
            else if (st != ABCAST_WOULD_BLOCK) {
                rc = fail("abcast_try_broadcast", st);
                break;
            }
        }
        /* Poll while there is more to send; otherwise wait up to 100 ms. */
        st = abcast_recv(node, &ev, sending ? 0 : 100);
        if (st == ABCAST_TIMEOUT) continue;
        if (st != ABCAST_OK) {
            rc = fail("abcast_recv", st);
            break;
        }
        switch (ev.kind) {
        case ABCAST_EVENT_DELIVER: {
            /* ev.data is not NUL-terminated and is valid until abcast_event_release. */
            char text[64];
            size_t k;
            snprintf(text, sizeof text, "%.*s", (int)ev.len, (const char *)ev.data);
            if (strncmp(text, "add ", 4) == 0 || strcmp(text, "double") == 0) {
                if (text[0] == 'a')
                    counter += strtoull(text + 4, NULL, 10);
                else
                    counter *= 2;
                applied++;
                /* FNV-1a over (origin, text): the order of the operations. */
                digest = (digest ^ ev.origin) * 1099511628211ULL;
                for (k = 0; text[k] != '\0'; k++)
                    digest = (digest ^ (unsigned char)text[k]) * 1099511628211ULL;
            }
            for (i = 0; i < n_members; i++) {
                if (members[i].id != ev.origin) continue;
                if (strcmp(text, "done") == 0) members[i].done = 1;
                if (strcmp(text, "bye") == 0) members[i].bye = 1;
            }
            break;
        }
        case ABCAST_EVENT_MEMBER_LEFT:
            fprintf(stderr, "counter %u: member %u left at seq %llu\n", (unsigned)self,
                    (unsigned)ev.member, (unsigned long long)ev.seq);
            for (i = 0; i < n_members; i++)
                if (members[i].id == ev.member) members[i].done = members[i].bye = 1;
            break;
        case ABCAST_EVENT_RELAYER_CHANGED:
            fprintf(stderr, "counter %u: member %u relays from seq %llu (epoch %llu)\n",
                    (unsigned)self, (unsigned)ev.member, (unsigned long long)ev.seq,
                    (unsigned long long)ev.epoch);
            break;
        case ABCAST_EVENT_EXCLUDED:
            fprintf(stderr, "counter %u: excluded from the group\n", (unsigned)self);
            rc = 1;
            break;
        default:
            break;
        }
        abcast_event_release(&ev); /* frees the payload */
        if (rc != 0) break;
        if (!finished && all(members, n_members, 0)) {
            finished = 1;
            printf("counter = %llu after %llu operations, order digest %016llx\n",
                   (unsigned long long)counter, (unsigned long long)applied,
                   (unsigned long long)digest);
            fflush(stdout);
            to_send = ops + 2; /* and now "bye" */
        }
    }

    /* 4. Leave gracefully and free the node. */
    abcast_node_stop(node);
    return rc;
}
