/*
 * e2e_sealed_request: sends one stateless sealed request through the
 * client library with the state file's access token inside the seal,
 * whatever the route, which the cerrojo command never does on a route that
 * acts for no user. Prints the outcome as one JSON object on stdout.
 *
 *   e2e_sealed_request URL STATE_FILE METHOD PATH [BODY_JSON]
 */
#include <stdio.h>

#include <sodium.h>

#include "cjc_client.h"

/* Exit statuses: 0 when a response arrived (of any HTTP status), 1 when
 * none did, 2 for bad usage. */
#define SEALED_EXIT_ANSWERED 0
#define SEALED_EXIT_FAILED   1
#define SEALED_EXIT_USAGE    2

int main(int argc, char **argv)
{
    struct cjc_client_options opts = {0};
    struct cjc_client *client = NULL;
    struct cjc_error err = {0};
    json_error_t parse_error;
    json_t *body = NULL;
    json_t *result = NULL;
    json_t *report = NULL;
    enum cj_status rc;
    int status = SEALED_EXIT_FAILED;

    if (argc < 5 || argc > 6) {
        fprintf(stderr, "usage: e2e_sealed_request URL STATE_FILE METHOD "
                        "PATH [BODY_JSON]\n");
        return SEALED_EXIT_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "e2e_sealed_request: libsodium failed to start\n");
        return SEALED_EXIT_FAILED;
    }
    if (argc == 6) {
        body = json_loads(argv[5], 0, &parse_error);
        if (!json_is_object(body)) {
            fprintf(stderr,
                    "e2e_sealed_request: BODY_JSON is not a JSON "
                    "object: %s\n",
                    parse_error.text);
            json_decref(body);
            return SEALED_EXIT_USAGE;
        }
    }
    opts.url = argv[1];
    opts.state_path = argv[2];
    if (cjc_client_open(&opts, &client, &err) != CJ_OK) {
        fprintf(stderr, "e2e_sealed_request: %s\n", err.message);
        goto out;
    }
    rc = cjc_request(client, argv[3], argv[4], body, CJC_MODE_STATELESS, true,
                     &result, &err);
    if (rc != CJ_OK && err.http_status == 0) {
        fprintf(stderr, "e2e_sealed_request: no response: %s\n", err.message);
        goto out;
    }
    /* A test failure prints the report, which must show no token. */
    json_object_del(result, "access_token");
    json_object_del(result, "refresh_token");
    if (rc == CJ_OK)
        report = json_pack("{s:b,s:O}", "ok", 1, "result", result);
    else
        report = json_pack("{s:b,s:i,s:s,s:s}", "ok", 0, "http_status",
                           (json_int_t)err.http_status, "code", err.code,
                           "message", err.message);
    if (report == NULL)
        goto out;
    json_dumpf(report, stdout, JSON_COMPACT | JSON_SORT_KEYS);
    fputc('\n', stdout);
    status = SEALED_EXIT_ANSWERED;

out:
    json_decref(report);
    json_decref(result);
    json_decref(body);
    cjc_client_close(client);
    return status;
}
