/* Kafka helpers for integration tests: make a fresh topic, count what is in one. */
#ifndef SB_KAFKAUTIL_H
#define SB_KAFKAUTIL_H

#include "sb/kafka.h"

/* Creates topic with partitions (replication 1); an existing topic is fine.
 * Returns 0 or -1 with a message printed. */
int ku_create_topic(const char *brokers, const char *topic, int partitions);

/* A unique topic name with prefix. */
void ku_unique_topic(const char *prefix, char *out, size_t outsz);

/* Default connection options for the local stack. */
void ku_opts(struct sb_kafka_opts *o, const char *client_id);

#endif
