/*
 * fetch_session.c — the per-shard fetch session cache (KIP-227).
 */
#include "fetch_session.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "meta.h"
#include "sstr.h"
#include "srv_assert.h"

struct srv_fetch_sessions {
    srv_fetch_session *head;
    int count;
    uint32_t next_id;
};

static void session_free(srv_fetch_session *fs)
{
    for (int i = 0; i < fs->n; i++)
        srv_sfree(fs->parts[i].topic);
    free(fs->parts);
    free(fs);
}

static srv_fetch_session *find(struct srv_fetch_sessions *c, int32_t id)
{
    for (srv_fetch_session *fs = c->head; fs; fs = fs->next)
        if (fs->id == id)
            return fs;
    return NULL;
}

static void unlink_session(struct srv_fetch_sessions *c, srv_fetch_session *fs)
{
    for (srv_fetch_session **pp = &c->head; *pp; pp = &(*pp)->next)
        if (*pp == fs) {
            *pp = fs->next;
            c->count--;
            return;
        }
}

static void evict_lru(struct srv_fetch_sessions *c)
{
    srv_fetch_session *old = NULL;
    for (srv_fetch_session *fs = c->head; fs; fs = fs->next)
        if (!old || fs->last_used_ms < old->last_used_ms)
            old = fs;
    if (old) {
        unlink_session(c, old);
        session_free(old);
    }
}

static int part_index(const srv_fetch_session *fs, kp_str topic, const kp_uuid *id, int by_id, int32_t p)
{
    for (int i = 0; i < fs->n; i++) {
        const srv_fs_part *x = &fs->parts[i];
        if (x->partition != p)
            continue;
        if (by_id ? memcmp(x->topic_id.b, id->b, 16) == 0 : srv_seq(topic, x->topic))
            return i;
    }
    return -1;
}

/* Adds or updates the partitions named in the request. */
static int apply_updates(srv_shard *s, srv_fetch_session *fs, const kp_fetch_request *rq, int16_t v)
{
    int by_id = v >= 13;
    for (int32_t i = 0; i < rq->topics_count; i++) {
        const kp_fetch_request_fetch_topic *t = &rq->topics[i];
        kp_str name = t->topic;
        if (by_id) {
            const srv_topic *mt = srv_meta_topic_by_id(s->meta, &t->topic_id);
            name = mt ? kp_str_c(mt->name) : (kp_str){"", 0};
        }
        for (int32_t j = 0; j < t->partitions_count; j++) {
            const kp_fetch_request_fetch_partition *p = &t->partitions[j];
            int k = part_index(fs, name, &t->topic_id, by_id, p->partition);
            if (k < 0) {
                if (fs->n == fs->cap) {
                    int cap = fs->cap ? fs->cap * 2 : 8;
                    srv_fs_part *np = realloc(fs->parts, (size_t)cap * sizeof(*np));
                    if (!np)
                        return -1;
                    fs->parts = np;
                    fs->cap = cap;
                }
                k = fs->n++;
                srv_fs_part *x = &fs->parts[k];
                memset(x, 0, sizeof(*x));
                x->topic = srv_sdup(name.len >= 0 ? name : (kp_str){"", 0});
                if (!x->topic) {
                    fs->n--;
                    return -1;
                }
                x->topic_id = t->topic_id;
                x->partition = p->partition;
            }
            fs->parts[k].fetch_offset = p->fetch_offset;
            fs->parts[k].max_bytes = p->partition_max_bytes;
        }
    }
    for (int32_t i = 0; i < rq->forgotten_topics_data_count; i++) {
        const kp_fetch_request_forgotten_topic *t = &rq->forgotten_topics_data[i];
        for (int32_t j = 0; j < t->partitions_count; j++) {
            int k = part_index(fs, t->topic, &t->topic_id, by_id, t->partitions[j]);
            if (k < 0)
                continue;
            srv_sfree(fs->parts[k].topic);
            memmove(&fs->parts[k], &fs->parts[k + 1], (size_t)(fs->n - k - 1) * sizeof(srv_fs_part));
            fs->n--;
        }
    }
    return 0;
}

