// PCRE2 with 8-bit code units: the same library and width nginx links (libpcre2-8).
// Function-like macros such as pcre2_compile do not import into Swift; call the _8 names.
#ifndef SWITCHYARD_CPCRE2_SHIM_H
#define SWITCHYARD_CPCRE2_SHIM_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif
