/*
 * cerrojo-kms: keeps every long-term private key; wraps and unwraps user
 * data keys, signs tokens, opens HPKE-sealed requests and publishes the
 * public keys. This file reads the command line and settings, runs the
 * gRPC server until SIGTERM or SIGINT, or runs one key-lifecycle command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "cli_help.h"
#include "crypto_util.h"
#include "kms_lifecycle.h"
#include "kms_rpc.h"
#include "kms_service.h"
#include "log.h"
#include "metrics.h"
#include "proc_threads.h"
#include "rpc_service.h"

#define KMS_METRICS_ADDRESS "127.0.0.1"
/*
 * OpenSSL's secure heap, where RSA and EC private keys keep their secret
 * numbers (locked, guarded memory). A key set of a few dozen keys, loaded
 * twice during a reload, needs well under a tenth of it.
 */
#define KMS_SECURE_HEAP_BYTES     (1u << 20)
#define KMS_SECURE_HEAP_MIN_BYTES 32

/* Exit statuses: 0 success, 1 the command failed, 2 usage or settings, 3 a
 * command that is not due yet (promote too early). */
#define KMS_EXIT_FAILED  1
#define KMS_EXIT_USAGE   2
#define KMS_EXIT_NOT_DUE 3

/* Printed when the configured root key does not open the stored keys. */
#define KMS_ROOT_KEY_MISMATCH                                                  \
    "the stored keys do not open with the configured root key; after "         \
    "rewrap-root, point CERROJO_KMS_ROOT_KEY_FILE (or CERROJO_KMS_ROOT_KEY) "  \
    "at the new root key"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: cerrojo-kms [COMMAND]\n"
        "  serve                 run the gRPC server (default)\n"
        "  healthcheck           call the server's own Health/Check\n"
        "  --print-config        print the settings (secrets redacted)\n"
        "key lifecycle (run with the kms database role, never over RPC):\n"
        "  rotate signing|hpke|kek|keylist\n"
        "                        add a new key: a next signing key, a new\n"
        "                        active HPKE key, KEK version or key-list\n"
        "                        signer\n"
        "  promote               activate the next signing key once it has\n"
        "                        been published for CERROJO_KMS_PROMOTE_AFTER\n"
        "  retire signing|hpke|keylist\n"
        "                        drop the waiting next signing key, end the\n"
        "                        acceptance window of retired HPKE keys, or\n"
        "                        stop signing with the previous key-list "
        "signer\n"
        "  destroy-expired       destroy keys nothing can use any more\n"
        "  destroy-signing KID   destroy a leaked signing key now; an active\n"
        "                        one is replaced by the next or a new key\n"
        "  rewrap-root FILE      re-wrap every stored key under the root key\n"
        "                        in FILE (32 random bytes in base64)\n"
        "settings: see --print-config; gRPC: CERROJO_KMS_LISTEN, "
        "CERROJO_TLS_CA,\n"
        "  CERROJO_KMS_TLS_CERT, CERROJO_KMS_TLS_KEY, CERROJO_GRPC_PLAINTEXT "
        "(dev only)\n");
}

/* Loads the .env file, the profile and the configuration, and sets the
 * log level. Returns false after printing why. */
