/*
 * fake_group_env.c — the fake group environment shared by the group unit
 * tests (see fake_group_env.h).
 *
 * Owns the kept log of its fake_group_env. Must not: defer a completion (an
 * append is answered before it returns, as a log that is always durable).
 */
#include "fake_group_env.h"

#include <CUnit/Basic.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "errors.h"
#include "group/group_log.h"

/* A record batch header alone is 61 bytes: anything shorter is no batch. */
#define BATCH_HEADER_LEN 61

static int64_t fake_now(void *arg)
{
    const fake_group_env *fe = arg;
    return fe->now_ms;
}

static void fake_append(void *arg, int32_t partition, const uint8_t *batch, size_t len,
                        srv_group_append_done done, void *ctx)
{
    fake_group_env *fe = arg;
    (void)partition;
    CU_ASSERT(len > BATCH_HEADER_LEN);
    fe->appends++;
    if (fe->append_error != KP_ERR_NONE) {
        done(ctx, fe->append_error); /* a failed write leaves nothing in the log */
        return;
    }
    if (fe->keep_log) {
        uint8_t *n = realloc(fe->log, fe->log_len + len);
        CU_ASSERT_FATAL(n != NULL);
        memcpy(n + fe->log_len, batch, len);
        fe->log = n;
        fe->log_len += len;
    }
    done(ctx, KP_ERR_NONE);
}

static int fake_topic(void *arg, kp_str name, kp_uuid *id, int32_t *nparts)
{
    const fake_group_env *fe = arg;
    for (int i = 0; i < fe->ntopics; i++)
        if (kp_str_eq(name, fe->topics[i].name)) {
            *id = fe->topics[i].id;
            *nparts = fe->topics[i].nparts;
            return 1;
        }
    return 0;
}

static uint64_t fake_meta_version(void *arg)
{
    const fake_group_env *fe = arg;
    return fe->version;
}

static int fake_topic_at(void *arg, int i, kp_str *name)
{
    const fake_group_env *fe = arg;
    if (i < 0 || i >= fe->ntopics)
        return 0;
    *name = kp_str_c(fe->topics[i].name);
    return 1;
}

static int fake_may_describe(void *arg, kp_str principal, kp_str host, kp_str topic)
{
    const fake_group_env *fe = arg;
    (void)host;
    return !(fe->denied_principal && kp_str_eq(principal, fe->denied_principal) &&
             kp_str_eq(topic, fe->denied_topic));
}

srv_groups *fake_group_env_groups(fake_group_env *fe, const srv_groups_config *cfg)
{
    srv_groups_env env = {fe,
                          fake_now,
                          fake_append,
                          NULL,
                          NULL,
                          fake_topic,
                          fake_meta_version,
                          fake_topic_at,
                          fake_may_describe};
    return srv_groups_new(cfg, &env);
}

int fake_group_env_replay(const fake_group_env *fe, srv_groups *gs)
{
    kp_batch_iter bi;
    kp_batch b;
    kp_batch_iter_init(&bi, fe->log, fe->log_len, 0);
    int r, nb = 0;
    while ((r = kp_batch_iter_next(&bi, &b)) == 1) {
        CU_ASSERT_EQUAL(srv_glog_replay_batch(gs, 0, &b), 0);
        nb++;
    }
    srv_groups_load_finish(gs);
    return r == 0 ? nb : -1;
}

void fake_group_env_clear_log(fake_group_env *fe)
{
    free(fe->log);
    fe->log = NULL;
    fe->log_len = 0;
}
