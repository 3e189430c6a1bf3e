#ifndef USM_CSAMPLERATE_SHIM_H
#define USM_CSAMPLERATE_SHIM_H
#include <samplerate.h>
#endif
