/*
 * txn_coord.c — the transaction coordinator wired into the shards: each
 * shard's maps of the __transaction_state partitions it owns, the creation
 * of that topic through the controller, the load at start-up, the txn ops
 * (srv_call) run on the coordinator, the record appended before each answer,
 * the markers sent to the partitions of a transaction (partition ops to
 * their owners) and the Complete record after them, and the periodic abort
 * of timed-out transactions and expiration of idle ids.
 *
 * Owns the per-shard coordinator context and the marker jobs. Must not:
 * touch a srv_txns from any thread but its shard's, decide a transition
 * (txn_state.c does), or block a loop (the only blocking reads are the
 * start-up load, before the loops run).
 */
#include "txn_coord.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "clock.h"
#include "controller.h"
#include "errors.h"
#include "srv_features.h"
#include "logging.h"
#include "meta.h"
#include "partcall.h"
#include "srv_assert.h"
#include "st_log.h"

/* The coordinator epoch written in markers: one broker, no leader changes of
 * __transaction_state, so a constant (Kafka uses the partition's leader epoch). */
#define TXN_COORD_EPOCH       0
#define TXN_MARKER_RETRY_MS   500
#define TXN_COMPLETE_RETRY_MS 1000
/* An implicit add (transactions v2) that meets another write of its id in
 * flight waits for it on the coordinator instead of failing the produce, as
 * Kafka's ReplicaManager retries CONCURRENT_TRANSACTIONS (its
 * add.partitions.to.txn.retry.backoff.ms and .max.ms defaults). */
#define TXN_ADD_RETRY_MS     20
#define TXN_ADD_RETRY_MAX_MS 100

typedef struct mark_job mark_job;

typedef struct txn_part {
    int32_t partition;
    srv_txn_map map;
} txn_part;

struct srv_txns {
    srv_shard *s;
    srv_txn_cfg cfg;
    txn_part **parts; /* by partition; NULL: not owned here (or not yet used) */
    int32_t nparts;
    struct event *abort_ev, *expire_ev, *resume_ev;
    int creating;
    mark_job *jobs;                 /* marker jobs in flight (freed at stop) */
    struct retry_complete *retries; /* Complete records waiting to be written again (freed at stop) */
    /* Implicit adds waiting out another write of their id, in arrival
     * order (a producer's batches must reach their partitions in the order
     * it sent them), retried by add_ev; freed at stop. */
    struct add_wait *add_head, *add_tail;
    struct event *add_ev;
};

typedef struct add_wait {
    srv_txn_op *op;
    struct add_wait *next;
} add_wait;

/* Set once before the shards run; read-only afterwards. */
static srv_txn_marker_fn marker_fn;

static void start_markers(srv_txns *tx, txn_part *tp, srv_txn_meta *m);
static void add_kick(srv_txns *tx, int delay_ms);
static void on_add_retry(evutil_socket_t fd, short what, void *arg);

/* ---- the topic ------------------------------------------------------------ */

int32_t srv_txns_nparts(const srv_shard *s)
{
    const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_TXN_TOPIC));
    return t ? t->nparts : 0;
}

typedef struct create_op {
    srv_ctl_op op;
    srv_topic_spec spec;
    srv_topic_cfg_kv cfg[3];
    char segment[24];
    srv_txns *tx;
} create_op;

static void created(srv_shard *s, srv_ctl_op *op)
{
    (void)s;
    create_op *c = (create_op *)op;
    c->tx->creating = 0;
    if (c->spec.error == KP_ERR_NONE)
        srv_info("created %s with %d partitions", SRV_TXN_TOPIC, c->spec.result_nparts);
    else if (c->spec.error != KP_ERR_TOPIC_ALREADY_EXISTS)
        srv_error("cannot create %s: %s (error %d)", SRV_TXN_TOPIC, c->spec.message, c->spec.error);
    free(c);
}

static void ensure_topic(srv_txns *tx)
{
    srv_shard *s = tx->s;
    if (tx->creating || srv_meta_topic(s->meta, kp_str_c(SRV_TXN_TOPIC)))
        return;
    create_op *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    const srv_config *cfg = &s->b->cfg;
    snprintf(c->segment, sizeof(c->segment), "%d", (int)cfg->transaction_state_log_segment_bytes);
    /* Kafka's TransactionLog topic configs: compacted, never compressed, its
     * own segment size. */
    c->cfg[0].key = "cleanup.policy";
    c->cfg[0].value = "compact";
    c->cfg[1].key = "compression.type";
    c->cfg[1].value = "uncompressed";
    c->cfg[2].key = "segment.bytes";
    c->cfg[2].value = c->segment;
    c->spec.name = kp_str_c(SRV_TXN_TOPIC);
    c->spec.nparts = cfg->transaction_state_log_num_partitions;
    c->spec.replication = -1;
    c->spec.ncfg = 3;
    c->spec.cfg = c->cfg;
    c->tx = tx;
    c->op.kind = SRV_CTL_CREATE;
    c->op.nspecs = 1;
    c->op.specs = &c->spec;
    c->op.done = created;
    tx->creating = 1;
    srv_ctl_submit(s, NULL, &c->op);
}

int16_t srv_txns_ready(srv_shard *s)
{
    if (!s->txns)
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    if (srv_meta_topic(s->meta, kp_str_c(SRV_TXN_TOPIC)))
        return KP_ERR_NONE;
    ensure_topic(s->txns);
    return KP_ERR_COORDINATOR_NOT_AVAILABLE;
}

/* The map of a partition this shard owns; a partition created after start
 * (the topic did not exist then) starts empty. NULL: not ours, offline, or
 * out of memory. */
static txn_part *part_get(srv_txns *tx, const kp_uuid *topic_id, int32_t partition)
{
    if (partition < 0 || partition >= tx->nparts)
        return NULL;
    srv_part *p = srv_partmap_get(tx->s->parts, topic_id, partition);
    if (!p || srv_part_offline(p))
        return NULL;
    if (!tx->parts[partition]) {
        txn_part *tp = calloc(1, sizeof(*tp));
        if (!tp)
            return NULL;
        tp->partition = partition;
        srv_txn_map_init(&tp->map);
        tx->parts[partition] = tp;
    }
    return tx->parts[partition];
}

