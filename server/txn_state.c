/*
 * txn_state.c — the transaction coordinator's rules for one transactional
 * id: InitProducerId, AddPartitionsToTxn (and its verify-only form),
 * AddOffsetsToTxn, EndTxn in transaction versions 1 and 2, fences, timeouts,
 * expiration and the completion after the markers.
 *
 * Owns every state transition and the checks that a written transition is
 * one the rules allow (SRV_ASSERT: a broken transition would hand out
 * epochs twice or lose a transaction). Must not: allocate producer ids, read
 * a clock or touch a log (the caller does, see txn_state.h).
 */
#include "txn_state.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "srv_assert.h"

#define EPOCH_MAX ((int16_t)32767)

bool srv_txn_epoch_exhausted(int16_t epoch)
{
    return epoch >= EPOCH_MAX - 1;
}

/* While a Prepare state's markers are written the id is pending its Complete
 * state: Kafka's sendTxnMarkersCallback (and the load) call prepareComplete
 * before sending them, so every request meanwhile gets CONCURRENT_TRANSACTIONS. */
static int completion_of(srv_txn_state s)
{
    if (s == SRV_TXN_PREPARE_COMMIT)
        return SRV_TXN_COMPLETE_COMMIT;
    if (s == SRV_TXN_PREPARE_ABORT)
        return SRV_TXN_COMPLETE_ABORT;
    return SRV_TXN_NO_PENDING;
}

static srv_txn_meta *meta_alloc(const char *id, int32_t id_len)
{
    srv_txn_meta *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->txn_id = malloc((size_t)id_len + 1);
    if (!m->txn_id) {
        free(m);
        return NULL;
    }
    memcpy(m->txn_id, id, (size_t)id_len);
    m->txn_id[id_len] = '\0';
    m->id_len = id_len;
    srv_txn_image_init(&m->img);
    m->last_epoch = SRV_TXN_NO_EPOCH;
    m->pending = SRV_TXN_NO_PENDING;
    return m;
}

srv_txn_meta *srv_txn_meta_new(const char *id, int32_t id_len, int64_t producer_id, int32_t timeout_ms,
                               int64_t now)
{
    srv_txn_meta *m = meta_alloc(id, id_len);
    if (!m)
        return NULL;
    m->img.producer_id = producer_id;
    m->img.timeout_ms = timeout_ms;
    m->img.last_update_ms = now;
    return m;
}

srv_txn_meta *srv_txn_meta_from_image(const char *id, int32_t id_len, srv_txn_image *img)
{
    srv_txn_meta *m = meta_alloc(id, id_len);
    if (!m)
        return NULL;
    m->img = *img;
    srv_txn_image_init(img);
    m->pending = completion_of(m->img.state);
    return m;
}

void srv_txn_meta_free(srv_txn_meta *m)
{
    if (!m)
        return;
    srv_txn_image_clear(&m->img);
    free(m->txn_id);
    free(m);
}

void srv_txn_step_clear(srv_txn_step *s)
{
    srv_txn_image_clear(&s->next);
    memset(s, 0, sizeof(*s));
    srv_txn_image_init(&s->next);
    s->next_last_epoch = SRV_TXN_NO_EPOCH;
    s->answer_pid = SRV_TXN_NO_PID;
    s->answer_epoch = SRV_TXN_NO_EPOCH;
}

static void step_reset(srv_txn_step *s)
{
    memset(s, 0, sizeof(*s));
    srv_txn_image_init(&s->next);
    s->next_last_epoch = SRV_TXN_NO_EPOCH;
    s->answer_pid = SRV_TXN_NO_PID;
    s->answer_epoch = SRV_TXN_NO_EPOCH;
}

/* The transition starts from the current image (Kafka's TransitionData copies
 * every field); prevProducerId is always the producer id before it
 * (TransactionMetadata.prepareTransitionTo). */
static bool transit_from(const srv_txn_meta *m, srv_txn_state to, srv_txn_step *out)
{
    if (srv_txn_image_copy(&out->next, &m->img)) {
        out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        return false;
    }
    out->next.state = to;
    out->next.prev_producer_id = m->img.producer_id;
    out->next_last_epoch = m->last_epoch;
    out->write = true;
    return true;
}

static void drop_parts(srv_txn_image *img)
{
    for (int32_t i = 0; i < img->nparts; i++)
        free(img->parts[i].topic);
    free(img->parts);
    img->parts = NULL;
    img->nparts = 0;
}

int srv_txn_step_record(const srv_txn_cfg *cfg, const srv_txn_meta *m, const srv_txn_step *s, kp_writer *key,
                        kp_writer *value)
{
    SRV_ASSERT(s->write, "txn %.*s: a step without a transition has no record", (int)m->id_len, m->txn_id);
    int rc = srv_txn_log_key(key, m->txn_id, m->id_len);
    if (rc || s->tombstone)
        return rc;
    return srv_txn_log_value(value, srv_txn_log_value_version(cfg->tv_level), &s->next);
}

void srv_txn_begin(srv_txn_meta *m, const srv_txn_step *s)
{
    SRV_ASSERT(s->write, "txn %.*s: begin of a step that writes nothing", (int)m->id_len, m->txn_id);
    if (s->next.state == SRV_TXN_COMPLETE_COMMIT || s->next.state == SRV_TXN_COMPLETE_ABORT) {
        SRV_ASSERT(m->pending == (int)s->next.state,
                   "txn %.*s: %s written without the markers of a Prepare state", (int)m->id_len, m->txn_id,
                   srv_txn_state_name(s->next.state));
        return;
    }
    SRV_ASSERT(m->pending == SRV_TXN_NO_PENDING, "txn %.*s: transition to %s while %s is being written",
               (int)m->id_len, m->txn_id, srv_txn_state_name(s->next.state),
               srv_txn_state_name((srv_txn_state)m->pending));
    m->pending = s->tombstone ? (int)SRV_TXN_DEAD : (int)s->next.state;
}

static bool same_parts(const srv_txn_image *a, const srv_txn_image *b)
{
    if (a->nparts != b->nparts)
        return false;
    for (int32_t i = 0; i < a->nparts; i++)
        if (!srv_txn_image_has_part(b, a->parts[i].topic, a->parts[i].topic_len, a->parts[i].partition))
            return false;
    return true;
}

static bool superset_of(const srv_txn_image *big, const srv_txn_image *small)
{
    for (int32_t i = 0; i < small->nparts; i++)
        if (!srv_txn_image_has_part(big, small->parts[i].topic, small->parts[i].topic_len,
                                    small->parts[i].partition))
            return false;
    return true;
}

/* TransactionMetadata.validProducerEpoch. */
static bool valid_epoch(const srv_txn_meta *m, const srv_txn_step *s)
{
    const srv_txn_image *n = &s->next;
    bool v2 = n->client_tv >= 2;
    bool complete = n->state == SRV_TXN_COMPLETE_COMMIT || n->state == SRV_TXN_COMPLETE_ABORT;
    bool prepare = n->state == SRV_TXN_PREPARE_COMMIT || n->state == SRV_TXN_PREPARE_ABORT;
    if (v2 && complete && n->producer_epoch == 0 && n->producer_id != m->img.producer_id)
        return n->prev_producer_id == m->img.producer_id;
    if (v2 && prepare && n->producer_epoch != m->img.producer_epoch)
        return s->next_last_epoch == m->img.producer_epoch && n->producer_id == m->img.producer_id;
    return n->producer_epoch == m->img.producer_epoch && n->producer_id == m->img.producer_id;
}

/* TransactionMetadata.completeTransitionTo: the checks, then the new image. */
void srv_txn_written(srv_txn_meta *m, srv_txn_step *s)
{
    const srv_txn_image *n = &s->next;
    SRV_ASSERT(!s->tombstone, "txn %.*s: a written tombstone removes the id, it is not applied",
               (int)m->id_len, m->txn_id);
    SRV_ASSERT(m->pending == (int)n->state, "txn %.*s: written %s but %s was pending", (int)m->id_len,
               m->txn_id, srv_txn_state_name(n->state),
               m->pending < 0 ? "nothing" : srv_txn_state_name((srv_txn_state)m->pending));
    SRV_ASSERT(n->producer_id >= 0 && n->producer_epoch >= 0, "txn %.*s: written producer %lld epoch %d",
               (int)m->id_len, m->txn_id, (long long)n->producer_id, n->producer_epoch);
    switch (n->state) {
    case SRV_TXN_EMPTY:
        SRV_ASSERT(
            (n->producer_epoch == m->img.producer_epoch || n->producer_epoch == m->img.producer_epoch + 1 ||
             (n->producer_epoch == 0 && n->producer_id != m->img.producer_id)) &&
                n->nparts == 0 && n->start_ms == -1,
            "txn %.*s: Empty transition with epoch %d -> %d, %d partitions, start %lld", (int)m->id_len,
            m->txn_id, m->img.producer_epoch, n->producer_epoch, n->nparts, (long long)n->start_ms);
        break;
    case SRV_TXN_ONGOING:
        SRV_ASSERT(
            valid_epoch(m, s) && superset_of(n, &m->img) && n->timeout_ms == m->img.timeout_ms,
            "txn %.*s: Ongoing transition changes the producer (%lld/%d -> %lld/%d) or drops partitions",
            (int)m->id_len, m->txn_id, (long long)m->img.producer_id, m->img.producer_epoch,
            (long long)n->producer_id, n->producer_epoch);
        break;
    case SRV_TXN_PREPARE_COMMIT:
    case SRV_TXN_PREPARE_ABORT:
        SRV_ASSERT((valid_epoch(m, s) || s->fence) && same_parts(n, &m->img) &&
                       n->timeout_ms == m->img.timeout_ms,
                   "txn %.*s: %s transition with epoch %d -> %d or other partitions", (int)m->id_len,
                   m->txn_id, srv_txn_state_name(n->state), m->img.producer_epoch, n->producer_epoch);
        break;
    case SRV_TXN_COMPLETE_COMMIT:
    case SRV_TXN_COMPLETE_ABORT:
        SRV_ASSERT(valid_epoch(m, s) && n->timeout_ms == m->img.timeout_ms && n->start_ms != -1,
                   "txn %.*s: %s transition with epoch %d -> %d, start %lld", (int)m->id_len, m->txn_id,
                   srv_txn_state_name(n->state), m->img.producer_epoch, n->producer_epoch,
                   (long long)n->start_ms);
        break;
    default:
        SRV_ASSERT(0, "txn %.*s: %s is never written", (int)m->id_len, m->txn_id,
                   srv_txn_state_name(n->state));
    }
    srv_txn_image_clear(&m->img);
    m->img = s->next;
    srv_txn_image_init(&s->next);
    m->last_epoch = s->next_last_epoch;
    m->pending = completion_of(m->img.state);
    /* TransactionMetadata.prepareComplete clears it: the fence reached the log. */
    if (m->img.state == SRV_TXN_COMPLETE_COMMIT || m->img.state == SRV_TXN_COMPLETE_ABORT)
        m->failed_fence = false;
}

void srv_txn_write_failed(srv_txn_meta *m, const srv_txn_step *s)
{
    SRV_ASSERT(m->pending != SRV_TXN_NO_PENDING, "txn %.*s: a failed write with nothing pending",
               (int)m->id_len, m->txn_id);
    /* A Complete record that failed stays owed: the caller writes it again
     * (Kafka's marker manager retries its append). */
    if (s->next.state == SRV_TXN_COMPLETE_COMMIT || s->next.state == SRV_TXN_COMPLETE_ABORT)
        return;
    m->pending = SRV_TXN_NO_PENDING;
    /* Kafka bumps the epoch in memory before the fence's append and keeps it
     * when the append fails (TransactionCoordinator.endTransaction): the old
     * producer stays fenced, and the next fence reuses that epoch
     * (hasFailedEpochFence) instead of bumping again. */
    if (s->fence) {
        m->img.producer_epoch = s->next.producer_epoch;
        m->last_epoch = SRV_TXN_NO_EPOCH;
        m->failed_fence = true;
    }
}

int16_t srv_txn_init_precheck(const srv_txn_cfg *cfg, int32_t id_len, int32_t timeout_ms)
{
    if (id_len <= 0)
        return KP_ERR_INVALID_REQUEST;
    /* TransactionStateManager.validateTransactionTimeoutMs */
    if (timeout_ms <= 0 || timeout_ms > cfg->max_timeout_ms)
        return KP_ERR_INVALID_TRANSACTION_TIMEOUT;
    return KP_ERR_NONE;
}

