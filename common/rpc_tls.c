/*
 * Mutual TLS for the framework: server credentials that require and verify
 * a client certificate of the platform CA, PEM file loading, and the peer
 * identity (certificate CN) of a call.
 */
#include "rpc_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <grpc/grpc_security.h>
#include <sodium.h>

#include "log.h"

/* Largest PEM file accepted (a certificate chain or key), in bytes. */
#define CJ_RPC_PEM_MAX_BYTES (256 * 1024)

enum cj_status cj_rpc_read_pem(const char *path, char **out)
{
    enum cj_status result = CJ_ERR_UNAVAILABLE;
    FILE *file = NULL;
    char *data = NULL;
    size_t len = 0;

    *out = NULL;
    file = fopen(path, "rb");
    if (file == NULL) {
        cj_log(CJ_LOG_ERROR, "rpc.tls_file_unreadable", NULL,
               CJ_F_STR("path", path), CJ_F_STR("error", strerror(errno)));
        goto out;
    }
    data = sodium_malloc(CJ_RPC_PEM_MAX_BYTES + 1);
    if (data == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    len = fread(data, 1, CJ_RPC_PEM_MAX_BYTES + 1, file);
    if (ferror(file)) {
        goto out;
    }
    if (len > CJ_RPC_PEM_MAX_BYTES) {
        cj_log(CJ_LOG_ERROR, "rpc.tls_file_too_large", NULL,
               CJ_F_STR("path", path),
               CJ_F_INT("max_bytes", CJ_RPC_PEM_MAX_BYTES));
        result = CJ_ERR_TOO_LARGE;
        goto out;
    }
    data[len] = '\0';
    *out = data;
    data = NULL;
    result = CJ_OK;
out:
    if (file != NULL) {
        fclose(file);
    }
    if (data != NULL) {
        sodium_free(data); /* wipes as it frees */
    }
    return result;
}

enum cj_status cj_rpc_server_credentials(const struct cj_rpc_server *server,
                                         grpc_server_credentials **out)
{
    enum cj_status result;
    char *ca = NULL;
    char *cert = NULL;
    char *key = NULL;

    *out = NULL;
    result = cj_rpc_read_pem(server->tls_ca_file, &ca);
    if (result == CJ_OK) {
        result = cj_rpc_read_pem(server->tls_cert_file, &cert);
    }
    if (result == CJ_OK) {
        result = cj_rpc_read_pem(server->tls_key_file, &key);
    }
    if (result != CJ_OK) {
        goto out;
    }
    grpc_ssl_pem_key_cert_pair pair = {.private_key = key, .cert_chain = cert};
    *out = grpc_ssl_server_credentials_create_ex(
        ca, &pair, 1,
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
    result = *out != NULL ? CJ_OK : CJ_ERR_INVALID;
out:
    if (ca != NULL) {
        sodium_free(ca);
    }
    if (cert != NULL) {
        sodium_free(cert);
    }
    if (key != NULL) {
        sodium_free(key);
    }
    return result;
}

enum cj_status cj_rpc_peer_identity(grpc_call *call, char *identity)
{
    enum cj_status result = CJ_ERR_UNAUTHENTICATED;
    grpc_auth_context *ctx = grpc_call_auth_context(call);
    grpc_auth_property_iterator it;
    const grpc_auth_property *prop;

    identity[0] = '\0';
    if (ctx == NULL || !grpc_auth_context_peer_is_authenticated(ctx)) {
        goto out;
    }
    it = grpc_auth_context_find_properties_by_name(ctx,
                                                   GRPC_X509_CN_PROPERTY_NAME);
    prop = grpc_auth_property_iterator_next(&it);
    if (prop == NULL ||
        !cj_rpc_identity_valid(prop->value, prop->value_length)) {
        goto out;
    }
    memcpy(identity, prop->value, prop->value_length);
    identity[prop->value_length] = '\0';
    result = CJ_OK;
out:
    if (ctx != NULL) {
        grpc_auth_context_release(ctx);
    }
    return result;
}
