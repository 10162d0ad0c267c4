/*
 * test_call.c — unit tests of the cross-shard call (server/call.c) without a
 * broker: two fake shards with real rings, delivered by hand under each
 * shard's thread identity. The round trip, the request's hold/release and
 * continuation, a request answered while its call is out, and the rules that
 * abort (second reply, run or done on the wrong shard, release without hold,
 * a call sent twice).
 *
 * Owns: nothing outside the process. Must not: start threads, loops or
 * sockets.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "call.h"
#include "srv_assert.h"
#include "kb_test.h"

typedef struct fake {
    srv_broker b;
    srv_shard sh[2];
} fake;

static void fake_init(fake *f)
{
    memset(f, 0, sizeof(*f));
    f->b.nshards = 2;
    f->b.shards = f->sh;
    for (int i = 0; i < 2; i++) {
        srv_shard *s = &f->sh[i];
        s->id = i;
        s->b = &f->b;
        s->inbox = calloc(2, sizeof(srv_ring));
        s->overflow = calloc(2, sizeof(srv_msg *));
        s->overflow_tail = calloc(2, sizeof(srv_msg *));
        s->doorbell_fd = eventfd(0, EFD_NONBLOCK);
        CU_ASSERT_FATAL(s->inbox && s->overflow && s->overflow_tail && s->doorbell_fd >= 0);
        for (int j = 0; j < 2; j++)
            CU_ASSERT_FATAL(srv_ring_init(&s->inbox[j], 64) == 0);
    }
    srv_log_shard = 0; /* the test is shard 0 unless delivering elsewhere */
}

static void fake_free(fake *f)
{
    for (int i = 0; i < 2; i++) {
        srv_shard *s = &f->sh[i];
        for (int j = 0; j < 2; j++)
            srv_ring_free(&s->inbox[j]);
        free(s->inbox);
        free(s->overflow);
        free(s->overflow_tail);
        close(s->doorbell_fd);
    }
    srv_log_shard = -1;
}

/* Delivers every queued message on its target shard; the number delivered. */
static int pump(fake *f)
{
    int n = 0, more = 1;
    while (more) {
        more = 0;
        for (int t = 0; t < 2; t++)
            for (int from = 0; from < 2; from++) {
                srv_msg *m;
                while ((m = srv_ring_pop(&f->sh[t].inbox[from]))) {
                    srv_log_shard = t;
                    m->fn(&f->sh[t], m);
                    srv_log_shard = 0;
                    n++;
                    more = 1;
                }
            }
    }
    return n;
}

/* ---- a test call --------------------------------------------------------- */

typedef struct tcall {
    srv_call call;
    int run_on, run_thread; /* shard passed to run, srv_log_shard there */
    int done_on, done_thread;
    int runs, dones, replies; /* replies: how many times run replies */
    int seq;                  /* order of done among all events */
} tcall;

static int g_seq, g_drops, g_freed, g_then, g_then_seq, g_pending_at_then;

static void t_run(srv_shard *on, srv_call *c)
{
    tcall *t = (tcall *)c;
    t->runs++;
    t->run_on = on->id;
    t->run_thread = srv_log_shard;
    for (int i = 0; i < t->replies; i++)
        srv_call_reply(on, c);
}

static void t_done(srv_shard *on, srv_call *c)
{
    tcall *t = (tcall *)c;
    t->dones++;
    t->done_on = on->id;
    t->done_thread = srv_log_shard;
    t->seq = ++g_seq;
}

static void t_drop(srv_call *c)
{
    (void)c;
    g_drops++;
}

static void t_cleanup(srv_req *req)
{
    (void)req;
    g_freed++;
}

static void t_then(srv_req *req)
{
    g_then++;
    g_then_seq = ++g_seq;
    g_pending_at_then = req->pending;
}

static srv_req *new_req(fake *f)
{
    srv_req *req = calloc(1, sizeof(*req));
    CU_ASSERT_FATAL(req != NULL);
    req->shard = &f->sh[0];
    req->cleanup = t_cleanup;
    return req;
}

static void reset_counters(void)
{
    g_seq = g_drops = g_freed = g_then = g_then_seq = 0;
    g_pending_at_then = -1;
}

