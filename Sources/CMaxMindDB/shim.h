#ifndef LODESTAR_CMAXMINDDB_SHIM_H
#define LODESTAR_CMAXMINDDB_SHIM_H
#include <maxminddb.h>
#endif