/* ---- producer ids ----------------------------------------------------------- */

/* The broker's allocator (init_producer_id.c, srv_pid_at). */
static int64_t pid_offer(srv_shard *s)
{
    return srv_pid_at(s->b, s->next_pid, s->id);
}

static int64_t pid_take(srv_shard *s)
{
    int64_t pid = pid_offer(s);
    s->next_pid++;
    return pid;
}

/* ---- steps: the record before the answer ------------------------------------ */

typedef struct txn_write {
    srv_txns *tx;
    txn_part *tp;
    srv_txn_meta *m;
    srv_txn_step step;
    srv_txn_op *op; /* NULL: the coordinator's own step (markers done, timeout, expiration) */
    int answered;
} txn_write;

static int16_t write_error(int16_t e)
{
    /* Kafka's TransactionStateManager.appendTransactionToLog mapping. */
    switch (e) {
    case KP_ERR_NONE:
        return KP_ERR_NONE;
    case KP_ERR_UNKNOWN_TOPIC_OR_PARTITION:
    case KP_ERR_NOT_ENOUGH_REPLICAS:
    case KP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND:
    case KP_ERR_REQUEST_TIMED_OUT:
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    case KP_ERR_NOT_LEADER_OR_FOLLOWER:
    case KP_ERR_KAFKA_STORAGE_ERROR:
        return KP_ERR_NOT_COORDINATOR;
    default:
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
}

static void op_reply(srv_shard *s, srv_txn_op *op)
{
    if (op)
        srv_call_reply(s, &op->call);
}

typedef struct retry_complete {
    srv_txns *tx;
    txn_part *tp;
    srv_txn_meta *m;
    struct event *ev;
    struct retry_complete *prev, *next; /* in tx->retries */
} retry_complete;

static void retry_unlink(retry_complete *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        r->tx->retries = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void run_step(srv_txns *tx, txn_part *tp, srv_txn_meta *m, srv_txn_step *step, srv_txn_op *op);

static void write_complete(srv_txns *tx, txn_part *tp, srv_txn_meta *m)
{
    srv_txn_step step;
    srv_txn_decide_complete(m, srv_now_ms(), &step);
    if (!step.write) {
        /* Out of memory copying the image: the id stays pending its Complete
         * state, which the next load resumes. */
        srv_error("txn %.*s: cannot complete its transaction (error %d)", (int)m->id_len, m->txn_id,
                  step.error);
        srv_txn_step_clear(&step);
        return;
    }
    run_step(tx, tp, m, &step, NULL);
}

static void on_retry_complete(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    retry_complete *r = arg;
    retry_unlink(r);
    event_free(r->ev);
    srv_txns *tx = r->tx;
    txn_part *tp = r->tp;
    srv_txn_meta *m = r->m;
    free(r);
    write_complete(tx, tp, m);
}

static void written(txn_write *w, int16_t err)
{
    srv_txns *tx = w->tx;
    srv_shard *s = tx->s;
    srv_txn_meta *m = w->m;
    srv_txn_op *op = w->op;
    bool complete =
        w->step.next.state == SRV_TXN_COMPLETE_COMMIT || w->step.next.state == SRV_TXN_COMPLETE_ABORT;
    if (err) {
        srv_warn("txn %.*s: %s record not written (error %d)", (int)m->id_len, m->txn_id,
                 w->step.tombstone ? "tombstone" : srv_txn_state_name(w->step.next.state), err);
        srv_txn_write_failed(m, &w->step);
        add_kick(tx, 0);
        if (op)
            op->error = write_error(err);
        if (complete && !w->step.tombstone) {
            /* The markers are durable; only the Complete record is owed. */
            retry_complete *r = calloc(1, sizeof(*r));
            if (r) {
                r->tx = tx, r->tp = w->tp, r->m = m;
                r->ev = evtimer_new(s->base, on_retry_complete, r);
                struct timeval tv = {TXN_COMPLETE_RETRY_MS / 1000, (TXN_COMPLETE_RETRY_MS % 1000) * 1000};
                if (r->ev) {
                    r->next = tx->retries;
                    if (r->next)
                        r->next->prev = r;
                    tx->retries = r;
                    evtimer_add(r->ev, &tv);
                } else {
                    free(r);
                }
            }
        }
        srv_txn_step_clear(&w->step);
        free(w);
        op_reply(s, op);
        return;
    }
    if (w->step.tombstone) {
        srv_txn_map_remove(&w->tp->map, m->txn_id, m->id_len);
        srv_txn_step_clear(&w->step);
        free(w);
        op_reply(s, op);
        return;
    }
    srv_txn_marker markers = w->step.markers;
    add_kick(tx, 0); /* a waiting implicit add may pass now */
    if (op) {
        op->error = w->step.error;
        op->out_pid = w->step.answer_pid;
        op->out_epoch = w->step.answer_epoch;
    }
    srv_txn_written(m, &w->step);
    srv_txn_step_clear(&w->step);
    txn_part *tp = w->tp;
    free(w);
    /* Kafka answers EndTxn after the Prepare record, before the markers. */
    op_reply(s, op);
    if (markers != SRV_TXN_MARK_NONE)
        start_markers(tx, tp, m);
}

static void append_durable(void *arg, int rc, int64_t base)
{
    (void)base;
    txn_write *w = arg;
    written(w, srv_st_to_kafka(rc));
}

static void append_accepted(void *arg, int rc, int64_t base)
{
    (void)base;
    if (rc == 0)
        return; /* append_durable reports the outcome */
    txn_write *w = arg;
    written(w, srv_st_to_kafka(rc));
}

/* Runs a decided step on the coordinator: answer now, or begin, append the
 * record and answer once it is durable. Takes step's contents. */
static void run_step(srv_txns *tx, txn_part *tp, srv_txn_meta *m, srv_txn_step *step, srv_txn_op *op)
{
    srv_shard *s = tx->s;
    if (!step->write) {
        if (op) {
            op->error = step->error;
            op->out_pid = step->answer_pid;
            op->out_epoch = step->answer_epoch;
        }
        srv_txn_step_clear(step);
        op_reply(s, op);
        return;
    }
    const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_TXN_TOPIC));
    srv_part *p = t ? srv_partmap_get(s->parts, &t->id, tp->partition) : NULL;
    txn_write *w = calloc(1, sizeof(*w));
    kp_writer kw, vw, bw;
    kp_writer_init(&kw, 64);
    kp_writer_init(&vw, 256);
    kp_writer_init(&bw, 512);
    int rc = !w || !p || srv_part_offline(p);
    if (!rc)
        rc = srv_txn_step_record(&tx->cfg, m, step, &kw, &vw);
    if (!rc) {
        kp_batch_builder bb;
        kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
        rc = kp_batch_builder_add(
            &bb, srv_now_ms(), (kp_bytes){kw.buf, (int32_t)kw.len},
            step->tombstone ? (kp_bytes){NULL, -1} : (kp_bytes){vw.buf, (int32_t)vw.len}, NULL, 0);
        if (!rc)
            rc = kp_batch_builder_finish(&bb, &bw);
        kp_batch_builder_free(&bb);
    }
    kp_writer_free(&kw);
    kp_writer_free(&vw);
    if (rc) {
        bool complete =
            step->next.state == SRV_TXN_COMPLETE_COMMIT || step->next.state == SRV_TXN_COMPLETE_ABORT;
        kp_writer_free(&bw);
        free(w);
        srv_error("txn %.*s: cannot build or place its record", (int)m->id_len, m->txn_id);
        if (op)
            op->error = p ? KP_ERR_UNKNOWN_SERVER_ERROR : KP_ERR_NOT_COORDINATOR;
        if (complete)
            srv_error("txn %.*s: its Complete record stays owed until the next load", (int)m->id_len,
                      m->txn_id);
        srv_txn_step_clear(step);
        op_reply(s, op);
        return;
    }
    w->tx = tx;
    w->tp = tp;
    w->m = m;
    w->step = *step; /* takes the image */
    w->op = op;
    memset(step, 0, sizeof(*step));
    srv_txn_begin(m, &w->step);
    /* Ordered behind earlier appends, as group records: a coordinator write
     * is never refused for a purely local backpressure. */
    st_log_append_ordered(p->log, bw.buf, bw.len, append_accepted, append_durable, w);
    kp_writer_free(&bw);
}

