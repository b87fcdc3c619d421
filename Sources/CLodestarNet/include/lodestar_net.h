// Batched datagram I/O (recvmmsg/sendmmsg) for the DNS server's UDP loop; Swift's Glibc module does not expose them.
// And a prefetch hint, which Swift has no word for.
#ifndef LODESTAR_NET_H
#define LODESTAR_NET_H

#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <time.h>

/// One datagram of a batch: where it came from or goes, and its bytes.
typedef struct {
    struct msghdr hdr;
    unsigned int len;
} lodestar_mmsghdr;

/// recvmmsg(2): fills up to `count` messages; returns how many, or -1 with errno.
int lodestar_recvmmsg(int fd, lodestar_mmsghdr *messages, unsigned int count, int flags, struct timespec *timeout);

/// sendmmsg(2): sends up to `count` messages; returns how many were sent, or -1 with errno.
int lodestar_sendmmsg(int fd, lodestar_mmsghdr *messages, unsigned int count, int flags);

/// MSG_WAITFORONE, which Glibc's Swift overlay does not name.
int lodestar_msg_waitforone(void);

/// Asks the CPU to bring the cache line at `address` in for a read, without waiting for it (the DNS server's batches
/// prefetch each query's first table word before answering the first query).
static inline void lodestar_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
