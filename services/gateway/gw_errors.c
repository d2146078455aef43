/*
 * Error classes, their HTTP statuses and bodies, and the one function that
 * turns a backend's gRPC status into a class.
 */
#include "gw_errors.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

struct gw_error_class {
    const char *code;
    unsigned http_status;
    const char *message;
};

static const struct gw_error_class gw_error_classes[GW_ERR_COUNT] = {
    [GW_OK] = {"ok", 200, "ok"},
    [GW_ERR_INVALID_REQUEST] = {"invalid_request", 400,
                                "The request is malformed."},
    [GW_ERR_INVALID_CREDENTIALS] = {"invalid_credentials", 401,
                                    "The login or password is wrong."},
    [GW_ERR_INVALID_TOKEN] = {"invalid_token", 401,
                              "The token or session is invalid or expired."},
    [GW_ERR_DECRYPTION_FAILED] = {"decryption_failed", 400,
                                  "The sealed request could not be opened."},
    [GW_ERR_REPLAYED] = {"replayed", 409,
                         "The sealed request was already used or is too "
                         "old."},
    [GW_ERR_RATE_LIMITED] = {"rate_limited", 429,
                             "Too many requests; retry later."},
    [GW_ERR_UNAVAILABLE] = {"unavailable", 503,
                            "A backend service is unavailable; retry "
                            "later."},
    [GW_ERR_NOT_FOUND] = {"not_found", 404, "No such route."},
    [GW_ERR_METHOD_NOT_ALLOWED] = {"method_not_allowed", 405,
                                   "The route does not accept this method."},
    [GW_ERR_PAYLOAD_TOO_LARGE] = {"payload_too_large", 413,
                                  "The request body is too large."},
    [GW_ERR_UNSUPPORTED_MEDIA_TYPE] = {"unsupported_media_type", 415,
                                       "The body must be application/json "
                                       "without Content-Encoding."},
    [GW_ERR_URI_TOO_LONG] = {"uri_too_long", 414,
                             "The request target is too long."},
    [GW_ERR_HEADERS_TOO_LARGE] = {"headers_too_large", 431,
                                  "The request headers are too large."},
    [GW_ERR_CONFLICT] = {"conflict", 409, "The resource already exists."},
    [GW_ERR_FORBIDDEN] = {"forbidden", 403, "The request is not allowed."},
    [GW_ERR_INTERNAL] = {"internal", 500, "Internal error."},
};

static const struct gw_error_class *gw_error_class_of(enum gw_error error)
{
    if ((unsigned)error >= GW_ERR_COUNT) {
        error = GW_ERR_INTERNAL;
    }
    return &gw_error_classes[error];
}

const char *gw_error_code(enum gw_error error)
{
    return gw_error_class_of(error)->code;
}

unsigned gw_error_http_status(enum gw_error error)
{
    return gw_error_class_of(error)->http_status;
}

const char *gw_error_default_message(enum gw_error error)
{
    return gw_error_class_of(error)->message;
}

bool gw_error_needs_retry_after(enum gw_error error)
{
    return error == GW_ERR_RATE_LIMITED || error == GW_ERR_UNAVAILABLE;
}

enum gw_error gw_error_from_grpc(grpc_status_code code,
                                 enum gw_error unauthenticated_as)
{
    switch (code) {
    case GRPC_STATUS_OK:
        return GW_OK;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_OUT_OF_RANGE:
        return GW_ERR_INVALID_REQUEST;
    case GRPC_STATUS_UNAUTHENTICATED:
        return unauthenticated_as == GW_OK ? GW_ERR_INVALID_TOKEN
                                           : unauthenticated_as;
    case GRPC_STATUS_PERMISSION_DENIED:
        return GW_ERR_FORBIDDEN;
    case GRPC_STATUS_NOT_FOUND:
        return GW_ERR_NOT_FOUND;
    case GRPC_STATUS_ALREADY_EXISTS:
        return GW_ERR_CONFLICT;
    case GRPC_STATUS_ABORTED:
        return GW_ERR_REPLAYED;
    case GRPC_STATUS_RESOURCE_EXHAUSTED:
        return GW_ERR_RATE_LIMITED;
    /* A revocation cache that is not loaded fails closed: a token is
     * never accepted on it, and the client may retry once auth reloads. */
    case GRPC_STATUS_FAILED_PRECONDITION:
    case GRPC_STATUS_UNAVAILABLE:
    case GRPC_STATUS_DEADLINE_EXCEEDED:
    case GRPC_STATUS_CANCELLED:
        return GW_ERR_UNAVAILABLE;
    case GRPC_STATUS_UNIMPLEMENTED:
    case GRPC_STATUS_UNKNOWN:
    case GRPC_STATUS_INTERNAL:
    case GRPC_STATUS_DATA_LOSS:
    default:
        return GW_ERR_INTERNAL;
    }
}

enum gw_error gw_error_from_status(enum cj_status status,
                                   enum gw_error unauthenticated_as)
{
    return gw_error_from_grpc(cj_status_to_grpc(status), unauthenticated_as);
}

const char *gw_error_backend_message(grpc_status_code code, const char *detail)
{
    if (detail == NULL || detail[0] == '\0') {
        return NULL;
    }
    if (code == GRPC_STATUS_INVALID_ARGUMENT ||
        code == GRPC_STATUS_ALREADY_EXISTS) {
        return detail;
    }
    return NULL;
}

const char *gw_error_busy_message(grpc_status_code code, unsigned retry_after_s)
{
    if (code != GRPC_STATUS_UNAVAILABLE || retry_after_s == 0) {
        return NULL;
    }
    return "The service is busy; retry after the seconds given in "
           "Retry-After.";
}

char *gw_error_body_new(enum gw_error error, const char *message,
                        const char *request_id)
{
    json_t *root = NULL;
    char *text = NULL;

    if (message == NULL) {
        message = gw_error_default_message(error);
    }
    root =
        json_pack("{s:{s:s,s:s,s:s?}}", "error", "code", gw_error_code(error),
                  "message", message, "request_id", request_id);
    if (root == NULL) {
        /* jansson rejects a string that is not valid UTF-8, such as a
         * backend message cut inside a character. */
        root = json_pack("{s:{s:s,s:s,s:s?}}", "error", "code",
                         gw_error_code(error), "message",
                         gw_error_default_message(error), "request_id",
                         request_id);
    }
    if (root == NULL) {
        goto out;
    }
    text = json_dumps(root, JSON_COMPACT);

out:
    json_decref(root);
    return text;
}

bool gw_error_body_add_int(char **body, const char *name, long long value)
{
    json_t *root = NULL;
    json_t *error;
    char *text = NULL;

    if (body == NULL || *body == NULL) {
        return false;
    }
    root = json_loads(*body, 0, NULL);
    error = json_object_get(root, "error");
    if (!json_is_object(error) ||
        json_object_set_new(error, name, json_integer(value)) != 0) {
        goto out;
    }
    text = json_dumps(root, JSON_COMPACT);
    if (text != NULL) {
        free(*body);
        *body = text;
    }

out:
    json_decref(root);
    return text != NULL;
}
