/*
 * The one error shape of the gateway, {"error":{"code","message",
 * "request_id"}}, the client-facing error classes, and the single mapping
 * from a gRPC status (or a cj_status) to a class and so to an HTTP status.
 */
#ifndef GW_ERRORS_H
#define GW_ERRORS_H

#include <grpc/status.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* One client-facing error class; each has one code and one HTTP status. */
enum gw_error {
    GW_OK = 0,
    GW_ERR_INVALID_REQUEST,
    GW_ERR_INVALID_CREDENTIALS,
    GW_ERR_INVALID_TOKEN,
    GW_ERR_DECRYPTION_FAILED,
    GW_ERR_REPLAYED,
    GW_ERR_RATE_LIMITED,
    GW_ERR_UNAVAILABLE,
    GW_ERR_NOT_FOUND,
    GW_ERR_METHOD_NOT_ALLOWED,
    GW_ERR_PAYLOAD_TOO_LARGE,
    GW_ERR_UNSUPPORTED_MEDIA_TYPE,
    GW_ERR_URI_TOO_LONG,
    GW_ERR_HEADERS_TOO_LARGE,
    GW_ERR_CONFLICT,
    GW_ERR_FORBIDDEN,
    GW_ERR_INTERNAL,
    GW_ERR_COUNT
};

/* The code clients see, such as "invalid_request". */
const char *gw_error_code(enum gw_error error);

/* The HTTP status of a class (200 for GW_OK). */
unsigned gw_error_http_status(enum gw_error error);

/* A generic message for the class, safe to show anyone. */
const char *gw_error_default_message(enum gw_error error);

/* True when the response must carry Retry-After (429 and 503). */
bool gw_error_needs_retry_after(enum gw_error error);

/*
 * Maps a gRPC status from a backend to an error class: the only such
 * mapping in the gateway. UNAUTHENTICATED means different things per call
 * (bad password, bad token, a seal that did not open), so the caller names
 * the class it stands for in `unauthenticated_as`.
 */
enum gw_error gw_error_from_grpc(grpc_status_code code,
                                 enum gw_error unauthenticated_as);

/* Maps a cj_status through cj_status_to_grpc() and gw_error_from_grpc(). */
enum gw_error gw_error_from_status(enum cj_status status,
                                   enum gw_error unauthenticated_as);

/*
 * Returns the backend's status message `detail` when the client may see
 * it, or NULL for the class's generic message. Only INVALID_ARGUMENT and
 * ALREADY_EXISTS pass: the gRPC framework's contract is that a handler's
 * message reaches the client and holds no secret, and these two name the
 * rule that failed. Authentication failures keep one message per class.
 * Callers must not use it for kms OpenSealed or session OpenRequest,
 * whose failures stay generic.
 */
const char *gw_error_backend_message(grpc_status_code code, const char *detail);

/*
 * Returns the client message for an UNAVAILABLE that the backend sent with
 * a retry-after (auth's password gate under a login burst): the service is
 * busy, not down. NULL for any other status, or without a retry-after.
 */
const char *gw_error_busy_message(grpc_status_code code,
                                  unsigned retry_after_s);

/*
 * Adds the member name with an integer value to the "error" object of the
 * error body *body (from gw_error_body_new), replacing *body. Leaves *body
 * as it was and returns false when out of memory or when *body is not
 * such a body.
 */
bool gw_error_body_add_int(char **body, const char *name, long long value);

/*
 * Renders the error body into a new malloc'd NUL-terminated string (the
 * caller frees it), or NULL when out of memory. `message` may be NULL for
 * the class's default message, which also replaces a message that is not
 * valid UTF-8; `request_id` may be NULL.
 */
char *gw_error_body_new(enum gw_error error, const char *message,
                        const char *request_id);

#endif
