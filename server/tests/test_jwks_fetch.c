/*
 * test_jwks_fetch.c — unit tests of server/jwks_fetch.c: the JWKS endpoint
 * URLs it accepts and refuses, the retry backoff, and a file:// read.
 *
 * Owns one temp file per run. Must not: use the network (the https path is
 * covered by compat-tests/py/test_oauth_jwks.py against a real server).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jwks_fetch.h"
#include "kb_test.h"

static void url_ok(const char *url, int scheme, const char *host, const char *port, const char *path)
{
    srv_jwks_url u;
    char err[400] = "";
    CU_ASSERT_EQUAL_FATAL(srv_jwks_url_parse(url, &u, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(u.scheme, scheme);
    CU_ASSERT_STRING_EQUAL(u.path, path);
    if (scheme == SRV_JWKS_HTTPS) {
        CU_ASSERT_STRING_EQUAL(u.host, host);
        CU_ASSERT_STRING_EQUAL(u.port, port);
    }
}

static void url_bad(const char *url, const char *needle)
{
    srv_jwks_url u;
    char err[400] = "";
    CU_ASSERT_EQUAL(srv_jwks_url_parse(url, &u, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, needle));
}

static void test_urls(void)
{
    url_ok("https://idp.example/.well-known/jwks.json", SRV_JWKS_HTTPS, "idp.example", "443",
           "/.well-known/jwks.json");
    url_ok("https://idp.example", SRV_JWKS_HTTPS, "idp.example", "443", "/");
    url_ok("https://idp.example:8443/k?tenant=1", SRV_JWKS_HTTPS, "idp.example", "8443", "/k?tenant=1");
    url_ok("https://idp.example?x=1", SRV_JWKS_HTTPS, "idp.example", "443", "/?x=1");
    url_ok("https://[::1]:9443/jwks", SRV_JWKS_HTTPS, "::1", "9443", "/jwks");
    url_ok("HTTPS://127.0.0.1/jwks", SRV_JWKS_HTTPS, "127.0.0.1", "443", "/jwks");
    url_ok("file:///etc/jwks.json", SRV_JWKS_FILE, NULL, NULL, "/etc/jwks.json");
    url_ok("file:/etc/jwks.json", SRV_JWKS_FILE, NULL, NULL, "/etc/jwks.json");
    url_ok("file://localhost/etc/jwks.json", SRV_JWKS_FILE, NULL, NULL, "/etc/jwks.json");
    url_bad("http://idp.example/jwks", "only https:// and file://");
    url_bad("ftp://idp.example/jwks", "only https:// and file://");
    url_bad("file://otherhost/jwks", "remote host");
    url_bad("https:///jwks", "no host");
    url_bad("https://idp.example:0/jwks", "bad port");
    url_bad("https://idp.example:65536/jwks", "bad port");
    url_bad("https://idp.example:44x/jwks", "bad port");
    url_bad("https://user@idp.example/jwks", "user info");
    url_bad("https://idp.example/jwks#frag", "fragments");
    url_bad("https://[::1/jwks", "IPv6");
    url_bad("https://idp.example/a b", "control or space");
}

static void test_backoff(void)
{
    /* Kafka's defaults: 100 ms doubling, at most 10 s. */
    CU_ASSERT_EQUAL(srv_jwks_backoff_ms(0, 100, 10000), 100);
    CU_ASSERT_EQUAL(srv_jwks_backoff_ms(1, 100, 10000), 200);
    CU_ASSERT_EQUAL(srv_jwks_backoff_ms(6, 100, 10000), 6400);
    CU_ASSERT_EQUAL(srv_jwks_backoff_ms(7, 100, 10000), 10000);
    CU_ASSERT_EQUAL(srv_jwks_backoff_ms(1000, 100, 10000), 10000); /* no overflow */
    CU_ASSERT_EQUAL(srv_jwks_backoff_ms(0, 500, 200), 200);
}

static void test_file_fetch(void)
{
    char path[] = "/tmp/kb-jwks-test-XXXXXX";
    int fd = mkstemp(path);
    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL(write(fd, "{\"keys\":[]}", 11), 11);
    close(fd);
    char url[64];
    snprintf(url, sizeof(url), "file://%s", path);
    srv_jwks_url u;
    char err[400] = "", *body = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL_FATAL(srv_jwks_url_parse(url, &u, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(srv_jwks_fetch(&u, NULL, 1000, &body, &len, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(len, 11);
    CU_ASSERT(body && memcmp(body, "{\"keys\":[]}", 11) == 0);
    free(body);
    unlink(path);
    CU_ASSERT_EQUAL(srv_jwks_fetch(&u, NULL, 1000, &body, &len, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open"));
}

static void register_suites(void)
{
    CU_pSuite s = CU_add_suite("jwks_fetch", NULL, NULL);
    CU_add_test(s, "urls", test_urls);
    CU_add_test(s, "backoff", test_backoff);
    CU_add_test(s, "file_fetch", test_file_fetch);
}

const struct kb_test_program kb_test_program = {register_suites, NULL, NULL};