static void new_call(tcall *t)
{
    memset(t, 0, sizeof(*t));
    srv_call_init(&t->call, t_run, t_done, t_drop);
    t->replies = 1;
    t->run_on = t->run_thread = t->done_on = t->done_thread = -1;
}

static void test_round_trip(void)
{
    fake f;
    fake_init(&f);
    reset_counters();
    srv_req *req = new_req(&f);
    tcall t;
    new_call(&t);
    srv_call_send(&f.sh[0], req, &t.call, 1);
    CU_ASSERT_EQUAL(req->pending, 1);
    CU_ASSERT_EQUAL(t.runs, 0); /* queued for shard 1, not run inline */
    CU_ASSERT_EQUAL(pump(&f), 2);
    CU_ASSERT_EQUAL(t.runs, 1);
    CU_ASSERT_EQUAL(t.run_on, 1);
    CU_ASSERT_EQUAL(t.run_thread, 1);
    CU_ASSERT_EQUAL(t.dones, 1);
    CU_ASSERT_EQUAL(t.done_on, 0);
    CU_ASSERT_EQUAL(t.done_thread, 0);
    CU_ASSERT_EQUAL(t.call.state, SRV_CALL_BACK);
    CU_ASSERT_EQUAL(req->pending, 0);
    CU_ASSERT_EQUAL(g_freed, 0);
    /* Back, the same call may go out again. */
    srv_call_send(&f.sh[0], req, &t.call, 1);
    CU_ASSERT_EQUAL(pump(&f), 2);
    CU_ASSERT_EQUAL(t.dones, 2);
    srv_req_free(req);
    CU_ASSERT_EQUAL(g_freed, 1);
    fake_free(&f);
}

static void test_then_after_last_reply(void)
{
    fake f;
    fake_init(&f);
    reset_counters();
    srv_req *req = new_req(&f);
    tcall local, remote;
    new_call(&local);
    new_call(&remote);
    srv_req_then(req, t_then);
    srv_req_hold(req);
    srv_call_send(&f.sh[0], req, &local.call, 0); /* answered inline */
    CU_ASSERT_EQUAL(local.dones, 1);
    CU_ASSERT_EQUAL(g_then, 0); /* held: not before the sending is over */
    srv_call_send(&f.sh[0], req, &remote.call, 1);
    CU_ASSERT_EQUAL(srv_req_release(req), 0);
    CU_ASSERT_EQUAL(g_then, 0); /* the remote call is still out */
    CU_ASSERT_EQUAL(req->pending, 1);
    pump(&f);
    CU_ASSERT_EQUAL(remote.dones, 1);
    CU_ASSERT_EQUAL(g_then, 1);
    CU_ASSERT(g_then_seq > remote.seq); /* after the last done */
    CU_ASSERT_EQUAL(g_pending_at_then, 0);
    CU_ASSERT_PTR_NULL(req->then); /* once only */

    /* Every call inline: the continuation runs at the release, not before. */
    reset_counters();
    tcall a, b;
    new_call(&a);
    new_call(&b);
    srv_req_then(req, t_then);
    srv_req_hold(req);
    srv_call_send(&f.sh[0], req, &a.call, 0);
    srv_call_send(&f.sh[0], req, &b.call, 0);
    CU_ASSERT_EQUAL(g_then, 0);
    CU_ASSERT_EQUAL(srv_req_release(req), 1);
    CU_ASSERT_EQUAL(g_then, 1);
    srv_req_free(req);
    fake_free(&f);
}

static void test_answered_while_out(void)
{
    fake f;
    fake_init(&f);
    reset_counters();
    srv_req *req = new_req(&f);
    tcall t;
    new_call(&t);
    srv_req_then(req, t_then);
    srv_call_send(&f.sh[0], req, &t.call, 1);
    srv_req_free(req); /* the connection went: answered and detached */
    CU_ASSERT_EQUAL(g_freed, 0);
    CU_ASSERT_EQUAL(req->released, 1);
    pump(&f);
    CU_ASSERT_EQUAL(t.runs, 1);
    CU_ASSERT_EQUAL(t.dones, 0); /* nobody to answer */
    CU_ASSERT_EQUAL(g_drops, 1);
    CU_ASSERT_EQUAL(g_then, 0);
    CU_ASSERT_EQUAL(g_freed, 1); /* freed with the last call back */
    fake_free(&f);
}