/* The abort the coordinator starts itself: TransactionMetadata.prepareFenceProducerEpoch
 * followed by endTransaction(ABORT, isFromClient = false) with the server's
 * transaction version. Kafka 4.4 writes one PrepareAbort with the epoch bumped
 * once, for both versions (seen in its __transaction_state). */
static void fence_abort(const srv_txn_cfg *cfg, srv_txn_meta *m, int64_t now, srv_txn_step *out)
{
    int16_t e = m->img.producer_epoch;
    int16_t bumped = (m->failed_fence || e == EPOCH_MAX) ? e : (int16_t)(e + 1);
    if (!transit_from(m, SRV_TXN_PREPARE_ABORT, out))
        return;
    out->fence = true;
    out->next.producer_epoch = bumped;
    out->next.next_producer_id = SRV_TXN_NO_PID;
    out->next.last_update_ms = now;
    out->next.client_tv = cfg->tv_level >= 2 ? cfg->tv_level : 0;
    out->next_last_epoch = SRV_TXN_NO_EPOCH;
    out->markers = SRV_TXN_MARK_ABORT;
}

/* TransactionCoordinator.prepareInitProducerIdTransit (+ handleInitProducerId). */
void srv_txn_decide_init(const srv_txn_cfg *cfg, srv_txn_meta *m, int32_t timeout_ms, bool has_expected,
                         int64_t exp_pid, int16_t exp_epoch, int64_t new_pid, int64_t now, srv_txn_step *out)
{
    step_reset(out);
    out->error = srv_txn_init_precheck(cfg, m->id_len, timeout_ms);
    if (out->error)
        return;
    const srv_txn_image *c = &m->img;
    if (m->pending != SRV_TXN_NO_PENDING) {
        out->error = KP_ERR_CONCURRENT_TRANSACTIONS;
        return;
    }
    /* isValidProducerId: a new id, the current producer id, or a retry after
     * an epoch overflow that rotated the id. */
    if (has_expected && !(c->producer_epoch == SRV_TXN_NO_EPOCH || exp_pid == c->producer_id ||
                          (exp_pid == c->prev_producer_id && srv_txn_epoch_exhausted(exp_epoch)))) {
        out->error = KP_ERR_PRODUCER_FENCED;
        return;
    }
    switch (c->state) {
    case SRV_TXN_PREPARE_COMMIT:
    case SRV_TXN_PREPARE_ABORT:
        out->error = KP_ERR_CONCURRENT_TRANSACTIONS;
        return;
    case SRV_TXN_ONGOING:
        /* Abort first with a bumped epoch that is never returned; the client
         * retries and bumps again (or rotates the id when that exhausts it). */
        fence_abort(cfg, m, now, out);
        if (out->write)
            out->error = KP_ERR_CONCURRENT_TRANSACTIONS;
        return;
    case SRV_TXN_EMPTY:
    case SRV_TXN_COMPLETE_COMMIT:
    case SRV_TXN_COMPLETE_ABORT:
        break;
    default:
        SRV_ASSERT(0, "txn %.*s: found in state %s, which is never kept", (int)m->id_len, m->txn_id,
                   srv_txn_state_name(c->state));
    }
    if (srv_txn_epoch_exhausted(c->producer_epoch) && (!has_expected || exp_epoch == c->producer_epoch)) {
        /* prepareProducerIdRotation */
        if (!transit_from(m, SRV_TXN_EMPTY, out))
            return;
        out->pid_used = true;
        out->next.producer_id = new_pid;
        out->next.producer_epoch = 0;
        out->next_last_epoch = has_expected ? c->producer_epoch : SRV_TXN_NO_EPOCH;
    } else {
        /* prepareIncrementProducerEpoch */
        if (srv_txn_epoch_exhausted(c->producer_epoch)) {
            /* Kafka throws IllegalStateException here: the client sees an unknown error. */
            out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            return;
        }
        int16_t bumped = (int16_t)(c->producer_epoch + 1), epoch, last;
        if (!has_expected) {
            epoch = bumped;
            last = SRV_TXN_NO_EPOCH;
        } else if (c->producer_epoch == SRV_TXN_NO_EPOCH || exp_epoch == c->producer_epoch) {
            epoch = bumped;
            last = c->producer_epoch;
        } else if (exp_epoch == m->last_epoch) {
            /* a retry of a call that succeeded: same epoch again */
            epoch = c->producer_epoch;
            last = m->last_epoch;
        } else {
            out->error = KP_ERR_PRODUCER_FENCED;
            return;
        }
        if (!transit_from(m, SRV_TXN_EMPTY, out))
            return;
        out->next.producer_epoch = epoch;
        out->next_last_epoch = last;
    }
    out->next.timeout_ms = timeout_ms;
    drop_parts(&out->next);
    out->next.start_ms = -1;
    out->next.last_update_ms = now;
    out->answer_pid = out->next.producer_id;
    out->answer_epoch = out->next.producer_epoch;
}

