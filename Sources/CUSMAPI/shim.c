// The C API's declarations live in include/usm.h; their definitions are the @_cdecl functions of USMC.
#include "usm.h"
