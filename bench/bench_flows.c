/*
 * The workloads of cerrojo-bench: flows through the gateway on the client
 * library, gRPC calls to auth on common/rpc_client.h, and the ceilings
 * (Argon2id, signatures, X25519, Postgres writes, plain HTTP) that the
 * flows are judged against.
 */
#include "bench.h"

#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"
#include "jws.h"
#include "password_policy.h"
#include "rpc_message.h"

/* Per-call deadline of the gRPC flows, in milliseconds. */
#define BENCH_RPC_TIMEOUT_MS 5000
/* Bytes of random data written per row by pg-write: a SHA-256 hash, as a
 * refresh-token row stores. */
#define BENCH_PG_PAYLOAD_BYTES 32
/* Tries of a shed registration while preparing, and the wait before the
 * n-th retry (n times this), in microseconds. */
#define BENCH_PREPARE_ATTEMPTS 20
/* Random passwords drawn at most before one passes the policy. */
#define BENCH_PASSWORD_DRAWS   8
#define BENCH_PREPARE_RETRY_US 200000
/* Registrations in flight at once while preparing. */
#define BENCH_PREPARE_PARALLEL 4

static const char bench_pg_table_sql[] =
    "CREATE TABLE IF NOT EXISTS bench_scratch ("
    " worker integer NOT NULL,"
    " seq bigint NOT NULL,"
    " payload bytea NOT NULL,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " PRIMARY KEY (worker, seq))";
static const char bench_pg_insert_sql[] =
    "INSERT INTO bench_scratch (worker, seq, payload) VALUES ($1, $2, $3)";

const char *bench_error_name(enum bench_error e)
{
    static const char *const names[BENCH_ERR_COUNT] = {
        "ok",       "transport", "rate_limited", "http_4xx",
        "http_5xx", "rpc",       "check",        "other"};

    return (unsigned)e < BENCH_ERR_COUNT ? names[e] : "other";
}

static void note_error(struct bench_worker *w, const char *fmt, const char *a)
{
    if (w->error_text[0] == '\0')
        snprintf(w->error_text, sizeof(w->error_text), fmt, a);
}

static enum bench_error classify_http(long status)
{
    if (status == 0)
        return BENCH_ERR_TRANSPORT;
    if (status == 429)
        return BENCH_ERR_RATE_LIMITED;
    if (status >= 500)
        return BENCH_ERR_HTTP_5XX;
    if (status >= 400)
        return BENCH_ERR_HTTP_4XX;
    return BENCH_ERR_CHECK;
}

static enum bench_error classify_client(struct bench_worker *w,
                                        const struct cjc_error *err)
{
    enum bench_error e = classify_http(err->http_status);

    note_error(w, "%s", err->message);
    return e == BENCH_ERR_CHECK ? BENCH_ERR_OTHER : e;
}

/* ---- HTTP and client-library flows ---- */

static bool open_client(struct bench_worker *w)
{
    struct cjc_client_options opts = {0};
    struct cjc_error err = {0};
    char state_path[512];

    snprintf(state_path, sizeof(state_path), "%s/worker-%u.json",
             w->config->state_dir, w->index);
    opts.url = w->config->url;
    opts.state_path = state_path;
    if (cjc_client_open(&opts, &w->client, &err) != CJ_OK) {
        note_error(w, "client: %s", err.message);
        return false;
    }
    return true;
}

static pthread_once_t prepare_once = PTHREAD_ONCE_INIT;
static sem_t prepare_slots;

static void prepare_init(void)
{
    sem_init(&prepare_slots, 0, BENCH_PREPARE_PARALLEL);
}

/*
 * Registers, retrying what auth sheds under the burst (503, 429). A retry
 * that finds the user (409) means an earlier try went through after its
 * deadline, so the user logs in instead to get its tokens and session.
 */
static bool register_with_retry(struct bench_worker *w, const char *email,
                                enum cjc_mode mode)
{
    struct cjc_error err;
    json_t *out = NULL;
    bool exists = false;

