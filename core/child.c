/* placeholder: being written */
#include "autoconf.h"
typedef int pgkeel_placeholder_child;
