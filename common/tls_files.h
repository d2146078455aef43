/*
 * Checks of the three PEM files a mutual-TLS peer is configured with, so
 * that a configuration check reports a file that the start would fail
 * on, with the variable that names it.
 */
#ifndef CJ_TLS_FILES_H
#define CJ_TLS_FILES_H

#include <stddef.h>

#include "status.h"

/* The CA, certificate and key files, each with its variable's name. */
struct cj_tls_files {
    const char *ca_var;
    const char *ca;
    const char *cert_var;
    const char *cert;
    const char *key_var;
    const char *key;
};

/*
 * Reads the three files and checks them. The CA file must contain at
 * least one certificate, and the certificate must verify against it
 * (signature and validity dates, at the current time). The key must be an
 * unencrypted PEM private key that matches the certificate. On failure
 * writes "VARIABLE: path: reason" to err and returns CJ_ERR_INVALID.
 */
CJ_WARN_UNUSED enum cj_status cj_tls_files_check(const struct cj_tls_files *f,
                                                 char *err, size_t err_size);

#endif