/* While the broker drains at shutdown no loop reads the rings: a reply
 * reaches its origin at once, and a request whose connection went is freed. */
static void test_reply_while_draining(void)
{
    fake f;
    fake_init(&f);
    reset_counters();
    srv_req *req = new_req(&f);
    srv_req *gone = new_req(&f);
    tcall t, u;
    new_call(&t);
    new_call(&u);
    t.replies = u.replies = 0; /* parked on shard 1, as an acks=all produce */
    srv_call_send(&f.sh[0], req, &t.call, 1);
    srv_call_send(&f.sh[0], gone, &u.call, 1);
    CU_ASSERT_EQUAL(pump(&f), 2);
    srv_req_free(gone); /* its connection closed when the loop stopped */
    f.b.draining = 1;
    srv_log_shard = -1; /* main */
    srv_call_reply(&f.sh[1], &t.call);
    srv_call_reply(&f.sh[1], &u.call);
    CU_ASSERT_EQUAL(t.dones, 1);
    CU_ASSERT_EQUAL(t.done_on, 0);
    CU_ASSERT_EQUAL(req->pending, 0);
    CU_ASSERT_EQUAL(u.dones, 0);
    CU_ASSERT_EQUAL(g_drops, 1);
    CU_ASSERT_EQUAL(g_freed, 1);
    srv_log_shard = 0;
    CU_ASSERT_EQUAL(pump(&f), 0); /* nothing left in a ring */
    srv_req_free(req);
    fake_free(&f);
}

/* ---- the rules that abort -------------------------------------------------- */

enum {
    BREAK_SECOND_REPLY,
    BREAK_DONE_ELSEWHERE,
    BREAK_RUN_ELSEWHERE,
    BREAK_RELEASE_UNHELD,
    BREAK_SEND_TWICE
};

static void break_rule(int which)
{
    fake f;
    fake_init(&f);
    reset_counters();
    srv_req *req = new_req(&f);
    tcall t;
    new_call(&t);
    srv_msg *m;
    switch (which) {
    case BREAK_SECOND_REPLY:
        t.replies = 2;
        srv_call_send(&f.sh[0], req, &t.call, 1);
        pump(&f);
        break;
    case BREAK_DONE_ELSEWHERE:
        srv_call_send(&f.sh[0], req, &t.call, 1);
        m = srv_ring_pop(&f.sh[1].inbox[0]);
        srv_log_shard = 1;
        m->fn(&f.sh[1], m); /* run replies: the call heads to shard 0 */
        m = srv_ring_pop(&f.sh[0].inbox[1]);
        m->fn(&f.sh[1], m); /* ...but comes back on shard 1 */
        break;
    case BREAK_RUN_ELSEWHERE:
        srv_call_send(&f.sh[0], req, &t.call, 1);
        m = srv_ring_pop(&f.sh[1].inbox[0]);
        m->fn(&f.sh[0], m);
        break;
    case BREAK_RELEASE_UNHELD:
        srv_req_release(req);
        break;
    case BREAK_SEND_TWICE:
        srv_call_send(&f.sh[0], req, &t.call, 1);
        srv_call_send(&f.sh[0], req, &t.call, 1);
        break;
    }
}

/* Whether breaking the rule aborts the process (in a child). */
static int aborts(int which)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0)
            dup2(fd, 2); /* the "invariant broken" line is expected */
        break_rule(which);
        _exit(0);
    }
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return 0;
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

static void test_rules_abort(void)
{
    CU_ASSERT(aborts(BREAK_SECOND_REPLY));
    CU_ASSERT(aborts(BREAK_DONE_ELSEWHERE));
    CU_ASSERT(aborts(BREAK_RUN_ELSEWHERE));
    CU_ASSERT(aborts(BREAK_RELEASE_UNHELD));
    CU_ASSERT(aborts(BREAK_SEND_TWICE));
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("call", NULL, NULL);
    CU_add_test(s, "round trip: run on the target, done on the origin", test_round_trip);
    CU_add_test(s, "continuation after the last reply and the hold", test_then_after_last_reply);
    CU_add_test(s, "request answered while its call is out", test_answered_while_out);
    CU_add_test(s, "reply while the broker drains", test_reply_while_draining);
    CU_add_test(s, "broken rules abort", test_rules_abort);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};
