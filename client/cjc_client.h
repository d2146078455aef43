/*
 * The cerrojo client library. It seals every request to the gateway, in
 * stateless mode (HPKE to a key from the signed key list) or stateful mode
 * (the session's epoch keys). It opens the sealed responses and keeps the
 * session and the tokens in a state file.
 */
#ifndef CJC_CLIENT_H
#define CJC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "status.h"

/* Largest number of pinned key-list signing keys. */
#define CJC_MAX_PINS 8
/* Maximum length of a request id that the gateway sends back. */
#define CJC_REQUEST_ID_MAX_LEN 64

enum cjc_mode {
    CJC_MODE_AUTO = 0,  /* stateful when a session exists, else stateless */
    CJC_MODE_STATELESS, /* HPKE per request */
    CJC_MODE_STATEFUL,  /* the session's epoch keys */
};

/* The reason a call failed, for a one-line message. Contains no secret. */
struct cjc_error {
    char message[512];
    /* The server's error code, e.g. "invalid_token". Characters other
     * than letters, digits and '_' become '?', and in message every
     * control character of the server's text becomes '?'. */
    char code[64];
    char request_id[CJC_REQUEST_ID_MAX_LEN + 1]; /* the server's, or "" */
    long http_status; /* 0 when no response arrived */
    long retry_after_seconds;
    /* Whether the error response was sealed and opened under the request's
     * keys. A plain error is unauthenticated, because anything between
     * client and gateway can send one, so the client changes no stored
     * credential because of it. */
    bool sealed;
    /* The gateway's clock (Unix milliseconds) from a sealed 409 for a
     * request timestamp outside its window; 0 when the error had none. */
    long long server_time_ms;
};

struct cjc_client_options {
    /* Gateway base URL, compared with the state file's in canonical form
     * (see cjc_url_normalize). */
    const char *url;
    const char *state_path; /* state file; NULL for the default */
    const char *pins[CJC_MAX_PINS];
    size_t n_pins; /* 0: accept any key-list signer */
    /* Maximum wait for the state file's lock, in milliseconds. 0 selects
     * CJC_STATE_LOCK_WAIT_MS. */
    long lock_wait_ms;
    /* Replace a state file that contains a login at another URL, or a
     * session with invalid values, for a command that starts a new login.
     * Without it, opening fails. */
    bool replace_other_login;
    /* Replace a state file at another URL that contains a session but no
     * tokens, for a handshake, which starts no login. */
    bool replace_other_session;
    /* Receives a one-line notice each time the client refreshes the tokens
     * by itself; NULL for none. */
    void (*notice)(const char *message);
    /* Write the state file before each stateful request is sent, so that a
     * process killed during the request cannot seal the next one with the
     * same sequence number and key. Each write costs an fsync. */
    bool save_before_send;
};

struct cjc_client;

/*
 * Opens a client: locks its state file against other clients, then loads
 * it. The lock is held until cjc_client_close, so that commands on one
 * state file run one at a time and do not reuse a sequence number. Fails
 * with CJ_ERR_TIMEOUT when the lock stays held for the whole wait. Fails
 * with CJ_ERR_INVALID for invalid local input. That is a damaged state
 * file (see cjc_state_load), a stored session with values that no server
 * sends, a state path that names a folder, is too long or is missing, or
 * invalid options. Free with cjc_client_close.
 */
CJ_WARN_UNUSED enum cj_status
cjc_client_open(const struct cjc_client_options *opts, struct cjc_client **out,
                struct cjc_error *err);

/*
 * Saves the state when it changed, releases the lock, wipes keys and frees.
 * Accepts NULL.
 */
void cjc_client_close(struct cjc_client *client);

/* Writes the state file now. */
CJ_WARN_UNUSED enum cj_status cjc_client_save(struct cjc_client *client,
                                              struct cjc_error *err);

/* Returns true when the state contains a stateful session. */
bool cjc_client_has_session(const struct cjc_client *client);

/*
 * Fetches and checks the signed key list; *out is a new reference to the
 * list of keys ({"keys":[...], "signer": fingerprint}).
 */
