/*
 * topic_config.c — glue between the metadata's stored overrides and the
 * configuration module. Overrides were validated when stored; one that no
 * longer validates (a newer broker dropped a key) is skipped with a log line.
 */
#include "topic_config.h"

#include "logging.h"

void srv_topic_overrides(const srv_topic *t, srv_topic_config *out)
{
    srv_topic_config_init(out);
    for (int i = 0; i < t->ncfg; i++) {
        char err[160];
        if (srv_topic_config_alter(out, SRV_ALTER_SET, t->cfg[i].key, t->cfg[i].value, err, sizeof(err)) != 0)
            srv_warn("topic %s: stored config %s ignored: %s", t->name, t->cfg[i].key, err);
    }
}

void srv_topic_st_config(const srv_config *broker, const srv_topic *t, st_log_config *out)
{
    srv_topic_config tc;
    srv_topic_overrides(t, &tc);
    /* The config module fills only the config-derived fields. */
    st_log_config_default(out);
    srv_topic_config_to_st(broker, &tc, out);
}