/* ---- markers -------------------------------------------------------------- */

struct mark_job {
    mark_job *next, *prev;
    srv_txns *tx;
    txn_part *tp;
    srv_txn_meta *m;
    srv_txn_marker_args args;
    int outstanding;
    int failed;
    uint8_t *done; /* per partition of m->img: marker durable (or the partition is gone) */
    struct event *retry_ev;
};

typedef struct mark_op {
    srv_part_op base;
    mark_job *job;
    int32_t idx;
    srv_txn_marker_args args;
    srv_shard *owner;
    int16_t error;
} mark_op;

static void job_unlink(mark_job *j)
{
    if (j->prev)
        j->prev->next = j->next;
    else
        j->tx->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
}

static void job_free(mark_job *j)
{
    if (j->retry_ev)
        event_free(j->retry_ev);
    free(j->done);
    free(j);
}

static void job_send(mark_job *j);

static void mark_appended(void *arg, int16_t error)
{
    mark_op *op = arg;
    op->error = error;
    srv_call_reply(op->owner, &op->base.call);
}

static void mark_run(srv_shard *owner, srv_part_op *base, srv_part *p)
{
    mark_op *op = (mark_op *)base;
    op->owner = owner;
    if (!p) {
        op->error = KP_ERR_NOT_LEADER_OR_FOLLOWER;
        srv_call_reply(owner, &base->call);
        return;
    }
    if (srv_part_offline(p)) {
        op->error = KP_ERR_KAFKA_STORAGE_ERROR;
        srv_call_reply(owner, &base->call);
        return;
    }
    marker_fn(owner, p, &op->args, mark_appended, op);
}

static void job_check(mark_job *j)
{
    if (j->outstanding)
        return;
    if (j->failed) {
        struct timeval tv = {0, TXN_MARKER_RETRY_MS * 1000};
        j->failed = 0;
        evtimer_add(j->retry_ev, &tv);
        return;
    }
    srv_txns *tx = j->tx;
    txn_part *tp = j->tp;
    srv_txn_meta *m = j->m;
    job_unlink(j);
    job_free(j);
    write_complete(tx, tp, m);
}

static void mark_done(srv_shard *s, srv_part_op *base)
{
    (void)s;
    mark_op *op = (mark_op *)base;
    mark_job *j = op->job;
    j->outstanding--;
    if (op->error == KP_ERR_NONE || op->error == KP_ERR_UNKNOWN_TOPIC_OR_PARTITION) {
        j->done[op->idx] = 1;
    } else if (op->error == KP_ERR_INVALID_PRODUCER_EPOCH ||
               op->error == KP_ERR_TRANSACTION_COORDINATOR_FENCED ||
               op->error == KP_ERR_UNSUPPORTED_FOR_MESSAGE_FORMAT) {
        /* The partition will never take this marker (a newer epoch or
         * coordinator wrote there, as only an outside WriteTxnMarkers can
         * here): Kafka's marker channel gives up on such errors too rather
         * than retry forever. The transaction completes without it. */
        srv_error("txn %.*s: marker to %s-%d refused for good (error %d), not retried", (int)j->m->id_len,
                  j->m->txn_id, j->m->img.parts[op->idx].topic, j->m->img.parts[op->idx].partition,
                  op->error);
        j->done[op->idx] = 1;
    } else {
        /* Kafka's marker channel retries until the partition takes it. */
        srv_warn("txn %.*s: marker to %s-%d failed (error %d), retrying", (int)j->m->id_len, j->m->txn_id,
                 j->m->img.parts[op->idx].topic, j->m->img.parts[op->idx].partition, op->error);
        j->failed = 1;
    }
    free(op);
    job_check(j);
}

