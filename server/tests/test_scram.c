/*
 * test_scram.c — unit tests of SCRAM (server/scram.c, server/scram_store.c)
 * and of the controller's credential operation: RFC 7677's SCRAM-SHA-256
 * test vector, a SCRAM-SHA-512 exchange computed here as a client would,
 * refusals of malformed and oversized messages, Kafka's
 * AlterUserScramCredentials rules, and 'S' records that replay (upserts,
 * tombstones, records of other kinds skipped) to the version published.
 *
 * Owns: nothing outside the process. Must not: depend on shards or disk.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller.h"
#include "errors.h"
#include "kb_test.h"
#include "meta.h"
#include "scram.h"
#include "scram_store.h"

static const char GENERIC256[] = "Authentication failed during authentication due to invalid credentials "
                                 "with SASL mechanism SCRAM-SHA-256";

/* The single credential a test's lookup answers with (NULL: none). */
static srv_scram_cred *g_cred;

static const srv_scram_cred *lookup_one(void *arg, const char *user, size_t len, int mech)
{
    (void)arg;
    (void)user;
    (void)len;
    return g_cred && g_cred->mech == mech ? g_cred : NULL;
}

static int step(srv_scram_server *s, const char *msg, size_t len, const char **out, size_t *out_len,
                const char **err)
{
    const uint8_t *o;
    const char *why;
    int rc = srv_scram_server_step(s, (const uint8_t *)msg, len, lookup_one, NULL, &o, out_len, err, &why);
    *out = (const char *)o;
    if (rc == SRV_SCRAM_FAILED)
        CU_ASSERT_PTR_NOT_NULL(why); /* something for the log line */
    return rc;
}

static int steps(srv_scram_server *s, const char *msg, const char **err)
{
    const char *out;
    size_t n;
    return step(s, msg, strlen(msg), &out, &n, err);
}

static srv_scram_cred make_cred(int mech, const char *pw, const uint8_t *salt, size_t salt_len, int32_t iters)
{
    uint8_t salted[SRV_SCRAM_KEY_MAX];
    srv_scram_cred c;
    CU_ASSERT_EQUAL_FATAL(
        srv_scram_salt_password(mech, (const uint8_t *)pw, strlen(pw), salt, salt_len, iters, salted), 0);
    CU_ASSERT_EQUAL_FATAL(
        srv_scram_cred_from_salted(mech, salted, srv_scram_key_len(mech), salt, salt_len, iters, &c), 0);
    return c;
}

/* RFC 7677 section 3: user "user", password "pencil". */
static const uint8_t RFC_SALT[16] = {0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec,
                                     0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81}; /* W22ZaJ0SNY7soEsUEjb6gQ== */
