/*
 * The sealed-route handler. Errors raised before the body is opened are
 * plain JSON; errors raised after are sealed like any answer.
 */
#include "gw_sealed.h"

#include <jansson.h>
#include <string.h>

#include "gw_json.h"
#include "log.h"

/* Decides the mode from the headers: a Cerrojo-Session header means
 * stateful, anything else stateless. */
static enum gw_mode gw_sealed_mode(const struct gw_request *req)
{
    return req->session_header != NULL ? GW_MODE_STATEFUL : GW_MODE_STATELESS;
}

void gw_sealed_handle(const struct gw_context *ctx, struct gw_request *req,
                      struct gw_reply *reply)
{
    enum gw_mode mode = gw_sealed_mode(req);
    json_t *envelope = NULL;
    char err[GW_JSON_ERROR_CHARS] = "";
    enum cj_status status;

    (void)ctx;
    if (!(req->route->modes & mode)) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       mode == GW_MODE_STATEFUL
                           ? "This route does not accept a session."
                           : "This route needs a stateful session.",
                       GW_REJECT_MODE, "mode not accepted by the route");
        goto out;
    }
    if (req->route->body_bytes_max > 0) {
        status = gw_json_parse_object((const char *)req->body, req->body_len,
                                      &envelope, err, sizeof(err));
        if (status != CJ_OK) {
            gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST, err,
                           status == CJ_ERR_TOO_LARGE ? GW_REJECT_JSON_TOO_DEEP
                                                      : GW_REJECT_JSON_INVALID,
                           "envelope is not a JSON object");
            goto out;
        }
    } else if (req->seal_header == NULL && req->session_header == NULL) {
        gw_reply_error(req, reply, GW_ERR_INVALID_REQUEST,
                       "A sealed GET needs the Cerrojo-Seal header.",
                       GW_REJECT_MODE, "sealed GET without a seal header");
        goto out;
    }
    /* TODO: open the envelope with the sealing API once it lands. */
    gw_reply_error(req, reply, GW_ERR_UNAVAILABLE,
                   "Sealed routes are not available yet.",
                   GW_REJECT_BACKEND_UNAVAILABLE, "sealing not built in");

out:
    json_decref(envelope);
}
