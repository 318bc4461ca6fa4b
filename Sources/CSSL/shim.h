// libcrypto (OpenSSL 3): X.509 parsing and generation, PEM, SHA-256 and AES-256-GCM.
// Wrapped by SwitchyardCore/TLS/OpenSSL.swift only; nothing else imports this.
//
// Function-like macros and variadic functions do not import into Swift, so the few this
// project needs get typed inline wrappers here (sy_ prefix). No logic lives here.
#ifndef SWITCHYARD_CSSL_SHIM_H
#define SWITCHYARD_CSSL_SHIM_H
#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <time.h>

/* A passphrase callback that never supplies one: an encrypted key fails to load instead of
   OpenSSL prompting on the controlling terminal. */
static int sy_no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf; (void)size; (void)rwflag; (void)u;
    return 0;
}
static inline EVP_PKEY *sy_read_private_key(BIO *bio) {
    return PEM_read_bio_PrivateKey(bio, NULL, sy_no_passphrase, NULL);
}
static inline X509 *sy_read_x509(BIO *bio) {
    return PEM_read_bio_X509(bio, NULL, sy_no_passphrase, NULL);
}
/* PKCS#8, unencrypted */
static inline int sy_write_private_key(BIO *bio, EVP_PKEY *key) {
    return PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
}

static inline long sy_bio_mem_data(BIO *bio, char **data) { return BIO_get_mem_data(bio, data); }
static inline void sy_free(void *p) { OPENSSL_free(p); }

/* subjectAltName entries */
static inline GENERAL_NAMES *sy_sans(X509 *x) {
    return (GENERAL_NAMES *)X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
}
static inline int sy_sans_count(GENERAL_NAMES *names) { return sk_GENERAL_NAME_num(names); }
/* the i-th entry if it is a dNSName: its length and bytes; -1 for other types */
static inline int sy_san_dns(GENERAL_NAMES *names, int i, const unsigned char **data) {
    GENERAL_NAME *n = sk_GENERAL_NAME_value(names, i);
    if (n == NULL || n->type != GEN_DNS) return -1;
    *data = ASN1_STRING_get0_data(n->d.dNSName);
    return ASN1_STRING_length(n->d.dNSName);
}
static inline void sy_sans_free(GENERAL_NAMES *names) { GENERAL_NAMES_free(names); }

/* ASN1_TIME -> seconds since the epoch; 0 on failure (with *ok = 0) */
static inline long long sy_asn1_time_epoch(const ASN1_TIME *t, int *ok) {
    struct tm tm;
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1) { *ok = 0; return 0; }
    *ok = 1;
    return (long long)timegm(&tm);
}

static inline int sy_x509_is_issued_by(X509 *issuer, X509 *subject) {
    return X509_check_issued(issuer, subject) == X509_V_OK;
}

/* Key generation (placeholder certificates, tests). */
static inline EVP_PKEY *sy_generate_ec_p256(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); }
static inline EVP_PKEY *sy_generate_rsa(size_t bits) { return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits); }

/* One X.509v3 extension from its config text (e.g. "DNS:a.example,DNS:b.example"),
   issued by `issuer` (the certificate itself when self-signed). */
static inline int sy_x509_add_ext(X509 *issuer, X509 *x, int nid, const char *value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
    if (ext == NULL) return 0;
    int ok = X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    return ok;
}

/* AES-256-GCM controls (macros aliasing macros) */
static inline int sy_gcm_set_ivlen(EVP_CIPHER_CTX *c, int n) { return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, n, NULL); }
static inline int sy_gcm_get_tag(EVP_CIPHER_CTX *c, unsigned char *tag, int n) { return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, n, tag); }
static inline int sy_gcm_set_tag(EVP_CIPHER_CTX *c, unsigned char *tag, int n) { return EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, n, tag); }

static inline int sy_name_add_cn(X509_NAME *name, const char *cn) {
    return X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
}
/* the first commonName of a name: its length and bytes; -1 when there is none */
static inline int sy_name_cn(X509_NAME *name, const unsigned char **data) {
    int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (i < 0) return -1;
    ASN1_STRING *s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    if (s == NULL) return -1;
    *data = ASN1_STRING_get0_data(s);
    return ASN1_STRING_length(s);
}
static inline int sy_print_name(BIO *bio, X509_NAME *name) {
    return X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
}

static inline int sy_nid_subject_alt_name(void) { return NID_subject_alt_name; }
static inline int sy_nid_basic_constraints(void) { return NID_basic_constraints; }
static inline int sy_nid_key_usage(void) { return NID_key_usage; }
static inline int sy_nid_subject_key_identifier(void) { return NID_subject_key_identifier; }
static inline int sy_nid_authority_key_identifier(void) { return NID_authority_key_identifier; }
static inline int sy_evp_pkey_rsa(void) { return EVP_PKEY_RSA; }
static inline int sy_evp_pkey_ec(void) { return EVP_PKEY_EC; }
#endif
