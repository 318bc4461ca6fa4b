// PCRE 8.x (libpcre.so.3), the library Debian's nginx lua module links for ngx.re: the
// controller compiles regexes with it so "compiles" means what the edges will say.
// pcre_free is a global function pointer, which Swift cannot call directly: wrap it.
#ifndef SWITCHYARD_CPCRE1_SHIM_H
#define SWITCHYARD_CPCRE1_SHIM_H
#include <pcre.h>
static inline void sy_pcre_free(void *p) { pcre_free(p); }
#endif