    for (unsigned attempt = 1;; attempt++) {
        enum cj_status rc;

        memset(&err, 0, sizeof(err));
        if (exists)
            rc = cjc_login(w->client, w->username, w->password, mode, &out,
                           &err);
        else
            rc = cjc_register(w->client, w->username, email, w->password, mode,
                              &out, &err);
        if (rc == CJ_OK)
            break;
        if (err.http_status == 409 && attempt > 1 && !exists) {
            exists = true;
            continue;
        }
        if ((err.http_status != 503 && err.http_status != 429) ||
            attempt >= BENCH_PREPARE_ATTEMPTS) {
            note_error(w, "register: %s", err.message);
            return false;
        }
        usleep(BENCH_PREPARE_RETRY_US * attempt);
    }
    json_decref(out);
    return true;
}

/*
 * Draws a random password the server's policy accepts. cracklib refuses
 * about one random 24-character draw in a thousand as "too systematic"
 * (runs such as "stuv"), and a run registers hundreds of users, so each
 * draw is checked here first. Where the dictionary cannot be read the
 * draw is kept and the server has the last word.
 */
static void draw_password(struct bench_worker *w)
{
    static const char alphabet[] =
        "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    unsigned char raw[BENCH_PASSWORD_CHARS];
    struct cj_password_policy policy;
    enum cj_password_rule failed;

    cj_password_policy_default(&policy);
    for (unsigned draw = 0; draw < BENCH_PASSWORD_DRAWS; draw++) {
        randombytes_buf(raw, sizeof(raw));
        for (size_t i = 0; i < BENCH_PASSWORD_CHARS; i++)
            w->password[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
        w->password[BENCH_PASSWORD_CHARS] = '\0';
        if (cj_password_policy_check(&policy, w->password, BENCH_PASSWORD_CHARS,
                                     w->username, NULL,
                                     &failed) != CJ_ERR_INVALID)
            break;
    }
    sodium_memzero(raw, sizeof(raw));
}

/* Registers this worker's own user (one Argon2 hash, outside the timed
 * part). */
static bool register_user(struct bench_worker *w, enum cjc_mode mode)
{
    char email[96];
    bool ok;

    /* The flow's index keeps the users of different flows of one run apart. */
    snprintf(w->username, sizeof(w->username), "bench%08x%zu%04u",
             w->config->run_id, (size_t)(w->config->flow - bench_flows),
             w->index);
    draw_password(w);
    snprintf(email, sizeof(email), "%s@bench.example", w->username);
    /* Registrations cost an Argon2 hash each: a few at a time keeps auth
     * inside its deadlines while every connection prepares. */
    pthread_once(&prepare_once, prepare_init);
    sem_wait(&prepare_slots);
    ok = register_with_retry(w, email, mode);
    sem_post(&prepare_slots);
    return ok;
}

static bool prepare_http(struct bench_worker *w)
{
    char err[256] = "";
    struct cjc_http_response resp = {0};
    bool ok;

    if (cjc_http_new(w->config->url, &w->http) != CJ_OK) {
        note_error(w, "%s", "cannot create the HTTP transport");
        return false;
    }
    /* One untimed request opens the keep-alive connection. */
    ok = cjc_http_request(w->http, "GET", w->config->path, NULL, 0, NULL, 0,
                          &resp, err, sizeof(err)) == CJ_OK &&
         resp.status == 200;
    if (!ok)
        note_error(w, "first request failed: %s", err[0] ? err : "not 200");
    cjc_http_response_clear(&resp);
    return ok;
}

static enum bench_error step_http(struct bench_worker *w)
{
    char err[256] = "";
    struct cjc_http_response resp = {0};
    enum bench_error e = BENCH_OK;

    if (cjc_http_request(w->http, "GET", w->config->path, NULL, 0, NULL, 0,
                         &resp, err, sizeof(err)) != CJ_OK) {
        note_error(w, "%s", err);
        e = BENCH_ERR_TRANSPORT;
    } else if (resp.status != 200) {
        char status[24];

        snprintf(status, sizeof(status), "%ld", resp.status);
        e = classify_http(resp.status);
        note_error(w, "HTTP status %s instead of 200", status);
    }
    cjc_http_response_clear(&resp);
    return e;
}

static void finish_http(struct bench_worker *w)
{
    cjc_http_free(w->http);
    w->http = NULL;
}

static bool prepare_handshake(struct bench_worker *w)
{
    struct cjc_error err = {0};
    json_t *keys = NULL;

    if (!open_client(w))
        return false;
    /* Fetches and checks the key list once, outside the timed part. */
    if (cjc_keys(w->client, &keys, &err) != CJ_OK) {
        note_error(w, "keys: %s", err.message);
        return false;
    }
    json_decref(keys);
    return true;
}

static enum bench_error step_handshake(struct bench_worker *w)
{
    struct cjc_error err = {0};
    json_t *out = NULL;

    if (cjc_handshake(w->client, &out, &err) != CJ_OK)
        return classify_client(w, &err);
    json_decref(out);
    return BENCH_OK;
}

static bool prepare_stateless_user(struct bench_worker *w)
{
    return open_client(w) && register_user(w, CJC_MODE_STATELESS);
}

static bool prepare_stateful_user(struct bench_worker *w)
{
    return open_client(w) && register_user(w, CJC_MODE_STATEFUL);
}

static enum bench_error login(struct bench_worker *w, enum cjc_mode mode)
{
    struct cjc_error err = {0};
    json_t *out = NULL;

    if (cjc_login(w->client, w->username, w->password, mode, &out, &err) !=
        CJ_OK)
        return classify_client(w, &err);
    json_decref(out);
    return BENCH_OK;
}

static enum bench_error step_login_stateless(struct bench_worker *w)
{
    return login(w, CJC_MODE_STATELESS);
}

static enum bench_error step_login_stateful(struct bench_worker *w)
{
    return login(w, CJC_MODE_STATEFUL);
}

/* Each worker chains its own refresh token: every step presents the token
 * the previous step received, so every request is a valid rotation. */
static enum bench_error step_refresh(struct bench_worker *w)
{
    struct cjc_error err = {0};
    json_t *out = NULL;

    if (cjc_refresh(w->client, &out, &err) != CJ_OK)
        return classify_client(w, &err);
    json_decref(out);
    return BENCH_OK;
}

static enum bench_error me(struct bench_worker *w, enum cjc_mode mode)
{
    struct cjc_error err = {0};
    json_t *out = NULL;
    enum bench_error e = BENCH_OK;

    if (cjc_request(w->client, "GET", "/v1/me", NULL, mode, true, &out, &err) !=
        CJ_OK)
        return classify_client(w, &err);
    if (!json_is_object(out)) {
        note_error(w, "%s", "GET /v1/me returned no object");
        e = BENCH_ERR_CHECK;
    }
    json_decref(out);
    return e;
}

static enum bench_error step_me_stateless(struct bench_worker *w)
{
    return me(w, CJC_MODE_STATELESS);
}

static enum bench_error step_me_stateful(struct bench_worker *w)
{
    return me(w, CJC_MODE_STATEFUL);
}

static void finish_client(struct bench_worker *w)
{
    cjc_client_close(w->client);
    w->client = NULL;
    sodium_memzero(w->password, sizeof(w->password));
}

/* ---- gRPC flows against auth ---- */

static bool open_rpc(struct bench_worker *w)
{
    struct cj_rpc_client_options opts = {0};

    opts.targets = w->config->grpc_target;
    opts.plaintext = true;
    opts.default_timeout_ms = BENCH_RPC_TIMEOUT_MS;
    if (cj_rpc_client_create(&opts, &w->rpc) != CJ_OK) {
        note_error(w, "%s", "cannot create the gRPC client");
        return false;
    }
    return true;
}

static enum bench_error classify_rpc(struct bench_worker *w, enum cj_status rc,
                                     const char *message)
{
    note_error(w, "%s", message[0] ? message : cj_status_name(rc));
    if (rc == CJ_ERR_UNAVAILABLE || rc == CJ_ERR_TIMEOUT)
        return BENCH_ERR_TRANSPORT;
    if (rc == CJ_ERR_RATE_LIMITED)
        return BENCH_ERR_RATE_LIMITED;
    return BENCH_ERR_RPC;
}

static enum bench_error step_grpc_health(struct bench_worker *w)
{
    Grpc__Health__V1__HealthCheckRequest req =
        GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char message[CJ_RPC_CLIENT_ERROR_MAX] = "";
    enum cj_status rc;
    enum bench_error e = BENCH_OK;

    rc =
        cj_rpc_client_call(w->rpc, "/grpc.health.v1.Health/Check", &req.base,
                           &grpc__health__v1__health_check_response__descriptor,
                           NULL, 0, &resp, NULL, message);
    if (rc != CJ_OK)
        return classify_rpc(w, rc, message);
    if (((Grpc__Health__V1__HealthCheckResponse *)resp)->status !=
        GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
        note_error(w, "%s", "auth is not SERVING");
        e = BENCH_ERR_CHECK;
    }
    cj_rpc_message_free(resp);
    return e;
}

static bool prepare_grpc_health(struct bench_worker *w)
{
    return open_rpc(w) && step_grpc_health(w) == BENCH_OK;
}

/* Logs in through the gateway to get an access token of this worker's
 * own, which every Introspect call of the worker then checks. */
static bool prepare_introspect(struct bench_worker *w)
{
    struct cjc_error err = {0};
    json_t *body = NULL;
    json_t *out = NULL;
    const char *token;
    bool ok = false;

    if (!prepare_stateless_user(w) || !open_rpc(w))
        return false;
    body =
        json_pack("{s:s,s:s}", "login", w->username, "password", w->password);
    if (body == NULL)
        goto out;
    if (cjc_request(w->client, "POST", "/v1/login", body, CJC_MODE_STATELESS,
                    false, &out, &err) != CJ_OK) {
        note_error(w, "login: %s", err.message);
        goto out;
    }
    token = json_string_value(json_object_get(out, "access_token"));
    if (token == NULL) {
        note_error(w, "%s", "login returned no access_token");
        goto out;
    }
    w->access_token = strdup(token);
    ok = w->access_token != NULL;

out:
    json_decref(body);
    json_decref(out);
    return ok;
}

static enum bench_error step_introspect(struct bench_worker *w)
{
    Cerrojo__V1__IntrospectRequest req = CERROJO__V1__INTROSPECT_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char message[CJ_RPC_CLIENT_ERROR_MAX] = "";
    enum cj_status rc;
    enum bench_error e = BENCH_OK;

    req.token = w->access_token;
    rc = cj_rpc_client_call(w->rpc, "/cerrojo.v1.Auth/Introspect", &req.base,
                            &cerrojo__v1__introspect_response__descriptor, NULL,
                            0, &resp, NULL, message);
    if (rc != CJ_OK)
        return classify_rpc(w, rc, message);
    if (!((Cerrojo__V1__IntrospectResponse *)resp)->active) {
        note_error(w, "%s", "Introspect returned active=false");
        e = BENCH_ERR_CHECK;
    }
    cj_rpc_message_free(resp);
    return e;
}

static void finish_rpc(struct bench_worker *w)
{
    if (w->access_token != NULL) {
        sodium_memzero(w->access_token, strlen(w->access_token));
        free(w->access_token);
        w->access_token = NULL;
    }
    cj_rpc_client_destroy(w->rpc);
    w->rpc = NULL;
    if (w->client != NULL)
        finish_client(w);
}

/* ---- CPU ceilings: Argon2id, signatures, X25519 ---- */

static bool prepare_argon2(struct bench_worker *w)
{
    struct cj_password_params params = {
        .opslimit = w->config->argon2_passes,
        .memlimit_bytes = w->config->argon2_memory_bytes,
    };

    randombytes_buf(w->password, BENCH_PASSWORD_CHARS);
    for (size_t i = 0; i < BENCH_PASSWORD_CHARS; i++)
        w->password[i] = (char)('a' + (unsigned char)w->password[i] % 26);
    w->password[BENCH_PASSWORD_CHARS] = '\0';
    if (cj_password_params_check(&params) != CJ_OK ||
        cj_password_hasher_new(&params, &w->hasher) != CJ_OK ||
        cj_password_hash(w->hasher, w->password, BENCH_PASSWORD_CHARS,
                         w->stored_hash) != CJ_OK) {
        note_error(w, "%s", "cannot create the Argon2id hasher");
        return false;
    }
    return true;
}

static enum bench_error step_argon2(struct bench_worker *w)
{
    if (cj_password_verify(w->hasher, w->stored_hash, w->password,
                           BENCH_PASSWORD_CHARS) != CJ_OK) {
        note_error(w, "%s", "Argon2id verification failed");
        return BENCH_ERR_CHECK;
    }
    return BENCH_OK;
}

static void finish_argon2(struct bench_worker *w)
{
    cj_password_hasher_free(w->hasher);
    w->hasher = NULL;
    sodium_memzero(w->password, sizeof(w->password));
}

static bool prepare_sign(struct bench_worker *w, enum cj_jwk_alg alg)
{
    randombytes_buf(w->sign_input, sizeof(w->sign_input));
    if (cj_jwk_generate(alg, &w->jwk) != CJ_OK) {
        note_error(w, "%s", "cannot generate the signing key");
        return false;
    }
    return true;
}

static bool prepare_sign_rs256(struct bench_worker *w)
{
    return prepare_sign(w, CJ_JWK_ALG_RS256);
}

static bool prepare_sign_eddsa(struct bench_worker *w)
{
    return prepare_sign(w, CJ_JWK_ALG_EDDSA);
}

static enum bench_error step_sign(struct bench_worker *w)
{
    unsigned char sig[CJ_JWS_SIG_MAX_BYTES];
    size_t sig_len = 0;

    /* Vary the input so no layer can cache a result. */
    w->sign_input[0]++;
    if (cj_jws_sign_raw(w->jwk, w->sign_input, sizeof(w->sign_input), sig,
                        &sig_len) != CJ_OK) {
        note_error(w, "%s", "signing failed");
        return BENCH_ERR_OTHER;
    }
    return BENCH_OK;
}

static void finish_sign(struct bench_worker *w)
{
    cj_jwk_free(w->jwk);
    w->jwk = NULL;
}

static bool prepare_x25519(struct bench_worker *w)
{
    if (cj_x25519_keygen(w->x25519_sk, w->x25519_pk) != CJ_OK) {
        note_error(w, "%s", "X25519 key generation failed");
        return false;
    }
    return true;
}

/* One Diffie-Hellman, what the server side of an HPKE open costs (RFC
 * 9180 DHKEM Decap: one X25519 with the recipient's private key). */
static enum bench_error step_x25519(struct bench_worker *w)
{
    uint8_t shared[CJ_X25519_KEY_LEN];
    enum cj_status rc;

    rc = cj_x25519_dh(shared, w->x25519_sk, w->x25519_pk);
    /* The output is a curve point's u-coordinate: feed it back as the next
     * peer key, so no layer can cache a result. */
    if (rc == CJ_OK)
        memcpy(w->x25519_pk, shared, sizeof(shared));
    sodium_memzero(shared, sizeof(shared));
    if (rc != CJ_OK) {
        note_error(w, "%s", "X25519 failed");
        return BENCH_ERR_OTHER;
    }
    return BENCH_OK;
}

static void finish_x25519(struct bench_worker *w)
{
    sodium_memzero(w->x25519_sk, sizeof(w->x25519_sk));
}

/* ---- Postgres single-row writes ---- */

bool bench_flows_setup(const struct bench_config *config, char *err,
                       size_t err_size)
{
    PGconn *conn;
    PGresult *res;
    bool ok;

    if (!config->flow->needs_pg)
        return true;
    conn = PQconnectdb(config->pg_dsn);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, err_size, "cannot connect to Postgres: %s",
                 PQerrorMessage(conn));
        PQfinish(conn);
        return false;
    }
    res = PQexec(conn, bench_pg_table_sql);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        snprintf(err, err_size, "cannot create bench_scratch: %s",
                 PQerrorMessage(conn));
    PQclear(res);
    if (ok) {
        res = PQexec(conn, "TRUNCATE bench_scratch");
        ok = PQresultStatus(res) == PGRES_COMMAND_OK;
        if (!ok)
            snprintf(err, err_size, "cannot truncate bench_scratch: %s",
                     PQerrorMessage(conn));
        PQclear(res);
    }
    PQfinish(conn);
    return ok;
}