/* TransactionCoordinator.handleAddPartitionsToTransaction / TransactionMetadata.prepareAddPartitions. */
void srv_txn_decide_add_partitions(const srv_txn_meta *m, int64_t pid, int16_t epoch, const srv_txn_tp *parts,
                                   int32_t nparts, int16_t client_tv, int64_t now, srv_txn_step *out)
{
    step_reset(out);
    if (!m || m->img.producer_id != pid) {
        out->error = KP_ERR_INVALID_PRODUCER_ID_MAPPING;
        return;
    }
    const srv_txn_image *c = &m->img;
    if (c->producer_epoch != epoch) {
        out->error = KP_ERR_PRODUCER_FENCED;
        return;
    }
    if (m->pending != SRV_TXN_NO_PENDING || c->state == SRV_TXN_PREPARE_COMMIT ||
        c->state == SRV_TXN_PREPARE_ABORT) {
        out->error = KP_ERR_CONCURRENT_TRANSACTIONS;
        return;
    }
    if (c->state == SRV_TXN_ONGOING) {
        bool all = true;
        for (int32_t i = 0; i < nparts && all; i++)
            all = srv_txn_image_has_part(c, parts[i].topic, parts[i].topic_len, parts[i].partition);
        if (all)
            return; /* already in: NONE without a write */
    }
    bool starts = c->state == SRV_TXN_EMPTY || c->state == SRV_TXN_COMPLETE_COMMIT ||
                  c->state == SRV_TXN_COMPLETE_ABORT;
    if (!transit_from(m, SRV_TXN_ONGOING, out))
        return;
    for (int32_t i = 0; i < nparts; i++) {
        if (srv_txn_image_add_part(&out->next, parts[i].topic, parts[i].topic_len, parts[i].partition)) {
            srv_txn_step_clear(out);
            out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
            return;
        }
    }
    if (starts)
        out->next.start_ms = now;
    out->next.last_update_ms = now;
    out->next.client_tv = client_tv;
}

void srv_txn_decide_add_offsets(const srv_txn_meta *m, int64_t pid, int16_t epoch, int32_t offsets_partition,
                                int16_t client_tv, int64_t now, srv_txn_step *out)
{
    srv_txn_tp tp = {(char *)SRV_TXN_OFFSETS_TOPIC, (int32_t)sizeof(SRV_TXN_OFFSETS_TOPIC) - 1,
                     offsets_partition};
    srv_txn_decide_add_partitions(m, pid, epoch, &tp, 1, client_tv, now, out);
}

/* TransactionCoordinator.handleVerifyPartitionsInTransaction: the pending
 * state is not checked (the append is validated again later). */
int16_t srv_txn_verify_partitions(const srv_txn_meta *m, int64_t pid, int16_t epoch, const srv_txn_tp *parts,
                                  int32_t nparts, int16_t *per_part)
{
    if (!m || m->img.producer_id != pid)
        return KP_ERR_INVALID_PRODUCER_ID_MAPPING;
    if (m->img.producer_epoch != epoch)
        return KP_ERR_PRODUCER_FENCED;
    if (m->img.state == SRV_TXN_PREPARE_COMMIT || m->img.state == SRV_TXN_PREPARE_ABORT)
        return KP_ERR_CONCURRENT_TRANSACTIONS;
    for (int32_t i = 0; i < nparts; i++)
        per_part[i] = srv_txn_image_has_part(&m->img, parts[i].topic, parts[i].topic_len, parts[i].partition)
                          ? KP_ERR_NONE
                          : KP_ERR_TRANSACTION_ABORTABLE;
    return KP_ERR_NONE;
}

