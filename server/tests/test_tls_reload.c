/*
 * test_tls_reload.c — unit tests of server/tls_reload.c: a listener's
 * published TLS context, its replacement from new key store files, the
 * checks a new key store must pass, and when a replaced context is freed.
 * Key stores are made in a temp dir with OpenSSL's API (self-signed).
 *
 * Owns its temp dir (removed at the end). Must not: start shards or open
 * sockets.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "kb_test.h"
#include "tls.h"

static char dir[64];

/* A PEM key store (key, then a self-signed certificate for cn) at path. */
static int write_keystore(const char *path, const char *cn, const char *san)
{
    EVP_PKEY *key = EVP_RSA_gen(2048);
    X509 *x = X509_new();
    int ok = key && x;
    if (ok) {
        ASN1_INTEGER_set(X509_get_serialNumber(x), (long)rand());
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 86400);
        X509_set_pubkey(x, key);
        X509_NAME *nm = X509_get_subject_name(x);
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
        X509_set_issuer_name(x, nm);
        X509V3_CTX v3;
        X509V3_set_ctx_nodb(&v3);
        X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
        ok = ext && X509_add_ext(x, ext, -1) && X509_sign(x, key, EVP_sha256());
        X509_EXTENSION_free(ext);
    }
    FILE *f = ok ? fopen(path, "w") : NULL;
    ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) && PEM_write_X509(f, x);
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

