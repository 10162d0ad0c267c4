/*
 * topic_config.h — a topic's metadata overrides seen through config.h: the
 * storage settings of its partitions.
 */
#ifndef SRV_TOPIC_CONFIG_H
#define SRV_TOPIC_CONFIG_H

#include "config.h"
#include "meta.h"
#include "st_log.h"

/* Builds the topic's srv_topic_config from its stored overrides. */
void srv_topic_overrides(const srv_topic *t, srv_topic_config *out);
void srv_topic_st_config(const srv_config *broker, const srv_topic *t, st_log_config *out);

#endif