/* TransactionMetadata.prepareAbortOrCommit. */
static void prepare_end(srv_txn_meta *m, srv_txn_state to, int16_t client_tv, int64_t next_pid,
                        bool no_partition, int64_t now, srv_txn_step *out)
{
    const srv_txn_image *c = &m->img;
    if (!transit_from(m, to, out))
        return;
    if (client_tv >= 2) {
        /* KIP-890: the epoch is bumped at the end of every transaction, except
         * an abort already at MaxValue (let a broken producer recover). */
        if (!(c->producer_epoch == EPOCH_MAX && to == SRV_TXN_PREPARE_ABORT))
            out->next.producer_epoch = (int16_t)(c->producer_epoch + 1);
        out->next_last_epoch = c->producer_epoch;
    }
    if (no_partition)
        out->next.start_ms = now;
    out->next.next_producer_id = next_pid;
    out->next.last_update_ms = now;
    out->next.client_tv = client_tv;
    out->markers = to == SRV_TXN_PREPARE_COMMIT ? SRV_TXN_MARK_COMMIT : SRV_TXN_MARK_ABORT;
}

/* TransactionCoordinator.endTransactionWithTV1 (isFromClient = true). */
static void end_v1(srv_txn_meta *m, int16_t epoch, bool commit, int64_t now, srv_txn_step *out)
{
    const srv_txn_image *c = &m->img;
    if (epoch != c->producer_epoch) {
        out->error = KP_ERR_PRODUCER_FENCED;
        return;
    }
    if (m->pending != SRV_TXN_NO_PENDING) {
        out->error = KP_ERR_CONCURRENT_TRANSACTIONS;
        return;
    }
    switch (c->state) {
    case SRV_TXN_ONGOING:
        prepare_end(m, commit ? SRV_TXN_PREPARE_COMMIT : SRV_TXN_PREPARE_ABORT, 0, SRV_TXN_NO_PID, false, now,
                    out);
        return;
    case SRV_TXN_COMPLETE_COMMIT:
        out->error = commit ? KP_ERR_NONE : KP_ERR_INVALID_TXN_STATE;
        return;
    case SRV_TXN_COMPLETE_ABORT:
        out->error = commit ? KP_ERR_INVALID_TXN_STATE : KP_ERR_NONE;
        return;
    case SRV_TXN_PREPARE_COMMIT:
        out->error = commit ? KP_ERR_CONCURRENT_TRANSACTIONS : KP_ERR_INVALID_TXN_STATE;
        return;
    case SRV_TXN_PREPARE_ABORT:
        out->error = commit ? KP_ERR_INVALID_TXN_STATE : KP_ERR_CONCURRENT_TRANSACTIONS;
        return;
    case SRV_TXN_EMPTY:
        out->error = KP_ERR_INVALID_TXN_STATE;
        return;
    default:
        SRV_ASSERT(0, "txn %.*s: found in state %s, which is never kept", (int)m->id_len, m->txn_id,
                   srv_txn_state_name(c->state));
    }
}

