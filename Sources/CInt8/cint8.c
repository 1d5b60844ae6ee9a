#include "cint8.h"
int cint8_placeholder(void) { return 0; }
