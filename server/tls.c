/*
 * tls.c — OpenSSL contexts for SSL and SASL_SSL listeners.
 *
 * Owns: turning ssl.keystore.*, ssl.truststore.*, ssl.enabled.protocols,
 * ssl.cipher.suites, ssl.client.auth and ssl.principal.mapping.rules into an
 * SSL_CTX, with Kafka's meaning. Must not: run on a shard loop (it reads key
 * files: at start, or on tls_reload.c's threads) or touch sockets.
 */
#include "tls.h"

#include "principal_map.h"
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int o = vsnprintf(err, n, fmt, ap);
    va_end(ap);
    unsigned long e = ERR_get_error();
    if (e && o >= 0 && (size_t)o < n) {
        char buf[200];
        ERR_error_string_n(e, buf, sizeof(buf));
        snprintf(err + o, n - (size_t)o, " (%s)", buf);
    }
    ERR_clear_error();
    return -1;
}

static const char *get(const srv_config *cfg, const char *l, const char *key)
{
    return srv_config_sec(cfg, l, key);
}

/* PKCS#12 file: the key, its certificate and the chain. */
static int load_pkcs12(SSL_CTX *ctx, const char *path, const char *pass, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, n, "cannot open ssl.keystore.location %s", path);
    PKCS12 *p12 = d2i_PKCS12_fp(f, NULL);
    fclose(f);
    if (!p12)
        return fail(err, n, "ssl.keystore.location %s is not a PKCS12 file", path);
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *ca = NULL;
    int ok = PKCS12_parse(p12, pass ? pass : "", &key, &cert, &ca);
    PKCS12_free(p12);
    if (!ok || !key || !cert) {
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(ca, X509_free);
        return fail(err, n,
                    "cannot read the key and certificate of PKCS12 keystore %s (wrong "
                    "ssl.keystore.password?)",
                    path);
    }
    ok = SSL_CTX_use_certificate(ctx, cert) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    for (int i = 0; ok && ca && i < sk_X509_num(ca); i++) {
        X509 *c = sk_X509_value(ca, i);
        ok = SSL_CTX_add1_chain_cert(ctx, c) == 1;
    }
    EVP_PKEY_free(key);
    X509_free(cert);
    sk_X509_pop_free(ca, X509_free);
    return ok ? 0 : fail(err, n, "cannot use the key of PKCS12 keystore %s", path);
}

/* PEM text: certificate chain then key, from a file or inline values. */
static int load_pem(SSL_CTX *ctx, const char *chain, const char *key, const char *keypass, char *err,
                    size_t n)
{
    BIO *b = BIO_new_mem_buf(chain, -1);
    X509 *leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
    if (!leaf) {
        BIO_free(b);
        return fail(err, n, "no PEM certificate in the keystore");
    }
    int ok = SSL_CTX_use_certificate(ctx, leaf) == 1;
    X509_free(leaf);
    X509 *c;
    while (ok && (c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
        ok = SSL_CTX_add0_chain_cert(ctx, c) == 1;
    ERR_clear_error(); /* the end of the chain reads as an error */
    BIO_free(b);
    b = BIO_new_mem_buf(key, -1);
    EVP_PKEY *pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, (void *)(keypass ? keypass : "")) : NULL;
    BIO_free(b);
    if (!pk)
        return fail(err, n,
                    "no usable PEM private key in the keystore (encrypted key: set ssl.key.password)");
    ok = ok && SSL_CTX_use_PrivateKey(ctx, pk) == 1;
    EVP_PKEY_free(pk);
    return ok ? 0 : fail(err, n, "the PEM key does not match the certificate");
}

/* Inline PEM values often arrive on one line (a properties value, an
 * environment variable): Kafka's parser ignores the whitespace inside a
 * block, OpenSSL's needs the line structure. Rebuilds each BEGIN/END block
 * with 64-column base64 lines. NULL on allocation failure or when a block
 * is not closed. */
static char *pem_relines(const char *in)
{
    size_t len = strlen(in);
    char *out = malloc(len * 2 + 64), *o = out;
    if (!out)
        return NULL;
    const char *p = in;
    for (;;) {
        const char *b = strstr(p, "-----BEGIN ");
        if (!b)
            break;
        const char *bend = strstr(b + 11, "-----");
        const char *e = bend ? strstr(bend + 5, "-----END ") : NULL;
        const char *eend = e ? strstr(e + 9, "-----") : NULL;
        if (!eend) {
            free(out);
            return NULL;
        }
        size_t hl = (size_t)(bend + 5 - b);
        memcpy(o, b, hl);
        o += hl;
        *o++ = '\n';
        int col = 0;
        for (const char *q = bend + 5; q < e; q++) {
            if (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
                continue;
            *o++ = *q;
            if (++col == 64) {
                *o++ = '\n';
                col = 0;
            }
        }
        if (col)
            *o++ = '\n';
        size_t el = (size_t)(eend + 5 - e);
        memcpy(o, e, el);
        o += el;
        *o++ = '\n';
        p = eend + 5;
    }
    *o = '\0';
    return out;
}

static char *read_file(const char *path, char *err, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(err, n, "cannot open %s", path);
        return NULL;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                fail(err, n, "out of memory reading %s", path);
                return NULL;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, 4096, f);
        len += r;
        if (r < 4096)
            break;
    }
    fclose(f);
    buf[len] = '\0';
    return buf;
}