/* TransactionCoordinator.endTransaction for transaction version 2 (isFromClient = true). */
static void end_v2(srv_txn_meta *m, int64_t pid, int16_t epoch, bool commit, int16_t client_tv,
                   int64_t new_pid, int64_t now, srv_txn_step *out)
{
    const srv_txn_image *c = &m->img;
    bool retry_overflow = c->prev_producer_id == pid && epoch == EPOCH_MAX - 1 && c->producer_epoch == 0 &&
                          c->producer_id != pid;
    bool retry_bump = c->producer_epoch == epoch + 1;
    bool valid;
    switch (c->state) {
    case SRV_TXN_PREPARE_COMMIT:
    case SRV_TXN_PREPARE_ABORT:
        valid = retry_bump;
        break;
    case SRV_TXN_COMPLETE_COMMIT:
    case SRV_TXN_COMPLETE_ABORT:
        valid = retry_bump || retry_overflow || epoch == c->producer_epoch;
        break;
    default:
        valid = epoch == c->producer_epoch;
        break;
    }
    bool retry = retry_bump || retry_overflow;
    if (c->producer_id != pid && !retry_overflow) {
        out->error = KP_ERR_INVALID_PRODUCER_ID_MAPPING;
        return;
    }
    if (!valid) {
        out->error = KP_ERR_PRODUCER_FENCED;
        return;
    }
    if (m->pending != SRV_TXN_NO_PENDING) {
        out->error = KP_ERR_CONCURRENT_TRANSACTIONS;
        return;
    }
    /* An exhausted epoch is bumped to MaxValue in the Prepare record, and the
     * Complete record moves to the next producer id with epoch 0. */
    int64_t next_pid = srv_txn_epoch_exhausted(c->producer_epoch) ? new_pid : SRV_TXN_NO_PID;
    srv_txn_state to = SRV_TXN_EMPTY;
    bool no_partition = true;
    switch (c->state) {
    case SRV_TXN_ONGOING:
        to = commit ? SRV_TXN_PREPARE_COMMIT : SRV_TXN_PREPARE_ABORT;
        no_partition = false;
        break;
    case SRV_TXN_COMPLETE_COMMIT:
        if (commit)
            out->error = retry ? KP_ERR_NONE : KP_ERR_INVALID_TXN_STATE;
        else if (retry)
            out->error = KP_ERR_INVALID_TXN_STATE;
        else
            to = SRV_TXN_PREPARE_ABORT;
        break;
    case SRV_TXN_COMPLETE_ABORT:
        if (!commit && retry)
            out->error = KP_ERR_NONE;
        else if (!commit)
            to = SRV_TXN_PREPARE_ABORT;
        else
            out->error = KP_ERR_INVALID_TXN_STATE;
        break;
    case SRV_TXN_PREPARE_COMMIT:
        out->error = commit ? KP_ERR_CONCURRENT_TRANSACTIONS : KP_ERR_INVALID_TXN_STATE;
        break;
    case SRV_TXN_PREPARE_ABORT:
        out->error = commit ? KP_ERR_INVALID_TXN_STATE : KP_ERR_CONCURRENT_TRANSACTIONS;
        break;
    case SRV_TXN_EMPTY:
        if (commit)
            out->error = KP_ERR_INVALID_TXN_STATE;
        else
            to = SRV_TXN_PREPARE_ABORT;
        break;
    default:
        SRV_ASSERT(0, "txn %.*s: found in state %s, which is never kept", (int)m->id_len, m->txn_id,
                   srv_txn_state_name(c->state));
    }
    if (to == SRV_TXN_EMPTY) {
        if (out->error == KP_ERR_NONE) {
            /* a retry of an EndTxn that completed: the current id and epoch */
            out->answer_pid = c->producer_id;
            out->answer_epoch = c->producer_epoch;
        }
        return;
    }
    if (to == SRV_TXN_PREPARE_COMMIT && c->producer_epoch == EPOCH_MAX) {
        /* Reachable: a fence at MaxValue - 1 takes MaxValue and a v2 retry
         * answers it. Kafka's bump then overflows and its transition throws
         * (IllegalArgumentException): the client sees an unknown error. */
        out->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        return;
    }
    prepare_end(m, to, client_tv, next_pid, no_partition, now, out);
    if (!out->write)
        return;
    out->pid_used = next_pid != SRV_TXN_NO_PID;
    /* The client continues with the bumped epoch, or with the next producer
     * id at epoch 0 when the bump exhausted the current one. */
    if (next_pid != SRV_TXN_NO_PID) {
        out->answer_pid = next_pid;
        out->answer_epoch = 0;
    } else {
        out->answer_pid = out->next.producer_id;
        out->answer_epoch = out->next.producer_epoch;
    }
}

