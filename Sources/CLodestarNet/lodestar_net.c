#define _GNU_SOURCE
#include "lodestar_net.h"
#include <assert.h>
#include <stddef.h>

static_assert(sizeof(lodestar_mmsghdr) == sizeof(struct mmsghdr), "lodestar_mmsghdr mirrors struct mmsghdr");
static_assert(offsetof(lodestar_mmsghdr, len) == offsetof(struct mmsghdr, msg_len), "lodestar_mmsghdr mirrors struct mmsghdr");

int lodestar_recvmmsg(int fd, lodestar_mmsghdr *messages, unsigned int count, int flags, struct timespec *timeout) {
    return recvmmsg(fd, (struct mmsghdr *)messages, count, flags, timeout);
}

int lodestar_sendmmsg(int fd, lodestar_mmsghdr *messages, unsigned int count, int flags) {
    return sendmmsg(fd, (struct mmsghdr *)messages, count, flags);
}

int lodestar_msg_waitforone(void) { return MSG_WAITFORONE; }