static void job_send(mark_job *j)
{
    srv_shard *s = j->tx->s;
    const srv_txn_image *img = &j->m->img;
    j->outstanding++; /* the sending loop holds the job */
    for (int32_t i = 0; i < img->nparts; i++) {
        if (j->done[i])
            continue;
        const srv_txn_tp *tp = &img->parts[i];
        const srv_topic *t = srv_meta_topic(s->meta, (kp_str){tp->topic, tp->topic_len});
        int16_t err = 0;
        mark_op *op = srv_part_op_new(t, tp->partition, sizeof(*op), mark_run, mark_done, &err);
        if (!op) {
            if (err == KP_ERR_UNKNOWN_TOPIC_OR_PARTITION)
                j->done[i] = 1; /* deleted meanwhile: Kafka drops its markers too */
            else
                j->failed = 1;
            continue;
        }
        op->job = j;
        op->idx = i;
        op->args = j->args;
        j->outstanding++;
        srv_part_op_send_from(s, &op->base);
    }
    j->outstanding--;
    job_check(j);
}

static void on_job_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_send(arg);
}

/* m was just written (or loaded) in a Prepare state and is pending its
 * Complete state: its marker goes to every partition, then the Complete record. */
static void start_markers(srv_txns *tx, txn_part *tp, srv_txn_meta *m)
{
    srv_txn_marker kind = srv_txn_markers_owed(m);
    SRV_ASSERT(kind != SRV_TXN_MARK_NONE, "txn %.*s: markers started in state %s", (int)m->id_len, m->txn_id,
               srv_txn_state_name(m->img.state));
    mark_job *j = calloc(1, sizeof(*j));
    if (j)
        j->done = calloc((size_t)m->img.nparts + 1, 1);
    if (j)
        j->retry_ev = evtimer_new(tx->s->base, on_job_retry, j);
    if (!j || !j->done || !j->retry_ev) {
        if (j)
            job_free(j);
        srv_error("txn %.*s: no memory for its markers: they are sent at the next load", (int)m->id_len,
                  m->txn_id);
        return;
    }
    j->tx = tx;
    j->tp = tp;
    j->m = m;
    j->args.producer_id = m->img.producer_id;
    j->args.producer_epoch = m->img.producer_epoch;
    j->args.commit = kind == SRV_TXN_MARK_COMMIT;
    j->args.coordinator_epoch = TXN_COORD_EPOCH;
    j->args.txn_version = m->img.client_tv >= 2 ? 2 : 0;
    j->next = tx->jobs;
    if (tx->jobs)
        tx->jobs->prev = j;
    tx->jobs = j;
    job_send(j);
}

/* ---- scans ------------------------------------------------------------------ */

typedef struct collect {
    srv_txn_meta **v;
    size_t n, cap;
} collect;

static void collect_one(srv_txn_meta *m, void *arg)
{
    collect *c = arg;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        srv_txn_meta **v = realloc(c->v, cap * sizeof(*v));
        if (!v)
            return;
        c->v = v;
        c->cap = cap;
    }
    c->v[c->n++] = m;
}

static void scan(srv_txns *tx, bool expire)
{
    int64_t now = srv_now_ms();
    for (int32_t i = 0; i < tx->nparts; i++) {
        txn_part *tp = tx->parts[i];
        if (!tp)
            continue;
        /* Steps can complete inline (a refused append): collect first, the
         * map must not change under srv_txn_map_each. */
        collect c = {0};
        srv_txn_map_each(&tp->map, collect_one, &c);
        for (size_t k = 0; k < c.n; k++) {
            srv_txn_meta *m = c.v[k];
            srv_txn_step step;
            if (expire) {
                if (!srv_txn_expired(&tx->cfg, m, now))
                    continue;
                srv_txn_decide_expire(&tx->cfg, m, &step);
            } else {
                if (!srv_txn_timed_out(m, now))
                    continue;
                srv_info("txn %.*s: aborting its transaction, older than its timeout of %d ms",
                         (int)m->id_len, m->txn_id, m->img.timeout_ms);
                srv_txn_decide_timeout(&tx->cfg, m, now, &step);
            }
            run_step(tx, tp, m, &step, NULL);
        }
        free(c.v);
    }
}

static void on_abort_scan(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scan(arg, false);
}

static void on_expire_scan(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    scan(arg, true);
}

/* After a load: ids in a Prepare state get their markers again, then their
 * Complete record (Kafka's loadTransactionsForTxnTopicPartition). */
static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_txns *tx = arg;
    for (int32_t i = 0; i < tx->nparts; i++) {
        txn_part *tp = tx->parts[i];
        if (!tp)
            continue;
        collect c = {0};
        srv_txn_map_each(&tp->map, collect_one, &c);
        for (size_t k = 0; k < c.n; k++) {
            srv_txn_meta *m = c.v[k];
            srv_txn_marker owed = srv_txn_markers_owed(m);
            if (owed == SRV_TXN_MARK_NONE)
                continue;
            /* A load leaves a Prepare state pending its Complete state
             * (srv_txn_meta_from_image): nothing else can have started. */
            int complete = owed == SRV_TXN_MARK_COMMIT ? SRV_TXN_COMPLETE_COMMIT : SRV_TXN_COMPLETE_ABORT;
            SRV_ASSERT(m->pending == complete, "txn %.*s: loaded in %s with %d pending", (int)m->id_len,
                       m->txn_id, srv_txn_state_name(m->img.state), m->pending);
            srv_info("txn %.*s: loaded in %s, sending its markers again", (int)m->id_len, m->txn_id,
                     srv_txn_state_name(m->img.state));
            start_markers(tx, tp, m);
        }
        free(c.v);
    }
}

