/*
 * test_tls_reload_seq.c — unit test of the ordered reload of a listener's
 * TLS context (srv_tls_slot_reload_seq, server/tls_reload.c): the load of
 * an older dynamic config change that finishes after a newer one's does
 * not replace it. Key stores are made in a temp dir with OpenSSL's API.
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
static char path_a[128], path_b[128];

/* A PEM key store: a key and a self-signed certificate for CN=broker, the
 * identity every store here shares (a reload checks it stays the same). */
static int write_keystore(const char *path)
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
        X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)"broker", -1, -1, 0);
        X509_set_issuer_name(x, nm);
        ok = X509_sign(x, key, EVP_sha256()) > 0;
    }
    FILE *f = ok ? fopen(path, "w") : NULL;
    ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) && PEM_write_X509(f, x);
    if (f)
        fclose(f);
    X509_free(x);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

static int setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/kb-tls-seq-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path_a, sizeof(path_a), "%s/a.pem", dir);
    snprintf(path_b, sizeof(path_b), "%s/b.pem", dir);
    return write_keystore(path_a) || write_keystore(path_b);
}

static void teardown(void)
{
    unlink(path_a);
    unlink(path_b);
    rmdir(dir);
}

static void test_older_change_does_not_win(void)
{
    srv_config *c = calloc(1, sizeof(*c));
    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    char err[512], props[512];
    snprintf(props, sizeof(props),
             "listeners=SSL://127.0.0.1:0\nlistener.security.protocol.map=SSL:SSL\n"
             "ssl.keystore.type=PEM\nssl.keystore.location=%s\n",
             path_a);
    srv_config_init(c, NULL);
    CU_ASSERT_EQUAL_FATAL(srv_config_load_string(c, props, strlen(props), "test", err, sizeof(err)), 0);
    CU_ASSERT_EQUAL_FATAL(srv_config_finish(c, err, sizeof(err)), 0);
    srv_tls_slot *sl = srv_tls_slot_new(c, "SSL", 1, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(sl);
    SSL_CTX *first = srv_tls_slot_ctx(sl, 0);

    /* The change of metadata version 5 is loaded... */
    CU_ASSERT_EQUAL(srv_tls_slot_reload_seq(sl, path_b, NULL, 5, err, sizeof(err)), 0);
    SSL_CTX *newer = srv_tls_slot_ctx(sl, 0);
    CU_ASSERT_PTR_NOT_EQUAL(newer, first);
    /* ...then version 3's load finishes: superseded, nothing replaced. */
    CU_ASSERT_EQUAL(srv_tls_slot_reload_seq(sl, path_a, NULL, 3, err, sizeof(err)), 1);
    CU_ASSERT_PTR_EQUAL(srv_tls_slot_ctx(sl, 0), newer);
    /* The same version again, or a later one, applies. */
    CU_ASSERT_EQUAL(srv_tls_slot_reload_seq(sl, path_a, NULL, 5, err, sizeof(err)), 0);
    SSL_CTX *again = srv_tls_slot_ctx(sl, 0);
    CU_ASSERT_PTR_NOT_EQUAL(again, newer);
    /* A store that cannot be used is refused whatever its order. */
    CU_ASSERT_EQUAL(srv_tls_slot_reload_seq(sl, "/nonexistent/ks.pem", NULL, 9, err, sizeof(err)), -1);
    CU_ASSERT_PTR_EQUAL(srv_tls_slot_ctx(sl, 0), again);
    CU_ASSERT_EQUAL(srv_tls_slot_reload_seq(sl, path_b, NULL, 6, err, sizeof(err)), 0);
    srv_tls_slot_free(sl);
    free(c);
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("tls_reload_seq", NULL, NULL);
    CU_add_test(s, "an older change's load does not replace a newer one", test_older_change_does_not_win);
}

const struct kb_test_program kb_test_program = {
    .register_suites = register_suites, .setup = setup, .teardown = teardown};