static int load_truststore(SSL_CTX *ctx, const srv_config *cfg, const char *l, const char *ts, char *err,
                           size_t n)
{
    const char *loc = ts ? ts : get(cfg, l, "ssl.truststore.location"),
               *type = get(cfg, l, "ssl.truststore.type");
    const char *inl = ts ? NULL : get(cfg, l, "ssl.truststore.certificates");
    X509_STORE *st = SSL_CTX_get_cert_store(ctx);
    if (inl || (loc && type && strcasecmp(type, "PEM") == 0)) {
        char *text = inl ? pem_relines(inl) : read_file(loc, err, n);
        if (!text)
            return inl ? fail(err, n, "ssl.truststore.certificates is not PEM") : -1;
        BIO *b = BIO_new_mem_buf(text, -1);
        int count = 0;
        X509 *c;
        while (b && (c = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL) {
            X509_STORE_add_cert(st, c);
            X509_free(c);
            count++;
        }
        ERR_clear_error();
        BIO_free(b);
        free(text);
        if (!count)
            return fail(err, n, "no PEM certificate in the truststore");
        return 0;
    }
    if (loc) { /* PKCS12: its certificates are the trusted ones */
        FILE *f = fopen(loc, "rb");
        if (!f)
            return fail(err, n, "cannot open ssl.truststore.location %s", loc);
        PKCS12 *p12 = d2i_PKCS12_fp(f, NULL);
        fclose(f);
        EVP_PKEY *key = NULL;
        X509 *cert = NULL;
        STACK_OF(X509) *ca = NULL;
        const char *pass = get(cfg, l, "ssl.truststore.password");
        if (!p12 || !PKCS12_parse(p12, pass ? pass : "", &key, &cert, &ca)) {
            PKCS12_free(p12);
            return fail(err, n, "cannot read PKCS12 truststore %s (wrong ssl.truststore.password?)", loc);
        }
        PKCS12_free(p12);
        int count = 0;
        if (cert && X509_STORE_add_cert(st, cert))
            count++;
        for (int i = 0; ca && i < sk_X509_num(ca); i++)
            count += X509_STORE_add_cert(st, sk_X509_value(ca, i)) == 1;
        EVP_PKEY_free(key);
        X509_free(cert);
        sk_X509_pop_free(ca, X509_free);
        if (!count)
            return fail(err, n, "no certificate in PKCS12 truststore %s", loc);
    }
    return 0;
}

/* The listener's parsed ssl.principal.mapping.rules ride on its SSL_CTX, so
 * a reloaded context carries them and a connection finds them from its SSL. */
static int pmap_index = -1;
static CRYPTO_ONCE pmap_once = CRYPTO_ONCE_STATIC_INIT;

static void pmap_free_cb(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    srv_pmap_free(ptr);
}

static void pmap_index_init(void)
{
    pmap_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, pmap_free_cb);
}