static enum bench_error pg_insert(struct bench_worker *w);

static bool prepare_pg(struct bench_worker *w)
{
    PGresult *res;
    bool ok;

    w->pg = PQconnectdb(w->config->pg_dsn);
    if (PQstatus(w->pg) != CONNECTION_OK) {
        note_error(w, "Postgres: %s", PQerrorMessage(w->pg));
        return false;
    }
    res = PQprepare(w->pg, "bench_insert", bench_pg_insert_sql, 3, NULL);
    ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        note_error(w, "prepare: %s", PQerrorMessage(w->pg));
    PQclear(res);
    return ok;
}

static bool pg_command(struct bench_worker *w, const char *sql)
{
    PGresult *res = PQexec(w->pg, sql);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;

    if (!ok)
        note_error(w, "Postgres: %s", PQerrorMessage(w->pg));
    PQclear(res);
    return ok;
}

/* One single-row INSERT: with --pg-writes 1 it commits on its own, with N
 * above 1 the step is one transaction of N inserts (the shape of a refresh:
 * several row writes and one commit). */
static enum bench_error step_pg(struct bench_worker *w)
{
    unsigned writes = w->config->pg_writes;
    enum bench_error e = BENCH_OK;

    if (writes > 1 && !pg_command(w, "BEGIN"))
        return PQstatus(w->pg) == CONNECTION_OK ? BENCH_ERR_CHECK
                                                : BENCH_ERR_TRANSPORT;
    for (unsigned i = 0; i < writes && e == BENCH_OK; i++)
        e = pg_insert(w);
    if (writes > 1 && !pg_command(w, e == BENCH_OK ? "COMMIT" : "ROLLBACK") &&
        e == BENCH_OK)
        e = PQstatus(w->pg) == CONNECTION_OK ? BENCH_ERR_CHECK
                                             : BENCH_ERR_TRANSPORT;
    return e;
}

