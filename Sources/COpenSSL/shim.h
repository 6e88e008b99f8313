#ifndef NODE_AGENT_COPENSSL_SHIM_H
#define NODE_AGENT_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/evp.h>
#include <openssl/bio.h>

// The functions below wrap OpenSSL macros, which Swift cannot import.

static inline long node_agent_ssl_set_sni(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline int node_agent_sk_x509_num(const STACK_OF(X509) *sk) { return sk_X509_num(sk); }
static inline X509 *node_agent_sk_x509_value(const STACK_OF(X509) *sk, int i) { return sk_X509_value(sk, i); }
static inline void node_agent_openssl_free(void *p) { OPENSSL_free(p); }
static inline long node_agent_bio_get_mem_data(BIO *b, char **pp) { return BIO_get_mem_data(b, pp); }
static inline unsigned long node_agent_xn_flag_rfc2253(void) { return XN_FLAG_RFC2253; }
static inline long node_agent_ssl_ctx_set_min_tls12(SSL_CTX *ctx) { return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION); }
static inline STACK_OF(X509) *node_agent_sk_x509_new(void) { return sk_X509_new_null(); }
static inline int node_agent_sk_x509_push(STACK_OF(X509) *sk, X509 *x) { return sk_X509_push(sk, x); }
static inline void node_agent_sk_x509_pop_free(STACK_OF(X509) *sk) { sk_X509_pop_free(sk, X509_free); }

// Adds every certificate and CRL of a PEM buffer to `store`, as X509_load_cert_crl_file does for a
// file (what SSL_CTX_load_verify_locations reads): the number added, 0 when none or on an error.
static inline int node_agent_store_add_pem(X509_STORE *store, const void *bytes, int length) {
    BIO *bio = BIO_new_mem_buf(bytes, length);
    if (bio == NULL) return 0;
    STACK_OF(X509_INFO) *infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (infos == NULL) return 0;
    int count = 0;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        X509_INFO *info = sk_X509_INFO_value(infos, i);
        if (info->x509 != NULL) {
            if (!X509_STORE_add_cert(store, info->x509)) { count = 0; break; }
            count++;
        }
        if (info->crl != NULL) {
            if (!X509_STORE_add_crl(store, info->crl)) { count = 0; break; }
            count++;
        }
    }
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    return count;
}

// Verifies the chain in `ctx` (the one a TLS handshake hands to its verify callback) in a context
// of its own, trusting `store` and, when given, only the certificates in `trusted`; copies the
// outcome back into `ctx` (error code, depth and the verified chain), as if `ctx` itself had been
// verified. A context can be verified only once, so each try needs its own.
static inline int node_agent_verify_into(X509_STORE_CTX *ctx, X509_STORE *store, STACK_OF(X509) *trusted) {
    X509_STORE_CTX *c = X509_STORE_CTX_new();
    if (c == NULL) return -1;
    if (!X509_STORE_CTX_init(c, store, X509_STORE_CTX_get0_cert(ctx), X509_STORE_CTX_get0_untrusted(ctx))) {
        X509_STORE_CTX_free(c);
        return -1;
    }
    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(c), X509_STORE_CTX_get0_param(ctx));
    if (trusted != NULL) X509_STORE_CTX_set0_trusted_stack(c, trusted);
    int ok = X509_verify_cert(c);
    X509_STORE_CTX_set_error(ctx, X509_STORE_CTX_get_error(c));
    X509_STORE_CTX_set_error_depth(ctx, X509_STORE_CTX_get_error_depth(c));
    X509_STORE_CTX_set0_verified_chain(ctx, X509_STORE_CTX_get1_chain(c));
    X509_STORE_CTX_free(c);
    return ok;
}

// A verify context for the peer's chain of a finished handshake, made as OpenSSL's handshake
// makes the one it verifies (ssl_verify_cert_chain): the chain as received (leaf first) in
// `store`, the connection's security level, the "ssl_server" purpose, then `param` over those.
// NULL when the peer sent no chain. The caller verifies it once and frees it.
static inline X509_STORE_CTX *node_agent_peer_verify_context(SSL *ssl, X509_STORE *store, const X509_VERIFY_PARAM *param) {
    STACK_OF(X509) *chain = SSL_get_peer_cert_chain(ssl);
    if (chain == NULL || sk_X509_num(chain) == 0) return NULL;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    if (ctx == NULL) return NULL;
    if (!X509_STORE_CTX_init(ctx, store, sk_X509_value(chain, 0), chain)) {
        X509_STORE_CTX_free(ctx);
        return NULL;
    }
    X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(ctx), SSL_get_security_level(ssl));
    X509_STORE_CTX_set_default(ctx, "ssl_server");
    X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(ctx), param);
    return ctx;
}
#endif