static char *path_of(const char *name)
{
    static char p[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
    return p[i];
}

static srv_config *config_for(const char *keystore)
{
    srv_config *c = calloc(1, sizeof(*c));
    char err[256], props[512];
    snprintf(props, sizeof(props),
             "listeners=SSL://127.0.0.1:0\nlistener.security.protocol.map=SSL:SSL\n"
             "ssl.keystore.type=PEM\nssl.keystore.location=%s\n",
             keystore);
    srv_config_init(c, NULL);
    CU_ASSERT_EQUAL_FATAL(srv_config_load_string(c, props, strlen(props), "test", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(srv_config_finish(c, err, sizeof(err)), 0);
    return c;
}

static int setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kb-tls-reload-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    return write_keystore(path_of("a.pem"), "broker", "DNS:localhost") ||
           write_keystore(path_of("b.pem"), "broker", "DNS:localhost") ||
           write_keystore(path_of("other.pem"), "someone-else", "DNS:localhost") ||
           write_keystore(path_of("othersan.pem"), "broker", "DNS:elsewhere");
}

static void teardown(void)
{
    const char *names[] = {"a.pem", "b.pem", "other.pem", "othersan.pem", "live.pem", "garbage.pem"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        unlink(path_of(names[i]));
    rmdir(dir);
}

static X509 *leaf(SSL_CTX *c)
{
    return SSL_CTX_get0_certificate(c);
}

/* Each shard keeps the context it took until a newer one is published;
 * after a reload every shard moves, and the old one stays valid for a
 * holder of its own reference (an open connection). */
static void test_publish_and_move(void)
{
    srv_config *c = config_for(path_of("a.pem"));
    char err[512];
    srv_tls_slot *sl = srv_tls_slot_new(c, "SSL", 2, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(sl);
    SSL_CTX *s0 = srv_tls_slot_ctx(sl, 0), *s1 = srv_tls_slot_ctx(sl, 1);
    CU_ASSERT_PTR_EQUAL(s0, s1);
    CU_ASSERT_PTR_EQUAL(srv_tls_slot_ctx(sl, 0), s0);
    SSL *conn = SSL_new(s0); /* an open connection's own reference */
    X509 *old_leaf = leaf(s0);
    CU_ASSERT_EQUAL(srv_tls_slot_reload(sl, path_of("b.pem"), NULL, 0, err, sizeof(err)), 0);
    SSL_CTX *n0 = srv_tls_slot_ctx(sl, 0);
    CU_ASSERT_PTR_NOT_EQUAL(n0, s0);
    CU_ASSERT_NOT_EQUAL(X509_cmp(leaf(n0), old_leaf), 0);
    CU_ASSERT_PTR_EQUAL(srv_tls_slot_ctx(sl, 1), n0);
    /* The connection still has its context and certificate. */
    CU_ASSERT_PTR_EQUAL(SSL_get_SSL_CTX(conn), s0);
    CU_ASSERT_EQUAL(X509_cmp(SSL_get_certificate(conn), old_leaf), 0);
    SSL_free(conn);
    /* validate_only: accepted, nothing published. */
    CU_ASSERT_EQUAL(srv_tls_slot_reload(sl, path_of("a.pem"), NULL, 1, err, sizeof(err)), 0);
    CU_ASSERT_PTR_EQUAL(srv_tls_slot_ctx(sl, 0), n0);
    srv_tls_slot_free(sl);
    free(c);
}

/* What Kafka refuses for a dynamic key store: a file it cannot load,
 * another subject DN, another SubjectAltName. The old context stays. */
static void test_refusals(void)
{
    srv_config *c = config_for(path_of("a.pem"));
    char err[512];
    srv_tls_slot *sl = srv_tls_slot_new(c, "SSL", 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(sl);
    SSL_CTX *cur = srv_tls_slot_ctx(sl, 0);
    FILE *f = fopen(path_of("garbage.pem"), "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs("-----BEGIN CERTIFICATE-----\nnot base64\n", f);
    fclose(f);
    CU_ASSERT_EQUAL(srv_tls_slot_reload(sl, path_of("garbage.pem"), NULL, 0, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(srv_tls_slot_reload(sl, path_of("missing.pem"), NULL, 0, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(srv_tls_slot_reload(sl, path_of("other.pem"), NULL, 0, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "Keystore DistinguishedName does not match: existing={DN=CN=broker}, "
                                       "new={DN=CN=someone-else}"));
    CU_ASSERT_EQUAL(srv_tls_slot_reload(sl, path_of("othersan.pem"), NULL, 0, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "SubjectAltName"));
    CU_ASSERT_PTR_EQUAL(srv_tls_slot_ctx(sl, 0), cur);
    srv_tls_slot_free(sl);
    free(c);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[8192];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    return ok ? 0 : -1;
}

/* The watcher's check: unchanged files do nothing, a changed unusable file
 * is refused once (not again until it changes), a changed good file is
 * published. */
static void test_check_files(void)
{
    CU_ASSERT_EQUAL_FATAL(copy_file(path_of("a.pem"), path_of("live.pem")), 0);
    srv_config *c = config_for(path_of("live.pem"));
    char err[512];
    srv_tls_slot *sl = srv_tls_slot_new(c, "SSL", 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(sl);
    SSL_CTX *first = srv_tls_slot_ctx(sl, 0);
    CU_ASSERT_EQUAL(srv_tls_slot_check(sl), 1);
    CU_ASSERT_EQUAL_FATAL(copy_file(path_of("other.pem"), path_of("live.pem")), 0);
    CU_ASSERT_EQUAL(srv_tls_slot_check(sl), -1);
    CU_ASSERT_EQUAL(srv_tls_slot_check(sl), 1); /* same bad content: not tried again */
    CU_ASSERT_PTR_EQUAL(srv_tls_slot_ctx(sl, 0), first);
    CU_ASSERT_EQUAL_FATAL(copy_file(path_of("b.pem"), path_of("live.pem")), 0);
    CU_ASSERT_EQUAL(srv_tls_slot_check(sl), 0);
    SSL_CTX *second = srv_tls_slot_ctx(sl, 0);
    CU_ASSERT_PTR_NOT_EQUAL(second, first);
    CU_ASSERT_EQUAL(srv_tls_slot_check(sl), 1);
    srv_tls_slot_free(sl);
    free(c);
}

/* The DN as Java's X500Principal.getName() prints it (checked with Java 17
 * on a certificate with this subject made by openssl req): keywords for
 * nine types only, OID=#DER for the others, Java's escaping, the values of
 * a multi-valued RDN in DER order. */
static void test_java_dn(void)
{
    X509_NAME *nm = X509_NAME_new();
    struct {
        const char *type, *value;
        int same_rdn;
    } avas[] = {
        {"C", "DE", 0},           {"ST", "Berlin", 0},
        {"L", "Berlin", 0},       {"O", "Ex, Inc.", 0},
        {"OU", "Ops", 0},         {"OU", "Dev", 1},
        {"CN", "cl\"ient #1", 0}, {"emailAddress", "a@b.c", 0},
        {"street", "Main St", 0}, {"DC", "example", 0},
        {"UID", "u1", 0},         {"serialNumber", "42", 0},
    };
    for (size_t i = 0; i < sizeof(avas) / sizeof(avas[0]); i++)
        CU_ASSERT_FATAL(X509_NAME_add_entry_by_txt(nm, avas[i].type, MBSTRING_ASC,
                                                   (const unsigned char *)avas[i].value, -1, -1,
                                                   avas[i].same_rdn ? -1 : 0));
    char out[512];
    const char *want = "2.5.4.5=#13023432,UID=u1,DC=example,STREET=Main St,"
                       "1.2.840.113549.1.9.1=#16056140622e63,CN=cl\\\"ient \\#1,OU=Dev+OU=Ops,O=Ex\\, Inc.,"
                       "L=Berlin,ST=Berlin,C=DE";
    int n = srv_tls_dn(nm, out, sizeof(out));
    CU_ASSERT_EQUAL(n, (int)strlen(want));
    if (strcmp(out, want) != 0)
        fprintf(stderr, "\n got  %s\n want %s\n", out, want);
    CU_ASSERT_STRING_EQUAL(out, want);
    CU_ASSERT_EQUAL(srv_tls_dn(nm, out, 20), -1);
    X509_NAME_free(nm);
    /* Leading and trailing blanks are escaped one by one. */
    nm = X509_NAME_new();
    X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"  x ", -1, -1, 0);
    CU_ASSERT(srv_tls_dn(nm, out, sizeof(out)) > 0);
    CU_ASSERT_STRING_EQUAL(out, "CN=\\ \\ x\\ ");
    X509_NAME_free(nm);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("tls_reload", NULL, NULL);
    CU_add_test(s, "java_dn", test_java_dn);
    CU_add_test(s, "publish_and_move", test_publish_and_move);
    CU_add_test(s, "refusals", test_refusals);
    CU_add_test(s, "check_files", test_check_files);
}

const struct kb_test_program kb_test_program = {register_suites, setup, teardown};