/* ---- start-up load ------------------------------------------------------------ */

typedef struct load_state {
    srv_txn_map *map;
    int32_t partition;
    int64_t next;
    int rc;
    int done;
    int bad;
} load_state;

static void load_batch(load_state *st, const kp_batch *b)
{
    if ((b->h.attributes & KP_ATTR_CONTROL) || (b->h.attributes & KP_ATTR_CODEC_MASK)) {
        /* We never compress this log (compression.type=uncompressed). */
        if (!(b->h.attributes & KP_ATTR_CONTROL))
            srv_warn("%s-%d: compressed batch at offset %lld skipped", SRV_TXN_TOPIC, st->partition,
                     (long long)b->h.base_offset);
        return;
    }
    kp_record_iter it;
    kp_record rec;
    kp_record_iter_init(&it, &b->h, b->records, b->records_size);
    while (kp_record_iter_next(&it, &rec) == 1) {
        int rc = srv_txn_replay_record(st->map, rec.key.p, rec.key.len,
                                       rec.value.len < 0 ? NULL : rec.value.p, rec.value.len);
        if (rc != SRV_TXN_LOG_OK && rc != SRV_TXN_LOG_E_KEY_VERSION) {
            st->bad++;
            srv_warn("%s-%d: record at offset %lld not loaded (code %d)", SRV_TXN_TOPIC, st->partition,
                     (long long)rec.offset, rc);
        }
    }
}

static void load_cb(void *arg, const st_read_result *res)
{
    load_state *st = arg;
    st->done = 1;
    if (res->rc) {
        st->rc = res->rc;
        return;
    }
    kp_batch_iter it;
    kp_batch b;
    kp_batch_iter_init(&it, res->data, res->len, 0);
    int r;
    while ((r = kp_batch_iter_next(&it, &b)) == 1) {
        load_batch(st, &b);
        st->next = b.h.base_offset + b.h.last_offset_delta + 1;
    }
    if (r < 0)
        st->rc = r;
    if (res->len == 0)
        st->next = res->high_watermark;
}

static int load_partition(srv_shard *s, srv_part *p, txn_part *tp)
{
    load_state st = {&tp->map, tp->partition, st_log_start_offset(p->log), 0, 0, 0};
    while (st.rc == 0 && st.next < st_log_high_watermark(p->log)) {
        int64_t before = st.next;
        st.done = 0;
        int rc = st_log_read(p->log, st.next, 1u << 20, load_cb, &st);
        if (rc < 0)
            return rc;
        while (!st.done)
            st_io_wait(s->io, 100);
        if (st.rc == 0 && st.next <= before)
            return -EIO; /* no progress: the log is inconsistent */
    }
    return st.rc;
}

static void arm_every(struct event *ev, int64_t every)
{
    struct timeval tv = {(time_t)(every / 1000), (suseconds_t)((every % 1000) * 1000)};
    event_add(ev, &tv);
}

int srv_txns_start(srv_broker *b, srv_txn_marker_fn marker)
{
    const srv_config *cfg = &b->cfg;
    marker_fn = marker;
    for (int i = 0; i < b->nshards; i++) {
        srv_shard *s = &b->shards[i];
        srv_txns *tx = calloc(1, sizeof(*tx));
        if (!tx)
            return -ENOMEM;
        s->txns = tx;
        tx->s = s;
        tx->cfg.max_timeout_ms = cfg->transaction_max_timeout_ms;
        tx->cfg.id_expiration_ms = cfg->transactional_id_expiration_ms;
        /* The level ApiVersions finalizes: the transaction APIs are served
         * whatever unstable.api.versions.enable (dispatch.c's table). */
        tx->cfg.tv_level = srv_features_txn_version(true);
        const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_TXN_TOPIC));
        tx->nparts = cfg->transaction_state_log_num_partitions;
        if (t && t->nparts > tx->nparts)
            tx->nparts = t->nparts;
        tx->parts = calloc((size_t)tx->nparts, sizeof(*tx->parts));
        tx->abort_ev = event_new(s->base, -1, EV_PERSIST, on_abort_scan, tx);
        tx->expire_ev = event_new(s->base, -1, EV_PERSIST, on_expire_scan, tx);
        tx->resume_ev = event_new(s->base, -1, 0, on_resume, tx);
        tx->add_ev = evtimer_new(s->base, on_add_retry, tx);
        if (!tx->parts || !tx->abort_ev || !tx->expire_ev || !tx->resume_ev || !tx->add_ev)
            return -ENOMEM;
        arm_every(tx->abort_ev, cfg->txn_abort_interval_ms);
        arm_every(tx->expire_ev, cfg->txn_expire_interval_ms);
        int loaded = 0, ids = 0;
        for (int32_t p = 0; t && p < t->nparts; p++) {
            if (srv_partition_owner(b->nshards, &t->id, p) != s->id)
                continue;
            srv_part *part = srv_partmap_get(s->parts, &t->id, p);
            if (!part || srv_part_offline(part))
                continue;
            txn_part *tp = part_get(tx, &t->id, p);
            if (!tp)
                return -ENOMEM;
            int rc = load_partition(s, part, tp);
            if (rc) {
                srv_error("cannot load %s-%d: %s", SRV_TXN_TOPIC, p, st_strerror(rc));
                return rc < 0 ? rc : -EIO;
            }
            loaded++;
            ids += (int)tp->map.count;
        }
        if (loaded)
            srv_info("shard %d: %d transactional ids of %d %s partitions loaded", s->id, ids, loaded,
                     SRV_TXN_TOPIC);
        /* Markers cross shards: only once the loops run. */
        struct timeval now = {0, 0};
        event_add(tx->resume_ev, &now);
    }
    return 0;
}