static const char RFC_SNONCE[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char RFC_FIRST[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char RFC_FINAL[] = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="
                                "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

static srv_scram_server *rfc_server(srv_scram_cred *c)
{
    *c = make_cred(SRV_SCRAM_SHA256, "pencil", RFC_SALT, sizeof(RFC_SALT), 4096);
    g_cred = c;
    srv_scram_server *s = srv_scram_server_new(SRV_SCRAM_SHA256);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    srv_scram_server_fix_nonce(s, RFC_SNONCE, strlen(RFC_SNONCE));
    return s;
}

static void test_rfc7677_vector(void)
{
    srv_scram_cred c;
    srv_scram_server *s = rfc_server(&c);
    const char *out, *err;
    size_t n;
    CU_ASSERT_EQUAL(step(s, RFC_FIRST, strlen(RFC_FIRST), &out, &n, &err), SRV_SCRAM_CONTINUE);
    static const char want_first[] =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    CU_ASSERT_EQUAL(n, strlen(want_first));
    CU_ASSERT(n == strlen(want_first) && memcmp(out, want_first, n) == 0);
    CU_ASSERT_EQUAL(step(s, RFC_FINAL, strlen(RFC_FINAL), &out, &n, &err), SRV_SCRAM_DONE);
    static const char want_final[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    CU_ASSERT(n == strlen(want_final) && memcmp(out, want_final, n) == 0);
    size_t ul;
    const char *user = srv_scram_server_user(s, &ul);
    CU_ASSERT(user && ul == 4 && memcmp(user, "user", 4) == 0);
    /* Nothing more after the exchange. */
    CU_ASSERT_EQUAL(steps(s, RFC_FINAL, &err), SRV_SCRAM_FAILED);
    srv_scram_server_free(s);
}

static void test_rfc7677_wrong_proof(void)
{
    srv_scram_cred c;
    srv_scram_server *s = rfc_server(&c);
    const char *err;
    CU_ASSERT_EQUAL(steps(s, RFC_FIRST, &err), SRV_SCRAM_CONTINUE);
    char bad[sizeof(RFC_FINAL)];
    memcpy(bad, RFC_FINAL, sizeof(bad));
    bad[sizeof(bad) - 3] = bad[sizeof(bad) - 3] == 'A' ? 'B' : 'A'; /* one proof bit off */
    CU_ASSERT_EQUAL(steps(s, bad, &err), SRV_SCRAM_FAILED);
    CU_ASSERT_STRING_EQUAL(err, GENERIC256);
    size_t ul;
    CU_ASSERT_PTR_NULL(srv_scram_server_user(s, &ul));
    srv_scram_server_free(s);

    /* The right proof for another nonce than the server's is refused too. */
    s = rfc_server(&c);
    srv_scram_server_fix_nonce(s, "other", 5);
    CU_ASSERT_EQUAL(steps(s, RFC_FIRST, &err), SRV_SCRAM_CONTINUE);
    CU_ASSERT_EQUAL(steps(s, RFC_FINAL, &err), SRV_SCRAM_FAILED);
    srv_scram_server_free(s);
}

static void b64(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* A SCRAM-SHA-512 client computed here with OpenSSL directly. */
static void test_sha512_exchange(void)
{
    static const uint8_t salt[] = "0123456789abcdef0123";
    static srv_scram_cred c;
    c = make_cred(SRV_SCRAM_SHA512, "s3cr\xc3\xa9t", salt, 20, 8192);
    g_cred = &c;
    for (int wrong = 0; wrong < 2; wrong++) {
        srv_scram_server *s = srv_scram_server_new(SRV_SCRAM_SHA512);
        const char *first = "n,,n=al=2Cice=3D,r=clientnonce512";
        const char *out, *err;
        size_t n;
        CU_ASSERT_EQUAL_FATAL(step(s, first, strlen(first), &out, &n, &err), SRV_SCRAM_CONTINUE);
        char sf[512];
        CU_ASSERT_FATAL(n < sizeof(sf));
        memcpy(sf, out, n);
        sf[n] = 0;
        CU_ASSERT(strncmp(sf, "r=clientnonce512", 16) == 0);
        CU_ASSERT(strstr(sf, ",i=8192") != NULL);
        const char *comma = strchr(sf, ',');
        char without[600];
        snprintf(without, sizeof(without), "c=biws,r=%.*s", (int)(comma - sf - 2), sf + 2);
        char am[2048];
        snprintf(am, sizeof(am), "%s,%s,%s", first + 3, sf, without);
        uint8_t salted[64], ck[64], sk[64], sig[64], proof[64], svk[64], ssig[64];
        unsigned int l;
        const char *pw = wrong ? "s3cret" : "s3cr\xc3\xa9t";
        PKCS5_PBKDF2_HMAC(pw, (int)strlen(pw), salt, 20, 8192, EVP_sha512(), 64, salted);
        HMAC(EVP_sha512(), salted, 64, (const uint8_t *)"Client Key", 10, ck, &l);
        EVP_Digest(ck, 64, sk, &l, EVP_sha512(), NULL);
        HMAC(EVP_sha512(), sk, 64, (const uint8_t *)am, strlen(am), sig, &l);
        for (int i = 0; i < 64; i++)
            proof[i] = ck[i] ^ sig[i];
        char final[800], p64[100];
        b64(proof, 64, p64);
        snprintf(final, sizeof(final), "%s,p=%s", without, p64);
        int rc = step(s, final, strlen(final), &out, &n, &err);
        if (wrong) {
            CU_ASSERT_EQUAL(rc, SRV_SCRAM_FAILED);
            CU_ASSERT_STRING_EQUAL(err,
                                   "Authentication failed during authentication due to invalid credentials "
                                   "with SASL mechanism SCRAM-SHA-512");
        } else {
            CU_ASSERT_EQUAL_FATAL(rc, SRV_SCRAM_DONE);
            HMAC(EVP_sha512(), salted, 64, (const uint8_t *)"Server Key", 10, svk, &l);
            HMAC(EVP_sha512(), svk, 64, (const uint8_t *)am, strlen(am), ssig, &l);
            char want[120] = "v=";
            b64(ssig, 64, want + 2);
            CU_ASSERT(n == strlen(want) && memcmp(out, want, n) == 0);
            size_t ul;
            const char *user = srv_scram_server_user(s, &ul);
            CU_ASSERT(user && ul == 7 && memcmp(user, "al,ice=", 7) == 0); /* =2C and =3D decoded */
        }
        srv_scram_server_free(s);
    }
}

static void test_malformed_first(void)
{
    srv_scram_cred c;
    char big[2000];
    memset(big, 'a', sizeof(big));
    memcpy(big, "n,,n=", 5);
    memcpy(big + sizeof(big) - 6, ",r=abc", 6);
    const struct {
        const char *msg;
        size_t len;
    } bad[] = {
        {"", 0},
        {"y,,n=user,r=abc", 15},                    /* channel binding flags other than 'n' */
        {"p=tls-unique,,n=user,r=abc", 26},         /* channel binding */
        {"n,,n=user", 9},                           /* no nonce */
        {"n,,r=abc,n=user", 15},                    /* out of order */
        {"n,,n=,r=abc", 11},                        /* empty name */
        {"n,,n=us=2Xer,r=abc", 18},                 /* bad escape */
        {"n,,n=us=er,r=abc", 16},                   /* bare '=' */
        {"n,,n=us\xc3\xa9r,r=abc", 17},             /* non-ASCII name (Kafka's saslname) */
        {"n,,n=us\0er,r=abc", 16},                  /* NUL */
        {"n,,n=user,r=", 12},                       /* empty nonce */
        {"n,,n=user,r=a b", 15},                    /* unprintable nonce */
        {"n,,n=user,r=abc,=x", 18},                 /* extension without a name */
        {"n,,n=user,r=abc,tokenauth=true", 30},     /* delegation tokens are not enabled */
        {"n,,n=user,r=abc,tokenauth=TRUE,x=y", 34}, /* any case, as Boolean.parseBoolean */
        {"n,a=other,n=user,r=abc", 22},             /* authzid differs (its own message) */
        {big, sizeof(big)},                         /* name over 255 bytes */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        srv_scram_server *s = rfc_server(&c);
        const char *out, *err;
        size_t n;
        int rc = step(s, bad[i].msg, bad[i].len, &out, &n, &err);
        if (rc != SRV_SCRAM_FAILED)
            fprintf(stderr, "\naccepted malformed client-first #%zu\n", i);
        CU_ASSERT_EQUAL(rc, SRV_SCRAM_FAILED);
        CU_ASSERT_PTR_NULL(out);
        const char *want = i == 15 ? "Authentication failed: Client requested an authorization id that is "
                                     "different from username"
                                   : GENERIC256;
        CU_ASSERT_STRING_EQUAL(err, want);
        srv_scram_server_free(s);
    }
    /* What Kafka accepts: an equal authzid, extensions it ignores. */
    const char *good[] = {"n,a=user,n=user,r=abc", "n,,n=user,r=abc,ext=value,tokenauth=false"};
    for (size_t i = 0; i < 2; i++) {
        srv_scram_server *s = rfc_server(&c);
        const char *err;
        CU_ASSERT_EQUAL(steps(s, good[i], &err), SRV_SCRAM_CONTINUE);
        srv_scram_server_free(s);
    }
    /* Unknown user, and a stored credential under the mechanism's minimum. */
    g_cred = NULL;
    srv_scram_server *s = srv_scram_server_new(SRV_SCRAM_SHA256);
    const char *err;
    CU_ASSERT_EQUAL(steps(s, RFC_FIRST, &err), SRV_SCRAM_FAILED);
    CU_ASSERT_STRING_EQUAL(err, GENERIC256);
    srv_scram_server_free(s);
    s = rfc_server(&c);
    c.iterations = 4095;
    CU_ASSERT_EQUAL(steps(s, RFC_FIRST, &err), SRV_SCRAM_FAILED);
    srv_scram_server_free(s);
}

static void test_malformed_final(void)
{
    const char *bad[] = {
        "",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", /* no proof */
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
        "Ute9ytag9zjfMHgsqmmiz7AndVQ=",                                       /* no c= */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzb", /* short proof */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=!!!!", /* not base64 */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
        "Ute9ytag9zjfMHgsqmmiz7AndVQ=,x",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* the client's
                                                                                           nonce only */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        srv_scram_cred c;
        srv_scram_server *s = rfc_server(&c);
        const char *err;
        CU_ASSERT_EQUAL(steps(s, RFC_FIRST, &err), SRV_SCRAM_CONTINUE);
        int rc = steps(s, bad[i], &err);
        if (rc != SRV_SCRAM_FAILED)
            fprintf(stderr, "\naccepted malformed client-final #%zu\n", i);
        CU_ASSERT_EQUAL(rc, SRV_SCRAM_FAILED);
        CU_ASSERT_STRING_EQUAL(err, GENERIC256);
        srv_scram_server_free(s);
    }
}

/* ---- credential sets, records, AlterUserScramCredentials ------------------ */

static srv_scram_change upsert(const char *user, int8_t mech, int32_t iters, const char *salted)
{
    srv_scram_change c;
    memset(&c, 0, sizeof(c));
    c.user = kp_str_c(user);
    c.mech = mech;
    c.iterations = iters;
    c.salt = (kp_bytes){(const uint8_t *)"salty", 5};
    c.salted_password = (kp_bytes){(const uint8_t *)salted, (int32_t)strlen(salted)};
    return c;
}

static srv_scram_change deletion(const char *user, int8_t mech)
{
    srv_scram_change c;
    memset(&c, 0, sizeof(c));
    c.user = kp_str_c(user);
    c.mech = mech;
    c.is_delete = 1;
    return c;
}

static void check_result(const srv_scram_change *c, int16_t err, const char *msg)
{
    CU_ASSERT_EQUAL(c->error, err);
    if (c->error != err)
        fprintf(stderr, "\nuser %.*s: error %d, wanted %d\n", c->user.len, c->user.p, c->error, err);
    CU_ASSERT(msg ? c->message && strcmp(c->message, msg) == 0 : c->message == NULL);
}

static const char SP32[] = "0123456789abcdef0123456789abcdef";

static void test_alter_rules(void)
{
    /* Against a set that holds bob/SHA-256. */
    srv_scram_change seed = upsert("bob", SRV_SCRAM_SHA256, 4096, SP32);
    srv_scram_set *base = NULL;
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    CU_ASSERT_EQUAL(srv_scram_alter(NULL, &seed, 1, &bb, 1, &base), 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(srv_scram_set_find(base, "bob", 3, SRV_SCRAM_SHA256));
    kp_batch_builder_free(&bb);

    srv_scram_change ch[] = {
        deletion("absent", SRV_SCRAM_SHA256),           /* 0 */
        deletion("bob", SRV_SCRAM_SHA512),              /* 1: bob has no SHA-512 */
        deletion("", SRV_SCRAM_SHA256),                 /* 2 */
        deletion("gone", 7),                            /* 3 */
        deletion("bob", SRV_SCRAM_SHA256),              /* 4: second change of bob */
        upsert("few", SRV_SCRAM_SHA256, 4095, SP32),    /* 5 */
        upsert("many", SRV_SCRAM_SHA512, 16385, SP32),  /* 6 */
        upsert("max", SRV_SCRAM_SHA512, 16384, SP32),   /* 7 */
        upsert("mech", 0, 4096, SP32),                  /* 8 */
        upsert("twice", SRV_SCRAM_SHA256, 4096, SP32),  /* 9 */
        upsert("twice", SRV_SCRAM_SHA512, 4096, SP32),  /* 10 */
        upsert("empty-sp", SRV_SCRAM_SHA256, 4096, ""), /* 11 */
        upsert("", SRV_SCRAM_SHA256, 4096, SP32),       /* 12 */
        upsert("absent", SRV_SCRAM_SHA256, 4096, SP32), /* 13: its deletion failed first */
    };
    int n = (int)(sizeof(ch) / sizeof(ch[0]));
    srv_scram_set *out = NULL;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    CU_ASSERT_EQUAL(srv_scram_alter(base, ch, n, &bb, 1, &out), 1); /* only "max" */
    check_result(&ch[0], KP_ERR_RESOURCE_NOT_FOUND,
                 "Attempt to delete a user credential that does not exist");
    check_result(&ch[1], KP_ERR_RESOURCE_NOT_FOUND,
                 "Attempt to delete a user credential that does not exist");
    /* the same user: the answer of its first change */
    check_result(&ch[4], KP_ERR_RESOURCE_NOT_FOUND,
                 "Attempt to delete a user credential that does not exist");
    check_result(&ch[2], KP_ERR_UNACCEPTABLE_CREDENTIAL, "Username must not be empty");
    check_result(&ch[12], KP_ERR_UNACCEPTABLE_CREDENTIAL, "Username must not be empty");
    check_result(&ch[3], KP_ERR_UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism");
    check_result(&ch[5], KP_ERR_UNACCEPTABLE_CREDENTIAL, "Too few iterations");
    check_result(&ch[6], KP_ERR_UNACCEPTABLE_CREDENTIAL, "Too many iterations");
    check_result(&ch[7], KP_ERR_NONE, NULL);
    check_result(&ch[8], KP_ERR_UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism");
    check_result(&ch[9], KP_ERR_DUPLICATE_RESOURCE,
                 "A user credential cannot be altered twice in the same request");
    check_result(&ch[10], KP_ERR_DUPLICATE_RESOURCE,
                 "A user credential cannot be altered twice in the same request");
    check_result(&ch[11], KP_ERR_UNKNOWN_SERVER_ERROR, NULL);
    check_result(&ch[13], KP_ERR_RESOURCE_NOT_FOUND,
                 "Attempt to delete a user credential that does not exist");
    CU_ASSERT_PTR_NOT_NULL(srv_scram_set_find(out, "max", 3, SRV_SCRAM_SHA512));
    CU_ASSERT_PTR_NOT_NULL(srv_scram_set_find(out, "bob", 3, SRV_SCRAM_SHA256));
    CU_ASSERT_PTR_NULL(srv_scram_set_find(out, "twice", 5, SRV_SCRAM_SHA256));
    CU_ASSERT_PTR_NULL(srv_scram_set_find(base, "max", 3, SRV_SCRAM_SHA512)); /* base unchanged */
    CU_ASSERT_EQUAL(srv_scram_set_nusers(out), 2);
    kp_batch_builder_free(&bb);

    /* A salt over our bound is refused per user, not a broken request. */
    static uint8_t long_salt[SRV_SCRAM_SALT_MAX + 1];
    srv_scram_change ls = upsert("ls", SRV_SCRAM_SHA256, 4096, SP32);
    ls.salt = (kp_bytes){long_salt, (int32_t)sizeof(long_salt)};
    srv_scram_set *same = NULL;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    CU_ASSERT_EQUAL(srv_scram_alter(out, &ls, 1, &bb, 1, &same), 0);
    CU_ASSERT_EQUAL(ls.error, KP_ERR_UNACCEPTABLE_CREDENTIAL);
    CU_ASSERT_PTR_EQUAL(same, out); /* nothing changed: the same set */
    kp_batch_builder_free(&bb);
    srv_scram_set_unref(same);
    srv_scram_set_unref(out);
    srv_scram_set_unref(base);
}

/* ---- the controller: op, records, replay ------------------------------------ */

static uint8_t *g_log;
static size_t g_log_len;
static int g_finished;

static int64_t fake_now(void *arg)
{
    (void)arg;
    return 1700000000000;
}

static int fake_new_id(void *arg, kp_uuid *id)
{
    (void)arg;
    memset(id->b, 0x11, 16);
    return 0;
}

static void fake_append(void *arg, const uint8_t *batch, size_t len, st_accept_cb accepted, st_append_cb done,
                        void *ctx)
{
    (void)arg;
    (void)accepted;
    uint8_t *n = realloc(g_log, g_log_len + len);
    CU_ASSERT_FATAL(n != NULL);
    memcpy(n + g_log_len, batch, len);
    g_log = n;
    g_log_len += len;
    done(ctx, 0, 0);
}

static void fake_publish(void *arg, srv_controller *c, srv_ctl_op *op, srv_meta *m)
{
    (void)arg;
    (void)m;
    srv_ctl_published(c, op);
}

static void fake_finish(void *arg, srv_ctl_op *op)
{
    (void)arg;
    (void)op;
    g_finished++;
}

static const srv_ctl_env fake_env = {NULL, fake_now, fake_new_id, fake_append, fake_publish, fake_finish};

static void run_op(srv_controller *c, srv_scram_change *ch, int n)
{
    srv_ctl_op op;
    memset(&op, 0, sizeof(op));
    op.kind = SRV_CTL_ALTER_SCRAM;
    op.scram = ch;
    op.nscram = n;
    int before = g_finished;
    srv_ctl_enqueue(c, &op);
    CU_ASSERT_EQUAL(g_finished, before + 1);
}

/* A batch of records another module writes ('A', 'Q'), to be skipped. */
static void append_foreign(void)
{
    kp_batch_builder bb;
    kp_batch_builder_init(&bb, 0, KP_CODEC_NONE);
    kp_batch_builder_add(&bb, 1, (kp_bytes){(const uint8_t *)"Afoo", 4}, (kp_bytes){(const uint8_t *)"x", 1},
                         NULL, 0);
    kp_batch_builder_add(&bb, 1, (kp_bytes){(const uint8_t *)"Qbar", 4}, KP_BYTES_NULL, NULL, 0);
    kp_writer w;
    kp_writer_init(&w, 128);
    CU_ASSERT_EQUAL_FATAL(kp_batch_builder_finish(&bb, &w), 0);
    kp_batch_builder_free(&bb);
    uint8_t *n = realloc(g_log, g_log_len + w.len);
    CU_ASSERT_FATAL(n != NULL);
    memcpy(n + g_log_len, w.buf, w.len);
    g_log = n;
    g_log_len += w.len;
    kp_writer_free(&w);
}

static void check_replay(const srv_controller *c)
{
    srv_meta *r = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(g_log, g_log_len, &r), 0);
    const srv_scram_set *want = srv_ctl_current(c)->scram, *got = r->scram;
    CU_ASSERT_EQUAL(srv_scram_set_nusers(got), srv_scram_set_nusers(want));
    for (int i = 0; i < srv_scram_set_nusers(want) && i < srv_scram_set_nusers(got); i++) {
        size_t wl, gl;
        int32_t wi[3], gi[3];
        const char *wu = srv_scram_set_user(want, i, &wl, wi);
        const char *gu = srv_scram_set_user(got, i, &gl, gi);
        CU_ASSERT(wl == gl && memcmp(wu, gu, wl) == 0);
        for (int m = SRV_SCRAM_SHA256; m <= SRV_SCRAM_SHA512; m++) {
            CU_ASSERT_EQUAL(wi[m], gi[m]);
            const srv_scram_cred *a = srv_scram_set_find(want, wu, wl, m),
                                 *b = srv_scram_set_find(got, gu, gl, m);
            CU_ASSERT((a == NULL) == (b == NULL));
            if (a && b)
                CU_ASSERT(a->salt_len == b->salt_len && memcmp(a->salt, b->salt, a->salt_len) == 0 &&
                          memcmp(a->stored_key, b->stored_key, 64) == 0 &&
                          memcmp(a->server_key, b->server_key, 64) == 0 && a->iterations == b->iterations);
        }
    }
    srv_meta_unref(r);
}

static void test_controller_records(void)
{
    free(g_log);
    g_log = NULL;
    g_log_len = 0;
    g_finished = 0;
    srv_controller *c = srv_ctl_new(&fake_env, 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    /* A user name with a NUL and a non-ASCII byte keeps every byte. */
    static const char odd[] = "o\0d\xc3\xa9";
    srv_scram_change ch[3] = {upsert("alice", SRV_SCRAM_SHA256, 4096, SP32),
                              upsert("bob", SRV_SCRAM_SHA512, 8192, SP32),
                              upsert("x", SRV_SCRAM_SHA256, 4096, SP32)};
    ch[2].user = (kp_str){odd, (int32_t)sizeof(odd) - 1};
    run_op(c, ch, 3);
    for (int i = 0; i < 3; i++)
        CU_ASSERT_EQUAL(ch[i].error, 0);
    append_foreign();
    const srv_meta *m = srv_ctl_current(c);
    CU_ASSERT_EQUAL(srv_scram_set_nusers(m->scram), 3);
    CU_ASSERT_PTR_NOT_NULL(srv_scram_set_find(m->scram, odd, sizeof(odd) - 1, SRV_SCRAM_SHA256));
    CU_ASSERT_PTR_NULL(srv_scram_set_find(m->scram, "o", 1, SRV_SCRAM_SHA256));
    check_replay(c);

    /* The credential authenticates as the salted password says. */
    const srv_scram_cred *a = srv_scram_set_find(m->scram, "alice", 5, SRV_SCRAM_SHA256);
    srv_scram_cred direct;
    CU_ASSERT_EQUAL(srv_scram_cred_from_salted(SRV_SCRAM_SHA256, (const uint8_t *)SP32, 32,
                                               (const uint8_t *)"salty", 5, 4096, &direct),
                    0);
    CU_ASSERT(a && memcmp(a->stored_key, direct.stored_key, 32) == 0);

    /* A topic change keeps the credentials in the next version. */
    srv_topic_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.name = kp_str_c("t");
    sp.nparts = 1;
    sp.replication = -1;
    srv_ctl_op top;
    memset(&top, 0, sizeof(top));
    top.kind = SRV_CTL_CREATE;
    top.specs = &sp;
    top.nspecs = 1;
    srv_ctl_enqueue(c, &top);
    CU_ASSERT_EQUAL(sp.error, 0);
    CU_ASSERT_EQUAL(srv_scram_set_nusers(srv_ctl_current(c)->scram), 3);

    /* Deletion: a tombstone; replay drops the user. An upsert replaces. */
    srv_scram_change d[2] = {deletion("alice", SRV_SCRAM_SHA256),
                             upsert("bob", SRV_SCRAM_SHA512, 16384, SP32)};
    run_op(c, d, 2);
    CU_ASSERT_EQUAL(d[0].error, 0);
    CU_ASSERT_EQUAL(d[1].error, 0);
    m = srv_ctl_current(c);
    CU_ASSERT_EQUAL(srv_scram_set_nusers(m->scram), 2);
    CU_ASSERT_PTR_NULL(srv_scram_set_find(m->scram, "alice", 5, SRV_SCRAM_SHA256));
    CU_ASSERT_EQUAL(srv_scram_set_find(m->scram, "bob", 3, SRV_SCRAM_SHA512)->iterations, 16384);
    check_replay(c);
    srv_meta *r = NULL;
    CU_ASSERT_EQUAL_FATAL(srv_ctl_replay(g_log, g_log_len, &r), 0);
    CU_ASSERT_EQUAL(r->ntopics, 1);
    srv_meta_unref(r);

    /* A refused request appends nothing. */
    size_t len = g_log_len;
    srv_scram_change bad = deletion("alice", SRV_SCRAM_SHA256);
    run_op(c, &bad, 1);
    CU_ASSERT_EQUAL(bad.error, KP_ERR_RESOURCE_NOT_FOUND);
    CU_ASSERT_EQUAL(g_log_len, len);
    srv_ctl_free(c);
    free(g_log);
    g_log = NULL;
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("scram", NULL, NULL);
    CU_add_test(s, "rfc7677 sha-256 vector", test_rfc7677_vector);
    CU_add_test(s, "rfc7677 wrong proof", test_rfc7677_wrong_proof);
    CU_add_test(s, "sha-512 exchange", test_sha512_exchange);
    CU_add_test(s, "malformed client-first", test_malformed_first);
    CU_add_test(s, "malformed client-final", test_malformed_final);
    CU_add_test(s, "alter rules", test_alter_rules);
    CU_add_test(s, "controller records", test_controller_records);
}

const struct kb_test_program kb_test_program = {.register_suites = register_suites};
