#ifndef LODESTAR_CMAXMINDDB_SHIM_H
#define LODESTAR_CMAXMINDDB_SHIM_H
#include <maxminddb.h>
#include <malloc.h>

/* Gives memory freed after compiling a database back to the system (glibc keeps it in its free lists otherwise). */
static inline int lodestar_malloc_trim(void) {
#ifdef __GLIBC__
    return malloc_trim(0);
#else
    return 0;
#endif
}
#endif