void srv_txns_stop(srv_broker *b)
{
    for (int i = 0; i < b->nshards; i++) {
        srv_shard *s = &b->shards[i];
        srv_txns *tx = s->txns;
        if (!tx)
            continue;
        while (tx->jobs) {
            mark_job *j = tx->jobs;
            job_unlink(j);
            job_free(j);
        }
        /* Their ids stay in a Complete-pending state on disk (the Prepare
         * record), which the next start resumes. */
        while (tx->retries) {
            retry_complete *r = tx->retries;
            retry_unlink(r);
            event_free(r->ev);
            free(r);
        }
        /* The loops are gone: nobody will take these ops' answers. */
        while (tx->add_head) {
            add_wait *a = tx->add_head;
            tx->add_head = a->next;
            srv_txn_op_free(a->op);
            free(a);
        }
        if (tx->add_ev)
            event_free(tx->add_ev);
        for (int32_t p = 0; p < tx->nparts && tx->parts; p++) {
            if (!tx->parts[p])
                continue;
            srv_txn_map_free(&tx->parts[p]->map);
            free(tx->parts[p]);
        }
        free(tx->parts);
        if (tx->abort_ev)
            event_free(tx->abort_ev);
        if (tx->expire_ev)
            event_free(tx->expire_ev);
        if (tx->resume_ev)
            event_free(tx->resume_ev);
        free(tx);
        s->txns = NULL;
    }
}

/* ---- txn ops ------------------------------------------------------------------ */

srv_txn_op *srv_txn_op_new(srv_txn_op_kind kind, srv_txn_op_done_fn done)
{
    srv_txn_op *op = calloc(1, sizeof(*op));
    if (!op)
        return NULL;
    op->kind = kind;
    op->done = done;
    op->partition = -1;
    op->producer_id = -1;
    op->producer_epoch = -1;
    op->out_pid = -1;
    op->out_epoch = -1;
    op->min_duration_ms = -1;
    return op;
}

void srv_txn_op_free(srv_txn_op *op)
{
    if (!op)
        return;
    if (op->drop_user)
        op->drop_user(op->user);
    free(op->parts);
    free(op->per_part);
    for (int32_t i = 0; i < op->ndescs; i++) {
        free(op->descs[i].txn_id);
        srv_txn_image_clear(&op->descs[i].img);
    }
    free(op->descs);
    free(op);
}

static void op_drop(srv_call *call)
{
    srv_txn_op_free((srv_txn_op *)call);
}

static void op_done(srv_shard *s, srv_call *call)
{
    srv_txn_op *op = (srv_txn_op *)call;
    op->done(s, op);
}

static int desc_add(srv_txn_op *op, const srv_txn_meta *m, int32_t *cap)
{
    if (op->ndescs == *cap) {
        int32_t ncap = *cap ? *cap * 2 : 8;
        srv_txn_desc *d = realloc(op->descs, (size_t)ncap * sizeof(*d));
        if (!d)
            return -1;
        op->descs = d;
        *cap = ncap;
    }
    srv_txn_desc *d = &op->descs[op->ndescs];
    d->txn_id = malloc((size_t)m->id_len + 1);
    if (!d->txn_id)
        return -1;
    memcpy(d->txn_id, m->txn_id, (size_t)m->id_len);
    d->txn_id[m->id_len] = 0;
    d->id_len = m->id_len;
    srv_txn_image_init(&d->img);
    if (srv_txn_image_copy(&d->img, &m->img)) {
        free(d->txn_id);
        return -1;
    }
    op->ndescs++;
    return 0;
}

typedef struct list_ctx {
    srv_txn_op *op;
    int64_t now;
    int32_t cap;
    int failed;
} list_ctx;

static void list_one(srv_txn_meta *m, void *arg)
{
    list_ctx *c = arg;
    srv_txn_op *op = c->op;
    if (m->pending == SRV_TXN_DEAD)
        return;
    if (op->nstates > 0) {
        const char *name = srv_txn_state_name(m->img.state);
        size_t nl = strlen(name); /* our own constant names, not protocol strings */
        bool hit = false;
        for (int32_t i = 0; i < op->nstates && !hit; i++)
            hit = op->states[i].len == (int32_t)nl && memcmp(op->states[i].p, name, nl) == 0;
        if (!hit)
            return;
    }
    if (op->npids > 0) {
        bool hit = false;
        for (int32_t i = 0; i < op->npids && !hit; i++)
            hit = op->pids[i] == m->img.producer_id;
        if (!hit)
            return;
    }
    /* KIP-994: transactions running longer than the duration (Kafka's test
     * is on the start time alone, whatever the state). */
    if (op->min_duration_ms >= 0 && c->now - m->img.start_ms <= op->min_duration_ms)
        return;
    if (desc_add(op, m, &c->cap))
        c->failed = 1;
}

static void op_run_kind(srv_shard *s, srv_txn_op *op);

static void add_kick(srv_txns *tx, int delay_ms)
{
    struct timeval tv = {0, delay_ms * 1000};
    if (!tx->add_head || !tx->add_ev)
        return;
    /* Never later than already due: a stream of new arrivals must not keep
     * pushing the retry of the queue's head away. */
    if (delay_ms > 0 && evtimer_pending(tx->add_ev, NULL))
        return;
    evtimer_add(tx->add_ev, &tv);
}

static bool add_enqueue(srv_txns *tx, srv_txn_op *op)
{
    add_wait *a = calloc(1, sizeof(*a));
    if (!a)
        return false;
    a->op = op;
    /* Its wait starts now even behind another add of its id, so every
     * queued add is answered within TXN_ADD_RETRY_MAX_MS of its arrival
     * (park_add), not one after the other. */
    if (op->add_first_ms == 0)
        op->add_first_ms = srv_mono_ms();
    if (tx->add_tail)
        tx->add_tail->next = a;
    else
        tx->add_head = a;
    tx->add_tail = a;
    add_kick(tx, TXN_ADD_RETRY_MS);
    return true;
}

