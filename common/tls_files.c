/* Checks of a mutual-TLS peer's CA, certificate and key files. */
#include "tls_files.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

/* Refuses to prompt for a passphrase: services read unencrypted keys. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)userdata;
    return -1;
}

/* Opens path for reading, or writes why it cannot be read to err. */
static BIO *open_file(const char *var, const char *path, char *err,
                      size_t err_size)
{
    FILE *file = fopen(path, "rb");
    BIO *bio;

    if (file == NULL) {
        snprintf(err, err_size, "%s: %s: cannot be read: %s", var, path,
                 strerror(errno));
        return NULL;
    }
    /* fopen opens a folder too; its reads then fail like an empty file. */
    struct stat st;
    if (fstat(fileno(file), &st) == 0 && S_ISDIR(st.st_mode)) {
        fclose(file);
        snprintf(err, err_size, "%s: %s: is a folder, not a PEM file", var,
                 path);
        return NULL;
    }
    bio = BIO_new_fp(file, BIO_CLOSE);
    if (bio == NULL) {
        fclose(file);
        snprintf(err, err_size, "%s: %s: out of memory", var, path);
    }
    return bio;
}

/* Loads every certificate of the CA file into a new store. */
static X509_STORE *load_ca(const struct cj_tls_files *f, char *err,
                           size_t err_size)
{
    X509_STORE *store = X509_STORE_new();
    BIO *bio = open_file(f->ca_var, f->ca, err, err_size);
    X509 *cert = NULL;
    int count = 0;

    if (store == NULL || bio == NULL) {
        goto fail;
    }
    while ((cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        int added = X509_STORE_add_cert(store, cert);

        X509_free(cert);
        if (added != 1) {
            snprintf(err, err_size, "%s: %s: a certificate was not accepted",
                     f->ca_var, f->ca);
            goto fail;
        }
        count++;
    }
    if (count == 0) {
        snprintf(err, err_size, "%s: %s: contains no PEM certificate",
                 f->ca_var, f->ca);
        goto fail;
    }
    BIO_free(bio);
    return store;
fail:
    BIO_free(bio);
    X509_STORE_free(store);
    return NULL;
}

/* Checks that cert, with the intermediates after it in its file, chains to
 * the store at the current time. */
static enum cj_status verify_cert(const struct cj_tls_files *f,
                                  X509_STORE *store, X509 *cert,
                                  STACK_OF(X509) * chain, char *err,
                                  size_t err_size)
{
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    enum cj_status rc = CJ_ERR_INVALID;

    if (ctx == NULL || X509_STORE_CTX_init(ctx, store, cert, chain) != 1) {
        snprintf(err, err_size, "%s: %s: out of memory", f->cert_var, f->cert);
        goto out;
    }
    if (X509_verify_cert(ctx) != 1) {
        snprintf(err, err_size, "%s: %s: does not verify against %s: %s",
                 f->cert_var, f->cert, f->ca_var,
                 X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    rc = CJ_OK;
out:
    X509_STORE_CTX_free(ctx);
    return rc;
}

/* Reads the first certificate of the certificate file, and the ones after
 * it (intermediates) into *chain. */
static X509 *load_cert(const struct cj_tls_files *f, STACK_OF(X509) * *chain,
                       char *err, size_t err_size)
{
    BIO *bio = open_file(f->cert_var, f->cert, err, err_size);
    X509 *cert = NULL;
    X509 *next = NULL;

    *chain = NULL;
    if (bio == NULL) {
        return NULL;
    }
    cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    if (cert == NULL) {
        snprintf(err, err_size, "%s: %s: contains no PEM certificate",
                 f->cert_var, f->cert);
        goto out;
    }
    *chain = sk_X509_new_null();
    if (*chain == NULL) {
        goto fail;
    }
    while ((next = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL)) != NULL) {
        if (sk_X509_push(*chain, next) == 0) {
            X509_free(next);
            goto fail;
        }
    }
    goto out;
fail:
    snprintf(err, err_size, "%s: %s: out of memory", f->cert_var, f->cert);
    X509_free(cert);
    cert = NULL;
    sk_X509_pop_free(*chain, X509_free);
    *chain = NULL;
out:
    BIO_free(bio);
    return cert;
}

/* Reads the key and checks that it belongs to cert. */
static enum cj_status check_key(const struct cj_tls_files *f, X509 *cert,
                                char *err, size_t err_size)
{
    BIO *bio = open_file(f->key_var, f->key, err, err_size);
    EVP_PKEY *key = NULL;
    enum cj_status rc = CJ_ERR_INVALID;

    if (bio == NULL) {
        return CJ_ERR_INVALID;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (key == NULL) {
        snprintf(err, err_size,
                 "%s: %s: contains no unencrypted PEM private key", f->key_var,
                 f->key);
        goto out;
    }
    if (X509_check_private_key(cert, key) != 1) {
        snprintf(err, err_size,
                 "%s: %s: is not the key of the certificate in %s", f->key_var,
                 f->key, f->cert_var);
        goto out;
    }
    rc = CJ_OK;
out:
    EVP_PKEY_free(key);
    BIO_free(bio);
    return rc;
}

enum cj_status cj_tls_files_check(const struct cj_tls_files *f, char *err,
                                  size_t err_size)
{
    X509_STORE *store = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *chain = NULL;
    enum cj_status rc = CJ_ERR_INVALID;

    store = load_ca(f, err, err_size);
    if (store == NULL) {
        goto out;
    }
    cert = load_cert(f, &chain, err, err_size);
    if (cert == NULL) {
        goto out;
    }
    rc = verify_cert(f, store, cert, chain, err, err_size);
    if (rc == CJ_OK) {
        rc = check_key(f, cert, err, err_size);
    }
out:
    sk_X509_pop_free(chain, X509_free);
    X509_free(cert);
    X509_STORE_free(store);
    /* The failed reads leave entries on this thread's OpenSSL error queue,
     * which later TLS calls would otherwise report as their own. */
    ERR_clear_error();
    return rc;
}