SSL_CTX *srv_tls_ctx_new(const srv_config *cfg, const char *l, char *err, size_t n)
{
    return srv_tls_ctx_new_at(cfg, l, NULL, NULL, err, n);
}

SSL_CTX *srv_tls_ctx_new_at(const srv_config *cfg, const char *l, const char *ks, const char *ts, char *err,
                            size_t n)
{
    if (!CRYPTO_THREAD_run_once(&pmap_once, pmap_index_init) || pmap_index < 0) {
        fail(err, n, "cannot register the principal mapper with OpenSSL");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        fail(err, n, "cannot create a TLS context");
        return NULL;
    }
    const char *rules = get(cfg, l, "ssl.principal.mapping.rules");
    srv_pmap *pm = srv_pmap_parse(rules ? rules : "DEFAULT", rules ? strlen(rules) : 7, err, n);
    if (!pm || !SSL_CTX_set_ex_data(ctx, pmap_index, pm)) {
        srv_pmap_free(pm);
        if (!pm) { /* err holds Kafka's message */
            SSL_CTX_free(ctx);
            return NULL;
        }
        fail(err, n, "cannot attach ssl.principal.mapping.rules to the TLS context");
        goto bad;
    }
    /* ssl.enabled.protocols, Kafka's default: TLSv1.2,TLSv1.3. */
    const char *protos = get(cfg, l, "ssl.enabled.protocols");
    if (!protos)
        protos = "TLSv1.2,TLSv1.3";
    int v12 = strstr(protos, "TLSv1.2") != NULL, v13 = strstr(protos, "TLSv1.3") != NULL;
    SSL_CTX_set_min_proto_version(ctx, v12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, v13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);

    const char *ciphers = get(cfg, l, "ssl.cipher.suites");
    if (ciphers && *ciphers) {
        /* Kafka takes one list of names; OpenSSL keeps TLS 1.3 suites
         * apart. Names starting TLS_ go to the 1.3 list. Java's IANA names
         * for TLS 1.2 suites are not OpenSSL's: the 1.2 list is taken as
         * OpenSSL names. */
        char c13[SRV_CONFIG_VALUE_MAX] = "", c12[SRV_CONFIG_VALUE_MAX] = "";
        const char *p = ciphers;
        while (*p) {
            const char *e = strchr(p, ',');
            size_t len = e ? (size_t)(e - p) : strlen(p);
            while (len && (*p == ' '))
                p++, len--;
            while (len && p[len - 1] == ' ')
                len--;
            char *dst = len > 4 && strncmp(p, "TLS_", 4) == 0 ? c13 : c12;
            size_t dl = strlen(dst);
            if (len && dl + len + 2 < SRV_CONFIG_VALUE_MAX)
                snprintf(dst + dl, SRV_CONFIG_VALUE_MAX - dl, "%s%.*s", dl ? ":" : "", (int)len, p);
            p += len;
            while (*p == ',' || *p == ' ')
                p++;
        }
        if ((c13[0] && SSL_CTX_set_ciphersuites(ctx, c13) != 1) ||
            (c12[0] && SSL_CTX_set_cipher_list(ctx, c12) != 1)) {
            fail(err, n, "listener %s: no usable cipher in ssl.cipher.suites", l);
            goto bad;
        }
    }

    const char *type = get(cfg, l, "ssl.keystore.type");
    const char *loc = ks ? ks : get(cfg, l, "ssl.keystore.location");
    const char *kpass = get(cfg, l, "ssl.key.password");
    char e2[300];
    if (type && strcasecmp(type, "PKCS12") == 0) {
        if (load_pkcs12(ctx, loc, get(cfg, l, "ssl.keystore.password"), e2, sizeof(e2)) != 0) {
            fail(err, n, "listener %s: %s", l, e2);
            goto bad;
        }
    } else {
        const char *chain = ks ? NULL : get(cfg, l, "ssl.keystore.certificate.chain"),
                   *key = get(cfg, l, "ssl.keystore.key");
        char *text = NULL, *kbuf = NULL;
        if (chain) {
            if (!key) {
                fail(err, n, "listener %s: ssl.keystore.certificate.chain is set but ssl.keystore.key is not",
                     l);
                goto bad;
            }
            text = pem_relines(chain);
            kbuf = pem_relines(key);
            if (!text || !kbuf) {
                free(text);
                free(kbuf);
                fail(err, n, "listener %s: ssl.keystore.certificate.chain or ssl.keystore.key is not PEM", l);
                goto bad;
            }
            chain = text;
            key = kbuf;
        } else {
            text = read_file(loc, e2, sizeof(e2));
            if (!text) {
                fail(err, n, "listener %s: %s", l, e2);
                goto bad;
            }
            chain = key = text;
        }
        int rc = load_pem(ctx, chain, key ? key : "", kpass, e2, sizeof(e2));
        free(text);
        free(kbuf);
        if (rc != 0) {
            fail(err, n, "listener %s: %s", l, e2);
            goto bad;
        }
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        fail(err, n, "listener %s: the private key does not match the certificate", l);
        goto bad;
    }
    if (load_truststore(ctx, cfg, l, ts, e2, sizeof(e2)) != 0) {
        fail(err, n, "listener %s: %s", l, e2);
        goto bad;
    }
    const char *ca = get(cfg, l, "ssl.client.auth");
    int mode = SSL_VERIFY_NONE;
    if (ca && strcmp(ca, "required") == 0)
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    else if (ca && strcmp(ca, "requested") == 0)
        mode = SSL_VERIFY_PEER;
    SSL_CTX_set_verify(ctx, mode, NULL);
    /* Session ids are scoped to the listener, as resumption needs. */
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)l, (unsigned)strnlen(l, 32));
    return ctx;