/* Whether an implicit add of the same id waits: a later one queues behind. */
static bool add_waiting(const srv_txns *tx, const srv_txn_op *op)
{
    for (const add_wait *a = tx->add_head; a; a = a->next)
        if (a->op->txn_id.len == op->txn_id.len &&
            memcmp(a->op->txn_id.p, op->txn_id.p, (size_t)op->txn_id.len) == 0)
            return true;
    return false;
}

/* Parks an implicit add that got CONCURRENT_TRANSACTIONS for another try;
 * false once it has waited TXN_ADD_RETRY_MAX_MS (the producer retries then). */
static bool park_add(srv_txns *tx, srv_txn_op *op)
{
    int64_t now = srv_mono_ms();
    if (op->add_first_ms == 0)
        op->add_first_ms = now;
    if (now - op->add_first_ms >= TXN_ADD_RETRY_MAX_MS)
        return false;
    return add_enqueue(tx, op);
}

static void on_add_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    srv_txns *tx = arg;
    /* One pass in arrival order; what waits again queues anew, and the
     * later adds of its id queue behind it (add_waiting). */
    add_wait *a = tx->add_head;
    tx->add_head = tx->add_tail = NULL;
    while (a) {
        add_wait *next = a->next;
        srv_txn_op *op = a->op;
        free(a);
        op_run_kind(tx->s, op);
        a = next;
    }
}

static void op_run_kind(srv_shard *s, srv_txn_op *op)
{
    srv_txns *tx = s->txns;
    srv_txn_step step;
    int64_t now = srv_now_ms();
    if (op->kind == SRV_TXN_OP_LIST) {
        list_ctx c = {op, now, 0, 0};
        for (int32_t i = 0; i < tx->nparts; i++)
            if (tx->parts[i])
                srv_txn_map_each(&tx->parts[i]->map, list_one, &c);
        op->error = c.failed ? KP_ERR_UNKNOWN_SERVER_ERROR : KP_ERR_NONE;
        srv_call_reply(s, &op->call);
        return;
    }
    txn_part *tp = part_get(tx, &op->topic_id, op->partition);
    if (!tp) {
        op->error = KP_ERR_NOT_COORDINATOR;
        srv_call_reply(s, &op->call);
        return;
    }
    srv_txn_meta *m = srv_txn_map_get(&tp->map, op->txn_id.p, op->txn_id.len);
    switch (op->kind) {
    case SRV_TXN_OP_INIT: {
        int16_t err = srv_txn_init_precheck(&tx->cfg, op->txn_id.len, op->timeout_ms);
        if (err) {
            op->error = err;
            break;
        }
        if (!m) {
            m = srv_txn_meta_new(op->txn_id.p, op->txn_id.len, pid_take(s), op->timeout_ms, now);
            if (!m || srv_txn_map_put(&tp->map, m)) {
                srv_txn_meta_free(m);
                op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
                break;
            }
        }
        srv_txn_decide_init(&tx->cfg, m, op->timeout_ms, op->has_expected, op->producer_id,
                            op->producer_epoch, pid_offer(s), now, &step);
        if (step.pid_used)
            pid_take(s);
        run_step(tx, tp, m, &step, op);
        return;
    }
    case SRV_TXN_OP_ADD_PARTS:
    case SRV_TXN_OP_ADD_OFFSETS:
        if (!m) {
            op->error = KP_ERR_INVALID_PRODUCER_ID_MAPPING;
            break;
        }
        if (op->kind == SRV_TXN_OP_ADD_PARTS)
            srv_txn_decide_add_partitions(m, op->producer_id, op->producer_epoch, op->parts, op->nparts,
                                          op->client_tv, now, &step);
        else
            srv_txn_decide_add_offsets(m, op->producer_id, op->producer_epoch, op->offsets_partition,
                                       op->client_tv, now, &step);
        run_step(tx, tp, m, &step, op);
        return;
    case SRV_TXN_OP_VERIFY:
        if (!m) {
            op->error = KP_ERR_INVALID_PRODUCER_ID_MAPPING;
            break;
        }
        if (op->implicit_add) {
            if (add_waiting(tx, op) && add_enqueue(tx, op))
                return;
            /* KIP-890 part 2: the partition leader adds the partitions
             * itself (Kafka's AddPartitionsToTxnManager sends a
             * non-verify-only AddPartitionsToTxn with the client's
             * version), so the decision is AddPartitionsToTxn's and one
             * error answers every partition. */
            op->decide_ns = (int64_t)srv_now_ns();
            srv_txn_decide_add_partitions(m, op->producer_id, op->producer_epoch, op->parts, op->nparts,
                                          op->client_tv, now, &step);
            if (step.error == KP_ERR_CONCURRENT_TRANSACTIONS && !step.write && park_add(tx, op)) {
                srv_txn_step_clear(&step);
                return;
            }
            run_step(tx, tp, m, &step, op);
            return;
        }
        op->decide_ns = (int64_t)srv_now_ns();
        op->error = srv_txn_verify_partitions(m, op->producer_id, op->producer_epoch, op->parts, op->nparts,
                                              op->per_part);
        break;
    case SRV_TXN_OP_END:
        if (!m) {
            op->error = KP_ERR_INVALID_PRODUCER_ID_MAPPING;
            break;
        }
        srv_txn_decide_end(&tx->cfg, m, op->producer_id, op->producer_epoch, op->commit, op->client_tv,
                           pid_offer(s), now, &step);
        if (step.pid_used)
            pid_take(s);
        run_step(tx, tp, m, &step, op);
        return;
    case SRV_TXN_OP_DESCRIBE: {
        int32_t cap = 0;
        /* An id whose tombstone is being written is already gone (Kafka: pending Dead). */
        if (!m || m->pending == SRV_TXN_DEAD)
            op->error = KP_ERR_TRANSACTIONAL_ID_NOT_FOUND;
        else if (desc_add(op, m, &cap))
            op->error = KP_ERR_UNKNOWN_SERVER_ERROR;
        break;
    }
    default:
        SRV_ASSERT(0, "txn op of unknown kind %d", (int)op->kind);
    }
    srv_call_reply(s, &op->call);
}