static enum bench_error pg_insert(struct bench_worker *w)
{
    char worker[16];
    char seq[24];
    unsigned char payload[BENCH_PG_PAYLOAD_BYTES];
    const char *values[3] = {worker, seq, (const char *)payload};
    int lengths[3] = {0, 0, (int)sizeof(payload)};
    int formats[3] = {0, 0, 1};
    PGresult *res;
    enum bench_error e = BENCH_OK;

    snprintf(worker, sizeof(worker), "%u", w->index);
    snprintf(seq, sizeof(seq), "%llu", (unsigned long long)++w->pg_sequence);
    randombytes_buf(payload, sizeof(payload));
    res = PQexecPrepared(w->pg, "bench_insert", 3, values, lengths, formats, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        note_error(w, "insert: %s", PQerrorMessage(w->pg));
        e = PQstatus(w->pg) == CONNECTION_OK ? BENCH_ERR_CHECK
                                             : BENCH_ERR_TRANSPORT;
    }
    PQclear(res);
    return e;
}

static void finish_pg(struct bench_worker *w)
{
    PQfinish(w->pg);
    w->pg = NULL;
}

const struct bench_flow bench_flows[] = {
    {"http", "GET --path on --url (nginx, JWKS, the one-hop route)", true,
     false, false, true, prepare_http, step_http, finish_http},
    {"handshake", "POST /v1/handshake (stateless seal, new session)", true,
     false, false, false, prepare_handshake, step_handshake, finish_client},
    {"login-stateless", "POST /v1/login without a handshake", true, false,
     false, false, prepare_stateless_user, step_login_stateless, finish_client},
    {"login-stateful", "POST /v1/login with a handshake", true, false, false,
     false, prepare_stateless_user, step_login_stateful, finish_client},
    {"refresh", "POST /v1/refresh, each connection chaining its token", true,
     false, false, false, prepare_stateless_user, step_refresh, finish_client},
    {"me-stateless", "GET /v1/me with the token inside the HPKE seal", true,
     false, false, false, prepare_stateless_user, step_me_stateless,
     finish_client},
    {"me-stateful", "GET /v1/me over the session's epoch keys", true, false,
     false, false, prepare_stateful_user, step_me_stateful, finish_client},
    {"introspect", "auth Introspect over gRPC (--grpc; --url for the token)",
     true, true, false, false, prepare_introspect, step_introspect, finish_rpc},
    {"grpc-health", "grpc.health.v1.Health/Check on --grpc", false, true, false,
     false, prepare_grpc_health, step_grpc_health, finish_rpc},
    {"argon2", "Argon2id verifications through common/password.h", false, false,
     false, false, prepare_argon2, step_argon2, finish_argon2},
    {"sign-rs256", "RS256 (RSA-2048) signatures", false, false, false, false,
     prepare_sign_rs256, step_sign, finish_sign},
    {"sign-eddsa", "EdDSA (Ed25519) signatures", false, false, false, false,
     prepare_sign_eddsa, step_sign, finish_sign},
    {"x25519", "X25519 Diffie-Hellman", false, false, false, false,
     prepare_x25519, step_x25519, finish_x25519},
    {"pg-write", "single-row INSERTs on --pg (--pg-writes per transaction)",
     false, false, true, false, prepare_pg, step_pg, finish_pg},
    {NULL, NULL, false, false, false, false, NULL, NULL, NULL},
};

const struct bench_flow *bench_flow_find(const char *name)
{
    for (const struct bench_flow *f = bench_flows; f->name != NULL; f++) {
        if (strcmp(f->name, name) == 0)
            return f;
    }
    return NULL;
}