bad:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- the subject DN as Java spells it -------------------------------------- */

typedef struct dnbuf {
    char *p;
    size_t cap, len;
    int overflow;
} dnbuf;

static void put(dnbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        b->overflow = 1;
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* The attribute types X500Principal.getName() (RFC 2253) prints by keyword;
 * every other one is its OID with the value's DER encoding in hex. */
static const char *java_keyword(int nid)
{
    switch (nid) {
    case NID_commonName:
        return "CN";
    case NID_countryName:
        return "C";
    case NID_localityName:
        return "L";
    case NID_stateOrProvinceName:
        return "ST";
    case NID_organizationName:
        return "O";
    case NID_organizationalUnitName:
        return "OU";
    case NID_streetAddress:
        return "STREET";
    case NID_domainComponent:
        return "DC";
    case NID_userId:
        return "UID";
    default:
        return NULL;
    }
}

/* One attribute: keyword=escaped value, or OID=#hex. */
static void put_ava(dnbuf *b, const X509_NAME_ENTRY *e)
{
    const ASN1_OBJECT *obj = X509_NAME_ENTRY_get_object(e);
    const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
    const char *kw = java_keyword(OBJ_obj2nid(obj));
    unsigned char *u = NULL;
    int ul = kw ? ASN1_STRING_to_UTF8(&u, v) : -1;
    if (kw && ul >= 0) {
        put(b, kw, strlen(kw));
        put(b, "=", 1);
        /* Java's AVA.toRFC2253String: these characters take a backslash
         * anywhere, NUL becomes \00, leading and trailing blanks are
         * escaped one by one. */
        int lead = 0, trail = ul - 1;
        while (lead < ul && (u[lead] == ' ' || u[lead] == '\r'))
            lead++;
        while (trail >= 0 && (u[trail] == ' ' || u[trail] == '\r'))
            trail--;
        for (int i = 0; i < ul; i++) {
            char c = (char)u[i];
            if (c == '\0') {
                put(b, "\\00", 3);
                continue;
            }
            if (strchr(",=+<>#;\"\\", c) || i < lead || i > trail)
                put(b, "\\", 1);
            put(b, &c, 1);
        }
        OPENSSL_free(u);
        return;
    }
    char oid[128];
    int ol = OBJ_obj2txt(oid, sizeof(oid), obj, 1);
    put(b, oid, ol > 0 ? (size_t)ol : 0);
    put(b, "=#", 2);
    ASN1_TYPE *t = ASN1_TYPE_new();
    unsigned char *der = NULL;
    int dl = t && ASN1_TYPE_set1(t, ASN1_STRING_type(v), v) ? i2d_ASN1_TYPE(t, &der) : -1;
    for (int i = 0; i < dl; i++) {
        char hx[3];
        snprintf(hx, sizeof(hx), "%02x", der[i]);
        put(b, hx, 2);
    }
    OPENSSL_free(der);
    ASN1_TYPE_free(t);
}

/* DER order of the values of one multi-valued RDN (the order of a SET OF),
 * in which Java prints them. */
static int der_cmp(const X509_NAME_ENTRY *a, const X509_NAME_ENTRY *b)
{
    unsigned char *x = NULL, *y = NULL;
    int xl = i2d_X509_NAME_ENTRY(a, &x), yl = i2d_X509_NAME_ENTRY(b, &y);
    int c = memcmp(x, y, (size_t)(xl < yl ? xl : yl));
    if (c == 0)
        c = xl - yl;
    OPENSSL_free(x);
    OPENSSL_free(y);
    return c;
}

int srv_tls_dn(X509_NAME *nm, char *out, size_t cap)
{
    dnbuf b = {out, cap, 0, 0};
    if (cap)
        out[0] = '\0';
    int n = X509_NAME_entry_count(nm);
    /* RFC 2253 order: the last RDN first. */
    for (int i = n - 1; i >= 0;) {
        int set = X509_NAME_ENTRY_set(X509_NAME_get_entry(nm, i)), first = i;
        while (first > 0 && X509_NAME_ENTRY_set(X509_NAME_get_entry(nm, first - 1)) == set)
            first--;
        const X509_NAME_ENTRY *rdn[16];
        int k = 0;
        for (int j = first; j <= i && k < 16; j++)
            rdn[k++] = X509_NAME_get_entry(nm, j);
        for (int x = 1; x < k; x++) /* insertion sort: an RDN has a few values */
            for (int y = x; y > 0 && der_cmp(rdn[y - 1], rdn[y]) > 0; y--) {
                const X509_NAME_ENTRY *t = rdn[y];
                rdn[y] = rdn[y - 1];
                rdn[y - 1] = t;
            }
        if (b.len)
            put(&b, ",", 1);
        for (int x = 0; x < k; x++) {
            if (x)
                put(&b, "+", 1);
            put_ava(&b, rdn[x]);
        }
        i = first - 1;
    }
    return b.overflow ? -1 : (int)b.len;
}

int srv_tls_principal(SSL *ssl, char *out, size_t cap)
{
    X509 *peer = SSL_get1_peer_certificate(ssl);
    if (!peer) {
        snprintf(out, cap, "User:ANONYMOUS");
        return 0;
    }
    char dn[1024];
    int len = srv_tls_dn(X509_get_subject_name(peer), dn, sizeof(dn));
    X509_free(peer);
    const srv_pmap *pm = pmap_index >= 0 ? SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), pmap_index) : NULL;
    size_t ol = 0;
    if (len < 0 || cap < 6) {
        snprintf(out, cap, "(a subject DN over %zu bytes)", sizeof(dn));
        return -1;
    }
    if (!pm) {
        snprintf(out, cap, "User:%.*s", len, dn);
        return 0;
    }
    memcpy(out, "User:", 5);
    if (srv_pmap_apply(pm, dn, (size_t)len, out + 5, cap - 5, &ol) != 0) {
        /* For the log line: the DN no rule applied to. */
        snprintf(out, cap, "%.*s", len, dn);
        return -1;
    }
    return 0;
}
