/* Prints N distinct free TCP ports on 127.0.0.1, one per line: each is bound to port
 * 0 (all at once, so they differ), read back, and released. */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1, i;
    int fds[64];
    if (n < 1 || n > 64) {
        fprintf(stderr, "usage: %s N (1..64)\n", argv[0]);
        return 2;
    }
    for (i = 0; i < n; i++) {
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        memset(&a, 0, sizeof a);
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&a, sizeof a) != 0 ||
            getsockname(fds[i], (struct sockaddr *)&a, &len) != 0) {
            perror("bind 127.0.0.1:0");
            return 1;
        }
        printf("%u\n", (unsigned)ntohs(a.sin_port));
    }
    for (i = 0; i < n; i++) close(fds[i]);
    return 0;
}
