/* The frame every program shares: command line (--config, --help, --version), the
 * configuration options common to all services, and signal handling for a graceful
 * shutdown (handlers only set a flag; SIGPIPE ignored). */
#ifndef SB_SERVICE_H
#define SB_SERVICE_H

#include "sb/config.h"
#include "sb/kafka.h"

#include <stddef.h>

/* Options every service has; a service appends its own table after these. */
extern const struct sb_config_def sb_service_common_defs[];
extern const size_t sb_service_common_ndefs;

/* Installs SIGINT/SIGTERM handlers (sigaction) that request a stop; ignores SIGPIPE. */
void sb_signals_install(void);
/* 1 once SIGINT or SIGTERM arrived (or sb_stop_request was called). */
int sb_stop_requested(void);
void sb_stop_request(void);

/* Parses argv and builds the configuration from defaults, --config FILE and the
 * environment, for the table made of the common definitions followed by defs.
 * Returns 0 with *out set (caller destroys), 1 when --help/--version was printed
 * (exit 0), or a negative code after printing one clear line on stderr (exit 2). */
int sb_service_configure(int argc, char **argv, const char *program, const char *summary,
                         const struct sb_config_def *defs, size_t ndefs, struct sb_config **out);

/* Fills opts from the configuration (kafka.brokers, rdkafka passthrough). The
 * strings stay borrowed from cfg; keys/values arrays are borrowed too. */
void sb_service_kafka_opts(const struct sb_config *cfg, const char *client_id,
                           struct sb_kafka_opts *opts);

#endif