static void op_run(srv_shard *owner, srv_call *call)
{
    srv_txn_op *op = (srv_txn_op *)call;
    if (!owner->txns) {
        op->error = KP_ERR_COORDINATOR_NOT_AVAILABLE;
        srv_call_reply(owner, &op->call);
        return;
    }
    op_run_kind(owner, op);
}

int16_t srv_txn_op_send(srv_req *req, srv_txn_op *op, int32_t partition)
{
    srv_shard *s = req->shard;
    /* Only InitProducerId (and FindCoordinator) create __transaction_state,
     * as in Kafka: a verification, a describe or an EndTxn of an id nobody
     * initialised finds no coordinator and must not create one. */
    const srv_topic *t = srv_meta_topic(s->meta, kp_str_c(SRV_TXN_TOPIC));
    int16_t err = op->kind == SRV_TXN_OP_INIT ? srv_txns_ready(s)
                  : !s->txns || !t            ? KP_ERR_COORDINATOR_NOT_AVAILABLE
                                              : KP_ERR_NONE;
    if (err)
        return err;
    if (partition < 0 || partition >= t->nparts)
        return KP_ERR_NOT_COORDINATOR;
    op->topic_id = t->id;
    op->partition = partition;
    srv_call_init(&op->call, op_run, op_done, op_drop);
    srv_call_send(s, req, &op->call, srv_partition_owner(s->b->nshards, &t->id, partition));
    return KP_ERR_NONE;
}

void srv_txn_op_send_shard(srv_req *req, srv_txn_op *op, int shard)
{
    op->partition = -1;
    srv_call_init(&op->call, op_run, op_done, op_drop);
    srv_call_send(req->shard, req, &op->call, shard);
}

int16_t srv_txn_verify_send(srv_req *req, int32_t partition, kp_str txn_id, int64_t producer_id,
                            int16_t producer_epoch, int16_t client_tv, srv_txn_tp *parts, int32_t nparts,
                            srv_txn_op_done_fn done, void *user, void (*drop_user)(void *user))
{
    srv_txn_op *op = srv_txn_op_new(SRV_TXN_OP_VERIFY, done);
    int16_t *per = calloc((size_t)nparts + 1, sizeof(*per));
    if (!op || !per) {
        free(op);
        free(per);
        free(parts);
        return KP_ERR_UNKNOWN_SERVER_ERROR;
    }
    op->txn_id = txn_id;
    op->producer_id = producer_id;
    op->producer_epoch = producer_epoch;
    op->client_tv = client_tv;
    /* AddPartitionsToTxn v5's verify-only form stays a verification:
     * only the partition leader's own request adds. */
    op->implicit_add = client_tv >= 2;
    op->parts = parts;
    op->per_part = per;
    op->nparts = nparts;
    /* op_drop frees user if the request goes while the op is out. */
    op->user = user;
    op->drop_user = drop_user;
    int16_t err = srv_txn_op_send(req, op, partition);
    if (err) {
        op->user = NULL; /* not sent: the caller keeps it */
        op->drop_user = NULL;
        srv_txn_op_free(op);
    }
    return err;
}

int16_t srv_txn_verify_result(const srv_txn_op *op, int32_t i)
{
    SRV_ASSERT(op->kind == SRV_TXN_OP_VERIFY && i >= 0 && i < op->nparts,
               "verify result %d of a kind %d op of %d parts", i, (int)op->kind, op->nparts);
    return op->error ? op->error : op->per_part[i];
}

int16_t srv_txn_client_tv(int16_t api_key, int16_t version)
{
    switch (api_key) {
    case KP_API_PRODUCE:
        return version >= 12 ? 2 : 0;
    case KP_API_TXN_OFFSET_COMMIT:
    case KP_API_ADD_PARTITIONS_TO_TXN:
    case KP_API_END_TXN:
        return version >= 5 ? 2 : 0;
    default:
        return 0;
    }
}

int16_t srv_txn_map_fenced(int16_t error, int16_t version, int16_t first_fenced_version)
{
    if (error == KP_ERR_PRODUCER_FENCED && version < first_fenced_version)
        return KP_ERR_INVALID_PRODUCER_EPOCH;
    return error;
}

int16_t srv_txn_produce_error(int16_t err, int16_t version, const char **msg)
{
    *msg = NULL;
    switch (err) {
    case KP_ERR_NONE:
        return KP_ERR_NONE;
    case KP_ERR_TRANSACTION_ABORTABLE:
        if (version >= 11)
            return KP_ERR_TRANSACTION_ABORTABLE;
        *msg = "Partition was not added to the transaction";
        return KP_ERR_INVALID_TXN_STATE;
    case KP_ERR_PRODUCER_FENCED:
        return KP_ERR_INVALID_PRODUCER_EPOCH;
    case KP_ERR_NOT_COORDINATOR:
    case KP_ERR_COORDINATOR_NOT_AVAILABLE:
    case KP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case KP_ERR_CONCURRENT_TRANSACTIONS:
        return KP_ERR_NOT_ENOUGH_REPLICAS;
    default:
        return err;
    }
}

int16_t srv_txn_offset_commit_error(int16_t err, int16_t version)
{
    switch (err) {
    case KP_ERR_TRANSACTION_ABORTABLE:
        return version >= 4 ? KP_ERR_TRANSACTION_ABORTABLE : KP_ERR_INVALID_TXN_STATE;
    case KP_ERR_PRODUCER_FENCED:
        return KP_ERR_INVALID_PRODUCER_EPOCH;
    case KP_ERR_NOT_COORDINATOR:
    case KP_ERR_COORDINATOR_LOAD_IN_PROGRESS:
    case KP_ERR_CONCURRENT_TRANSACTIONS:
        return KP_ERR_COORDINATOR_NOT_AVAILABLE;
    default:
        return err;
    }
}