static srv_fetch_session *create(srv_shard *s, struct srv_fetch_sessions *c)
{
    if (c->count >= SRV_FETCH_SESSION_SLOTS)
        evict_lru(c);
    srv_fetch_session *fs = calloc(1, sizeof(*fs));
    if (!fs)
        return NULL;
    /* id = k * nshards + shard: the shard is id % nshards for any shard
     * count, so shards never hand out the same id. k counts up and wraps
     * before the id would pass INT32_MAX: never negative; never 0 either. */
    const int64_t n = s->b->nshards;
    SRV_ASSERT(n > 0 && s->id >= 0 && s->id < n, "shard %d of %lld creates a fetch session", s->id,
               (long long)n);
    const uint32_t kmax = (uint32_t)((INT32_MAX - s->id) / n);
    do {
        c->next_id = c->next_id >= kmax ? 0 : c->next_id + 1;
        fs->id = (int32_t)((int64_t)c->next_id * n + s->id);
    } while (fs->id == 0 || find(c, fs->id));
    fs->next_epoch = 0; /* the creating fetch is epoch 0 */
    fs->next = c->head;
    c->head = fs;
    c->count++;
    return fs;
}

int16_t srv_fetch_session_begin(srv_shard *s, const kp_fetch_request *rq, int16_t v, srv_fetch_session **out,
                                int *full)
{
    *out = NULL;
    *full = 1;
    if (v < 7 || (rq->session_id == 0 && rq->session_epoch == -1))
        return 0; /* sessionless */
    if (!s->fetch_sessions && !(s->fetch_sessions = calloc(1, sizeof(*s->fetch_sessions))))
        return 0; /* no memory for a cache: sessionless still works */
    struct srv_fetch_sessions *c = s->fetch_sessions;
    srv_fetch_session *fs = NULL;
    if (rq->session_id != 0) {
        fs = srv_fetch_session_shard(s->b->nshards, rq->session_id) == s->id ? find(c, rq->session_id) : NULL;
        if (rq->session_epoch == -1 || rq->session_epoch == 0) {
            /* A full fetch closes the session it names and is served even when there is none: Kafka does,
             * and kafka-go's Client.Fetch always sends session id -1 with epoch -1. Epoch 0 opens a new
             * session below. */
            if (fs) {
                unlink_session(c, fs);
                session_free(fs);
                fs = NULL;
            }
            if (rq->session_epoch == -1)
                return 0;
        } else if (!fs) {
            return KP_ERR_FETCH_SESSION_ID_NOT_FOUND;
        } else if (rq->session_epoch != fs->next_epoch) {
            return KP_ERR_INVALID_FETCH_SESSION_EPOCH;
        } else {
            *full = 0;
        }
    }
    if (!fs) {
        if (rq->session_epoch != 0)
            return KP_ERR_INVALID_FETCH_SESSION_EPOCH;
        fs = create(s, c);
        if (!fs)
            return 0; /* no room: serve sessionless, which clients accept */
    }
    if (apply_updates(s, fs, rq, v) != 0) {
        unlink_session(c, fs);
        session_free(fs);
        return 0;
    }
    fs->next_epoch = fs->next_epoch == INT32_MAX ? 1 : fs->next_epoch + 1;
    fs->last_used_ms = s->now_ms;
    *out = fs;
    return 0;
}

int srv_fetch_session_shard(int nshards, int32_t id)
{
    return id > 0 && nshards > 0 ? id % nshards : -1;
}

srv_fetch_session *srv_fetch_session_find(srv_shard *s, int32_t id)
{
    return id && s->fetch_sessions ? find(s->fetch_sessions, id) : NULL;
}

void srv_fetch_sessions_free(srv_shard *s)
{
    struct srv_fetch_sessions *c = s->fetch_sessions;
    if (!c)
        return;
    while (c->head) {
        srv_fetch_session *fs = c->head;
        c->head = fs->next;
        session_free(fs);
    }
    free(c);
    s->fetch_sessions = NULL;
}