static bool load_config(struct kms_config *cfg, enum cj_profile *profile)
{
    char err[CJ_CONFIG_ERROR_MAX] = "";
    enum cj_log_level level = CJ_LOG_INFO;

    if (cj_config_load(kms_config_options, kms_config_option_count, profile,
                       cfg, err, sizeof(err)) != CJ_OK ||
        kms_config_check(cfg, err, sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-kms: %s\n", err);
        return false;
    }
    if (!cj_log_level_parse(cfg->log_level, &level)) {
        fprintf(stderr,
                "cerrojo-kms: CERROJO_LOG_LEVEL: expected debug, info, warn "
                "or error, got '%s'\n",
                cfg->log_level);
        return false;
    }
    cj_log_init("kms", level);
    (void)cj_config_warn_unknown(KMS_ENV_PREFIX "_", kms_config_options,
                                 kms_config_option_count);
    return true;
}

/*
 * Runs the settings checks of the start that need neither Postgres nor a
 * key generated for dev (the gRPC settings and TLS files, the root key),
 * then prints the settings. Returns the exit status.
 */
static int print_config(const struct kms_config *cfg, enum cj_profile profile)
{
    char err[CJ_CONFIG_ERROR_MAX] = "";
    struct kms_root_key_source root = {
        .file_path = cfg->root_key_file,
        .value = cfg->root_key,
        .allow_generated = profile == CJ_PROFILE_DEV,
        .profile = profile,
    };

    /* The root key is read into sodium_malloc memory. */
    if (cj_crypto_init() != CJ_OK) {
        fprintf(stderr, "cerrojo-kms: libsodium failed to initialize\n");
        return KMS_EXIT_FAILED;
    }
    if (cj_rpc_settings_check_files(&cfg->grpc, profile, KMS_ENV_PREFIX, err,
                                    sizeof(err)) != CJ_OK ||
        kms_root_key_check(&root, err, sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-kms: %s\n", err);
        return KMS_EXIT_USAGE;
    }
    cj_config_dump(kms_config_options, kms_config_option_count, profile, cfg,
                   stdout);
    return 0;
}

/* Runs the gRPC and metrics servers and the reloader until a signal. */
static int run_server(struct kms_service *svc, const sigset_t *signals)
{
    struct cj_rpc_server_options options;
    struct cj_rpc_service service;
    struct cj_rpc_server *server = NULL;
    struct cj_metrics_server *metrics = NULL;
    int rc = KMS_EXIT_FAILED;

    kms_rpc_service_init(&service, svc);
    cj_rpc_settings_server_options(&svc->cfg.grpc, &options);
    /* Handlers past the grace may wait on Postgres, which gRPC cannot
     * cancel. */
    options.on_grace_expired = cj_db_pool_cancel_hook;
    options.on_grace_expired_arg = svc->pool;
    if (cj_rpc_server_create(&service, &options, &server) != CJ_OK)
        goto start_failed;
    /* Before calls are taken: a port that another process still uses
     * after the wait fails the start, since Prometheus would scrape that
     * process under this one's labels. */
    if (cj_metrics_server_start(svc->registry, KMS_METRICS_ADDRESS,
                                (uint16_t)svc->cfg.metrics_port,
                                &metrics) != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "kms.metrics_unavailable", NULL,
               CJ_F_INT("port", svc->cfg.metrics_port));
        fprintf(stderr,
                "cerrojo-kms: cannot listen on the metrics port %lld "
                "(CERROJO_KMS_METRICS_PORT); the metrics.port_still_busy or "
                "metrics.listen_failed log line gives the cause. Stop the "
                "process that holds the port or set another port\n",
                (long long)svc->cfg.metrics_port);
        goto out;
    }
    if (cj_rpc_server_start(server) != CJ_OK)
        goto start_failed;
    svc->server = server;
    kms_service_check_clock(svc);
    if (kms_service_start_reloader(svc) != CJ_OK)
        goto out;
    cj_log(CJ_LOG_INFO, "kms.started", NULL,
           CJ_F_INT("port", cj_rpc_server_port(server)),
           CJ_F_STR("profile", cj_profile_name(svc->profile)));
    int sig = cj_rpc_server_wait_signal(signals);
    cj_log(CJ_LOG_INFO, "kms.stopping", NULL, CJ_F_INT("signal", sig));
    rc = 0;
    goto out;
start_failed:
    fprintf(stderr,
            "cerrojo-kms: cannot start the gRPC server on %s "
            "(CERROJO_KMS_LISTEN)\n",
            svc->cfg.grpc.listen);
out:
    /* Calls end first. Then the reloader's statement is cancelled, so
     * that a reload stuck behind a lock cannot hold the exit up to the
     * statement timeout. */
    if (server != NULL)
        cj_rpc_server_shutdown(server);
    cj_db_pool_cancel(svc->pool);
    kms_service_stop_reloader(svc);
    svc->server = NULL;
    cj_rpc_server_destroy(server);
    cj_metrics_server_stop(metrics);
    return rc;
}

static int serve(struct kms_service *svc, const sigset_t *signals)
{
    char err[CJ_CONFIG_ERROR_MAX] = "";

    if (cj_rpc_settings_check_files(&svc->cfg.grpc, svc->profile,
                                    KMS_ENV_PREFIX, err,
                                    sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-kms: %s\n", err);
        return KMS_EXIT_USAGE;
    }
    enum cj_status st = kms_bootstrap(&svc->lifecycle);
    if (st == CJ_ERR_CRYPTO) {
        fprintf(stderr, "cerrojo-kms: %s\n", KMS_ROOT_KEY_MISMATCH);
        return KMS_EXIT_FAILED;
    }
    if (st != CJ_OK) {
        fprintf(stderr,
                "cerrojo-kms: creating the first keys failed; is "
                "Postgres up and migrated (CERROJO_KMS_DATABASE_URL)?\n");
        return KMS_EXIT_FAILED;
    }
    if (kms_service_reload(svc) != CJ_OK) {
        fprintf(stderr, "cerrojo-kms: the stored keys do not load; a wrong "
                        "root key (CERROJO_KMS_ROOT_KEY_FILE or "
                        "CERROJO_KMS_ROOT_KEY)?\n");
        return KMS_EXIT_FAILED;
    }
    return run_server(svc, signals);
}

/* Starts OpenSSL's secure heap before any private key is loaded. */
static void start_secure_heap(void)
{
    int rc = CRYPTO_secure_malloc_init(KMS_SECURE_HEAP_BYTES,
                                       KMS_SECURE_HEAP_MIN_BYTES);

    if (rc == 0)
        cj_log(CJ_LOG_WARN, "kms.secure_heap_unavailable", NULL,
               CJ_F_STR("effect", "RSA and EC private keys use the ordinary "
                                  "heap"));
    else if (rc == 2)
        cj_log(CJ_LOG_WARN, "kms.secure_heap_not_locked", NULL,
               CJ_F_STR("effect", "the secure heap may be swapped out; "
                                  "raise RLIMIT_MEMLOCK"));
}

/*
 * Maps a lifecycle status to an exit status, with a one-line message.
 * detail explains CJ_ERR_NOT_FOUND or CJ_ERR_EXISTS, the two statuses whose
 * cause depends on the command.
 */
static int report(const char *command, enum cj_status st, const char *detail)
{
    if (st == CJ_OK)
        return 0;
    if (st == CJ_ERR_NOT_FOUND)
        fprintf(stderr, "cerrojo-kms %s: failed: %s\n", command, detail);
    else if (st == CJ_ERR_EXISTS)
        fprintf(stderr, "cerrojo-kms %s: failed: %s\n", command, detail);
    else if (st == CJ_ERR_CRYPTO)
        fprintf(stderr, "cerrojo-kms %s: failed: %s\n", command,
                KMS_ROOT_KEY_MISMATCH);
    else if (st == CJ_ERR_UNAVAILABLE)
        /* The key commands reach nothing but Postgres. */
        fprintf(stderr,
                "cerrojo-kms %s: failed: Postgres is unreachable; check "
                "CERROJO_KMS_DATABASE_URL and that Postgres runs\n",
                command);
    else
        fprintf(stderr, "cerrojo-kms %s: failed (%s)\n", command,
                cj_status_name(st));
    return KMS_EXIT_FAILED;
}

#define KMS_NO_NEXT_SIGNING_KEY                                                \
    "no next signing key is waiting; run `cerrojo-kms rotate signing` first"

/* Size of a UTC time as format_utc writes it, with its terminator. */
#define KMS_UTC_TIME_SIZE 32

/* Writes Unix time t as an ISO 8601 UTC time, or as the number when it
 * does not convert. */
static void format_utc(int64_t t, char when[KMS_UTC_TIME_SIZE])
{
    struct tm tm;
    time_t seconds = (time_t)t;

    if (gmtime_r(&seconds, &tm) == NULL ||
        strftime(when, KMS_UTC_TIME_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(when, KMS_UTC_TIME_SIZE, "%lld", (long long)t);
}

/*
 * Prints which signing key is active after a promote, when running
 * replicas sign with it, and when destroy-expired removes the retired
 * one.
 */
static void print_promoted(const struct kms_service *svc, const char *kid,
                           const char *previous)
{
    printf("signing key %s is active; running kms replicas sign with it "
           "after their next key-set reload, within "
           "CERROJO_KMS_RELOAD_INTERVAL (%lld s).",
           kid, (long long)svc->cfg.reload_s);
    if (previous[0] != '\0')
        printf(" The previous key %s is retired and stays in the JWKS until "
               "its last token has expired. Next: `cerrojo-kms "
               "destroy-expired` destroys it after that and once "
               "CERROJO_KMS_SETTLE (%lld s) has passed",
               previous, (long long)svc->cfg.settle_s);
    printf("\n");
}

static int run_promote(struct kms_service *svc)
{
    int64_t ready_at = 0;
    char kid[KMS_KID_MAX + 1] = "";
    char previous[KMS_KID_MAX + 1] = "";
    enum cj_status st = kms_promote(&svc->lifecycle, kid, previous, &ready_at);
    char when[KMS_UTC_TIME_SIZE] = "";

    if (st == CJ_OK)
        print_promoted(svc, kid, previous);
    if (st != CJ_ERR_PRECONDITION)
        return report("promote", st, KMS_NO_NEXT_SIGNING_KEY);
    format_utc(ready_at, when);
    fprintf(stderr,
            "cerrojo-kms promote: not due yet: the next signing key can be "
            "promoted from %s, CERROJO_KMS_PROMOTE_AFTER after its rotation\n",
            when);
    return KMS_EXIT_NOT_DUE;
}

/* Prints what a successful retire changed. */
static void print_retired(const struct kms_service *svc,
                          enum kms_purpose purpose, unsigned count,
                          const char *key)
{
    if (purpose == KMS_PURPOSE_SIGNING)
        printf("retired the next signing key %s without promoting it; the "
               "active key keeps signing. Next: `cerrojo-kms rotate signing` "
               "starts a new rotation, and `cerrojo-kms destroy-expired` "
               "destroys %s once CERROJO_KMS_SETTLE (%lld s) has passed\n",
               key, key, (long long)svc->cfg.settle_s);
    else if (purpose == KMS_PURPOSE_KEYLIST)
        printf("destroyed the previous key-list signer %s; the key list now "
               "carries the active signer's signature only\n",
               key);
    else if (count == 0)
        printf("no retired HPKE key still opened requests; nothing changed\n");
    else
        printf("ended the acceptance window of %u retired HPKE keys. Running "
               "kms replicas still open requests sealed to them until their "
               "next key-set reload, within CERROJO_KMS_RELOAD_INTERVAL "
               "(%lld s); restart every kms replica to end that at once\n",
               count, (long long)svc->cfg.reload_s);
}

static int run_retire(struct kms_service *svc, enum kms_purpose purpose)
{
    unsigned count = 0;
    char key[KMS_KID_MAX + 1] = "";
    enum cj_status st = kms_retire(&svc->lifecycle, purpose, &count, key);
    const char *not_found = purpose == KMS_PURPOSE_SIGNING
                                ? KMS_NO_NEXT_SIGNING_KEY
                                : "no previous key-list signer exists";

    if (st == CJ_OK)
        print_retired(svc, purpose, count, key);
    return report("retire", st, not_found);
}

static int run_rewrap_root(struct kms_service *svc, const char *path)
{
    char err[KMS_ROOT_KEY_ERROR_MAX] = "";
    struct kms_root_key *new_root = NULL;
    unsigned count = 0;

    if (kms_root_key_read_file(path, svc->profile, &new_root, err,
                               sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-kms rewrap-root: %s\n", err);
        return KMS_EXIT_USAGE;
    }
    enum cj_status st =
        kms_rewrap_root(&svc->lifecycle, new_root->bytes, &count);
    kms_root_key_free(new_root);
    if (st == CJ_OK)
        printf("re-wrapped %u keys; point CERROJO_KMS_ROOT_KEY_FILE at %s "
               "and restart every kms replica\n",
               count, path);
    return report("rewrap-root", st, "no such key");
}

/* Returns the message for a rotation that finds the previous one still
 * open, naming the command that ends it. */
static const char *rotation_open_message(enum kms_purpose purpose)
{
    if (purpose == KMS_PURPOSE_KEYLIST)
        return "the previous key-list signer is still in use; run "
               "`cerrojo-kms retire keylist` first";
    return "a next signing key is already waiting; run `cerrojo-kms promote` "
           "once it is due, or drop it with `cerrojo-kms retire signing`, "
           "then rotate again";
}

/*
 * Prints when a new KEK takes effect and what to run next. Running
 * replicas keep wrapping new data keys under the old version until their
 * next reload; RewrapKey loads the new version itself.
 */
static void print_kek_next_steps(const struct kms_service *svc,
                                 const char *version)
{
    printf("KEK version %s is active. Running kms replicas wrap new data "
           "keys under it after their next key-set reload, within "
           "CERROJO_KMS_RELOAD_INTERVAL (%lld s).\n"
           "Next: run `cerrojo-auth rewrap-keys` (kms loads the new version "
           "for it) and check that it prints `kek version %s` and "
           "`failures 0`; then `cerrojo-kms destroy-expired` destroys the old "
           "version once CERROJO_KMS_SETTLE (%lld s) has passed.\n",
           version, (long long)svc->cfg.reload_s, version,
           (long long)svc->cfg.settle_s);
}

/*
 * Prints the new next signing key and from when promote accepts it. The
 * time comes from this host's clock, while promote checks Postgres's, so
 * it is approximate. A promote run too early prints the exact time.
 */
static void print_signing_next_steps(const struct kms_service *svc,
                                     const char *kid)
{
    char when[KMS_UTC_TIME_SIZE] = "";

    format_utc(kms_now() + svc->cfg.promote_after_s, when);
    printf("signing key %s is next: published now, signing nothing yet. "
           "Next: run `cerrojo-kms promote` from about %s "
           "(CERROJO_KMS_PROMOTE_AFTER, %lld s) to make it active\n",
           kid, when, (long long)svc->cfg.promote_after_s);
}

/*
 * Prints when GET /v1/keys lists a new HPKE key, how long the previous one
 * still opens requests and from when destroy-expired destroys it, which
 * is never before its acceptance window ends.
 */
static void print_hpke_next_steps(const struct kms_service *svc,
                                  const char *key_id)
{
    int64_t accept_s = kms_hpke_accept_s(&svc->cfg);
    int64_t destroy_s = (int64_t)svc->cfg.hpke_destroy_s;

    if (destroy_s < accept_s)
        destroy_s = accept_s;
    printf("HPKE key %s is active; GET /v1/keys lists it once it is %lld s "
           "old (twice CERROJO_KMS_RELOAD_INTERVAL). The previous key still "
           "opens requests for %lld s. Next: `cerrojo-kms destroy-expired` "
           "destroys it once %lld s have passed\n",
           key_id, (long long)kms_hpke_publish_after_s(&svc->cfg),
           (long long)accept_s, (long long)destroy_s);
}

static void print_rotated(const struct kms_service *svc,
                          enum kms_purpose purpose, const char *new_key)
{
    if (purpose == KMS_PURPOSE_SIGNING)
        print_signing_next_steps(svc, new_key);
    else if (purpose == KMS_PURPOSE_HPKE)
        print_hpke_next_steps(svc, new_key);
    else if (purpose == KMS_PURPOSE_KEK)
        print_kek_next_steps(svc, new_key);
    else
        printf("key-list signer %s is active; the previous signer signs a "
               "second copy of the key list. Next: once every client pins "
               "%s, run `cerrojo-kms retire keylist`\n",
               new_key, new_key);
}

static int run_rotate(struct kms_service *svc, enum kms_purpose purpose)
{
    char new_key[KMS_KID_MAX + 1] = "";
    enum cj_status st = kms_rotate(&svc->lifecycle, purpose, new_key);

    if (st == CJ_OK)
        print_rotated(svc, purpose, new_key);
    return report("rotate", st, rotation_open_message(purpose));
}

/* Prints what destroy-signing changed and which key signs now. */
static void print_signing_destroyed(const struct kms_service *svc,
                                    const char *kid,
                                    const struct kms_signing_destroy *result)
{
    if (result->already_destroyed)
        printf("signing key %s is already destroyed; nothing changed. The "
               "active signing key is %s\n",
               kid, result->active_kid);
    else if (result->was_active)
        printf("destroyed signing key %s; %s is the active signing key now, "
               "and running kms replicas sign with it after their next "
               "key-set reload, within CERROJO_KMS_RELOAD_INTERVAL (%lld s). "
               "Next: restart each gateway and auth to drop %s from their "
               "JWKS at once\n",
               kid, result->active_kid, (long long)svc->cfg.reload_s, kid);
    else
        printf("destroyed signing key %s; the active signing key %s is "
               "unchanged. Next: restart each gateway and auth to drop %s "
               "from their JWKS at once\n",
               kid, result->active_kid, kid);
}

static int run_destroy_signing(struct kms_service *svc, const char *kid)
{
    struct kms_signing_destroy result;
    enum cj_status st = kms_destroy_signing(&svc->lifecycle, kid, &result);

    if (st == CJ_OK)
        print_signing_destroyed(svc, kid, &result);
    return report("destroy-signing", st, "no signing key has this kid");
}

/* Prints what destroy-expired destroyed, and why each retired KEK stays. */
static void print_destroy_report(const struct kms_service *svc,
                                 const struct kms_destroy_report *destroyed)
{
    printf("destroyed: hpke %u, signing %u, kek %u\n", destroyed->hpke,
           destroyed->signing, destroyed->kek);
    for (size_t i = 0; i < destroyed->n_kept_keks; i++) {
        const struct kms_kept_kek *kek = &destroyed->kept_keks[i];

        printf("kept: kek version %u", (unsigned)kek->version);
        if (kek->users > 0)
            printf(", users whose data key it wraps: %u (run "
                   "`cerrojo-auth rewrap-keys`)",
                   kek->users);
        if (!kek->settled)
            printf(", retired less than CERROJO_KMS_SETTLE (%lld s) ago",
                   (long long)svc->cfg.settle_s);
        printf("\n");
    }
}

/* Runs a lifecycle command that check_arguments has accepted. */
static int run_command(struct kms_service *svc, char **argv)
{
    const char *command = argv[1];
    enum kms_purpose purpose;
    struct kms_destroy_report destroyed;

    if (strcmp(command, "rotate") == 0 || strcmp(command, "retire") == 0) {
        if (!kms_purpose_parse(argv[2], &purpose))
            return KMS_EXIT_USAGE;
        if (strcmp(command, "rotate") == 0)
            return run_rotate(svc, purpose);
        return run_retire(svc, purpose);
    }
    if (strcmp(command, "promote") == 0)
        return run_promote(svc);
    if (strcmp(command, "destroy-expired") == 0) {
        enum cj_status st = kms_destroy_expired(&svc->lifecycle, &destroyed);
        if (st == CJ_OK)
            print_destroy_report(svc, &destroyed);
        return report(command, st, "no such key");
    }
    if (strcmp(command, "destroy-signing") == 0)
        return run_destroy_signing(svc, argv[2]);
    return run_rewrap_root(svc, argv[2]);
}

/* A command of the binary, its argument count and the expected argument. */
struct kms_command {
    const char *name;
    int n_args;
    const char *arg_name;
};

static const struct kms_command kms_commands[] = {
    {"serve", 0, NULL},
    {"healthcheck", 0, NULL},
    {"--print-config", 0, NULL},
    {"rotate", 1, "signing, hpke, kek or keylist"},
    {"promote", 0, NULL},
    {"retire", 1, "signing, hpke or keylist"},
    {"destroy-expired", 0, NULL},
    {"destroy-signing", 1, "the kid of the signing key"},
    {"rewrap-root", 1, "the file of the new root key"},
};

/* Checks the purpose argument of rotate and retire. */
static bool purpose_valid(const char *command, const char *arg)
{
    enum kms_purpose purpose;

    if (!kms_purpose_parse(arg, &purpose))
        return false;
    return strcmp(command, "retire") != 0 || purpose != KMS_PURPOSE_KEK;
}

/* Returns the command named name, or NULL when there is none. */
static const struct kms_command *find_command(const char *name)
{
    for (size_t i = 0; i < sizeof(kms_commands) / sizeof(kms_commands[0]);
         i++) {
        if (strcmp(name, kms_commands[i].name) == 0)
            return &kms_commands[i];
    }
    return NULL;
}

/*
 * Checks the command line before settings and Postgres are touched, so
 * that a typing error gets a message that names it. Prints that message
 * and the usage on failure.
 */
static bool check_arguments(int argc, char **argv)
{
    const char *command = argc > 1 ? argv[1] : "serve";
    const struct kms_command *found = NULL;

    /* No command at all means serve. */
    if (argc <= 1)
        return true;
    found = find_command(command);
    if (found == NULL) {
        fprintf(stderr, "cerrojo-kms: unknown command '%s'\n", command);
    } else if (argc > 2 + found->n_args) {
        fprintf(stderr, "cerrojo-kms %s: unexpected argument '%s'\n", command,
                argv[2 + found->n_args]);
    } else if (argc < 2 + found->n_args) {
        fprintf(stderr, "cerrojo-kms %s: missing argument: expected %s\n",
                command, found->arg_name);
    } else if ((strcmp(command, "rotate") == 0 ||
                strcmp(command, "retire") == 0) &&
               !purpose_valid(command, argv[2])) {
        fprintf(stderr,
                "cerrojo-kms %s: invalid key purpose '%s': expected %s\n",
                command, argv[2], found->arg_name);
    } else {
        return true;
    }
    usage(stderr);
    return false;
}

/*
 * Returns false, with a message, when the kms migrations of this build are
 * missing, so that neither serve nor a key command reads tables that are
 * not there. When the check itself fails (Postgres unreachable), serve or
 * the command reports that failure in its own words.
 */
static bool schema_current(struct kms_service *svc, const char *command)
{
    char missing[KMS_SCHEMA_MISSING_MAX];

    if (kms_schema_check(&svc->lifecycle, missing, sizeof(missing)) !=
        CJ_ERR_PRECONDITION)
        return true;
    fprintf(stderr,
            "cerrojo-kms %s: the database of CERROJO_KMS_DATABASE_URL lacks "
            "the kms migrations %s; run `cerrojo-migrate up` first\n",
            command, missing);
    return false;
}

int main(int argc, char **argv)
{
    struct kms_service svc;
    struct kms_config cfg;
    enum cj_profile profile = CJ_PROFILE_DEV;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    sigset_t signals;
    const char *command = argc > 1 ? argv[1] : "serve";
    int rc = KMS_EXIT_USAGE;

    if (cj_openssl_skip_error_strings() != CJ_OK) {
        fprintf(stderr, "cerrojo-kms: OpenSSL failed to initialize\n");
        return KMS_EXIT_FAILED;
    }
    /* Before any thread exists, so that only sigwait receives the signals. */
    cj_rpc_signals_block(&signals);
    memset(&svc, 0, sizeof(svc));
    memset(&cfg, 0, sizeof(cfg));
    if (cj_cli_help_requested(argc, argv,
                              argc > 1 && find_command(argv[1]) != NULL)) {
        usage(stdout);
        cj_config_print_help(kms_config_options, kms_config_option_count,
                             stdout);
        cj_metrics_print_help(stdout);
        return 0;
    }
    if (!check_arguments(argc, argv))
        goto out;
    if (!load_config(&cfg, &profile))
        goto out;
    if (strcmp(command, "healthcheck") == 0) {
        rc = cj_rpc_healthcheck("cerrojo-kms", &cfg.grpc);
        goto out;
    }
    if (strcmp(command, "--print-config") == 0) {
        rc = print_config(&cfg, profile);
        goto out;
    }
    rc = KMS_EXIT_FAILED;
    start_secure_heap();
    if (cj_crypto_init() != CJ_OK) {
        fprintf(stderr, "cerrojo-kms: libsodium failed to initialize\n");
        goto out;
    }
    if (kms_service_init(&svc, profile, &cfg, err, sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-kms: %s\n", err);
        rc = KMS_EXIT_USAGE;
        goto out;
    }
    if (!schema_current(&svc, command))
        rc = KMS_EXIT_FAILED;
    else if (strcmp(command, "serve") == 0)
        rc = serve(&svc, &signals);
    else
        rc = run_command(&svc, argv);
out:
    kms_service_free(&svc);
    cj_config_free(kms_config_options, kms_config_option_count, &cfg);
    /* The gRPC core's detached threads end first, because OpenSSL's exit
     * handler must not run beside them. */
    (void)cj_proc_wait_alone(CJ_PROC_EXIT_WAIT_MS);
    return rc;
}
