#ifndef USM_CXXHASH_SHIM_H
#define USM_CXXHASH_SHIM_H
#include <xxhash.h>
#endif