void srv_txn_decide_end(const srv_txn_cfg *cfg, srv_txn_meta *m, int64_t pid, int16_t epoch, bool commit,
                        int16_t client_tv, int64_t new_pid, int64_t now, srv_txn_step *out)
{
    (void)cfg;
    step_reset(out);
    if (!m) {
        out->error = KP_ERR_INVALID_PRODUCER_ID_MAPPING;
        return;
    }
    if (client_tv >= 2) {
        end_v2(m, pid, epoch, commit, client_tv, new_pid, now, out);
        return;
    }
    if (m->img.producer_id != pid) {
        out->error = KP_ERR_INVALID_PRODUCER_ID_MAPPING;
        return;
    }
    end_v1(m, epoch, commit, now, out);
}

/* TransactionMetadata.prepareComplete, once TransactionMarkerChannelManager
 * has every marker. */
void srv_txn_decide_complete(const srv_txn_meta *m, int64_t now, srv_txn_step *out)
{
    step_reset(out);
    const srv_txn_image *c = &m->img;
    SRV_ASSERT(c->state == SRV_TXN_PREPARE_COMMIT || c->state == SRV_TXN_PREPARE_ABORT,
               "txn %.*s: markers completed in state %s", (int)m->id_len, m->txn_id,
               srv_txn_state_name(c->state));
    SRV_ASSERT(m->pending == completion_of(c->state), "txn %.*s: markers completed while %s is pending",
               (int)m->id_len, m->txn_id,
               m->pending < 0 ? "nothing" : srv_txn_state_name((srv_txn_state)m->pending));
    if (!transit_from(
            m, c->state == SRV_TXN_PREPARE_COMMIT ? SRV_TXN_COMPLETE_COMMIT : SRV_TXN_COMPLETE_ABORT, out))
        return;
    if (c->client_tv >= 2 && c->next_producer_id != SRV_TXN_NO_PID) {
        out->next.producer_id = c->next_producer_id;
        out->next.producer_epoch = 0;
    }
    out->next.next_producer_id = SRV_TXN_NO_PID;
    drop_parts(&out->next);
    out->next.last_update_ms = now;
}

srv_txn_marker srv_txn_markers_owed(const srv_txn_meta *m)
{
    if (m->img.state == SRV_TXN_PREPARE_COMMIT)
        return SRV_TXN_MARK_COMMIT;
    if (m->img.state == SRV_TXN_PREPARE_ABORT)
        return SRV_TXN_MARK_ABORT;
    return SRV_TXN_MARK_NONE;
}

/* TransactionStateManager.timedOutTransactions. */
bool srv_txn_timed_out(const srv_txn_meta *m, int64_t now)
{
    return m->pending == SRV_TXN_NO_PENDING && m->img.state == SRV_TXN_ONGOING &&
           m->img.start_ms + m->img.timeout_ms < now;
}

/* TransactionCoordinator.abortTimedOutTransactions. */
void srv_txn_decide_timeout(const srv_txn_cfg *cfg, srv_txn_meta *m, int64_t now, srv_txn_step *out)
{
    step_reset(out);
    if (!srv_txn_timed_out(m, now)) {
        out->error = KP_ERR_CONCURRENT_TRANSACTIONS;
        return;
    }
    fence_abort(cfg, m, now, out);
}

/* TransactionStateManager.removeExpiredTransactionalIds: states that allow
 * expiration (Empty, CompleteCommit, CompleteAbort), idle for the expiration. */
bool srv_txn_expired(const srv_txn_cfg *cfg, const srv_txn_meta *m, int64_t now)
{
    srv_txn_state s = m->img.state;
    return m->pending == SRV_TXN_NO_PENDING &&
           (s == SRV_TXN_EMPTY || s == SRV_TXN_COMPLETE_COMMIT || s == SRV_TXN_COMPLETE_ABORT) &&
           m->img.last_update_ms <= now - cfg->id_expiration_ms;
}

void srv_txn_decide_expire(const srv_txn_cfg *cfg, const srv_txn_meta *m, srv_txn_step *out)
{
    (void)cfg;
    step_reset(out);
    SRV_ASSERT(m->pending == SRV_TXN_NO_PENDING, "txn %.*s: expired while %s is being written",
               (int)m->id_len, m->txn_id, srv_txn_state_name((srv_txn_state)m->pending));
    out->write = true;
    out->tombstone = true;
    out->next.state = SRV_TXN_DEAD;
}
