#ifndef NODE_AGENT_CSYSTEMD_SHIM_H
#define NODE_AGENT_CSYSTEMD_SHIM_H
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

// sd_notify is variadic-free, but sd_notifyf is variadic: Swift cannot call it, so callers
// format the state in Swift and use sd_notify.

// SD_BUS_ERROR_NULL is a macro Swift cannot import.
static inline sd_bus_error node_agent_bus_error_null(void) {
    sd_bus_error e = SD_BUS_ERROR_NULL;
    return e;
}
#endif