CJ_WARN_UNUSED enum cj_status cjc_keys(struct cjc_client *client, json_t **out,
                                       struct cjc_error *err);

/*
 * Opens a stateful session; *out is the session description without
 * session_id, which only the state file keeps. Fails with
 * CJ_ERR_PRECONDITION, and sends nothing, when the state contains tokens,
 * because the new session would have no user and would replace the one
 * that the login is bound to.
 */
CJ_WARN_UNUSED enum cj_status
cjc_handshake(struct cjc_client *client, json_t **out, struct cjc_error *err);

/*
 * Registers a user. With CJC_MODE_STATEFUL the request carries a handshake
 * and the new session is kept; the password is wiped by the caller. *out is
 * the response without the tokens and without session.session_id.
 */
CJ_WARN_UNUSED enum cj_status
cjc_register(struct cjc_client *client, const char *username, const char *email,
             const char *password, enum cjc_mode mode, json_t **out,
             struct cjc_error *err);

/*
 * Logs in by username or email; like cjc_register for the modes. Both
 * replace the stored session and tokens only when the call succeeds.
 */
CJ_WARN_UNUSED enum cj_status cjc_login(struct cjc_client *client,
                                        const char *login, const char *password,
                                        enum cjc_mode mode, json_t **out,
                                        struct cjc_error *err);

/*
 * The calls below that need a user (me, data, logout) carry the stored
 * access token in stateless mode. The client refreshes the tokens first
 * when their stored expiry is within 30 s. When the gateway still rejects
 * the token with a sealed 401 invalid_token, it refreshes once, saves the
 * new tokens and sends the same request again, at most once per call. When
 * that refresh is rejected, the call fails with code "invalid_token" and a
 * message that tells the user to log in again. A plain rejection starts no
 * refresh, because anything between client and gateway can send one. On
 * every sealed route a plain 2xx fails with code "unsealed_response" and
 * stores nothing. In stateful mode the session is the credential, so
 * nothing is refreshed or retried, and a rejected session gets the same
 * log-in-again message.
 */

/* The caller's profile. */
CJ_WARN_UNUSED enum cj_status cjc_me(struct cjc_client *client, json_t **out,
                                     struct cjc_error *err);

/* Reads the data of class "public", "private" or "protected". */
CJ_WARN_UNUSED enum cj_status cjc_data_get(struct cjc_client *client,
                                           const char *data_class, json_t **out,
                                           struct cjc_error *err);

/* Writes fields (a JSON object of strings) to a class. */
CJ_WARN_UNUSED enum cj_status cjc_data_put(struct cjc_client *client,
                                           const char *data_class,
                                           json_t *fields, json_t **out,
                                           struct cjc_error *err);

/* Rotates the refresh token and stores the new tokens. */
CJ_WARN_UNUSED enum cj_status cjc_refresh(struct cjc_client *client,
                                          json_t **out, struct cjc_error *err);

/*
 * Logs out this device, or every device with all; clears the state. The
 * server may reject the stored session (401 invalid_token), because no
 * user is logged in on it or it has ended, or fail to open the request
 * with its keys (400 decryption_failed). The logout is then sent again on
 * the stateless channel, with the stored access and refresh tokens. When
 * the server rejects those too in a sealed 401, because the session they
 * are bound to is gone, the logout is sent with the refresh token alone,
 * which revokes
 * only its family. With all the call then fails with CJ_ERR_PRECONDITION
 * after clearing the state, because other devices stay logged in. A plain
 * 401 on the stateless channel may be forged, so it ends the call with
 * CJ_ERR_UNAUTHENTICATED and the state as it was.
 */
CJ_WARN_UNUSED enum cj_status cjc_logout(struct cjc_client *client, bool all,
                                         struct cjc_error *err);

/*
 * Sends one sealed request: the building block of the calls above, also
 * used by the load generator. body may be NULL; *out receives the opened
 * JSON response. with_token puts the access token inside the stateless
 * seal.
 */
CJ_WARN_UNUSED enum cj_status cjc_request(struct cjc_client *client,
                                          const char *method, const char *path,
                                          json_t *body, enum cjc_mode mode,
                                          bool with_token, json_t **out,
                                          struct cjc_error *err);

#endif
