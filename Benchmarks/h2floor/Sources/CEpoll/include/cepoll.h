// epoll for the hand-written relay of Benchmarks/h2floor (not in Swift's Glibc module).
#include <sys/epoll.h>
