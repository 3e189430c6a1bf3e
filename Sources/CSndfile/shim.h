#ifndef USM_CSNDFILE_SHIM_H
#define USM_CSNDFILE_SHIM_H
#include <sndfile.h>
#endif
