// hiredis (synchronous API only). Wrapped by SwitchyardRedis; nothing else imports this.
#ifndef SWITCHYARD_CHIREDIS_SHIM_H
#define SWITCHYARD_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#endif
