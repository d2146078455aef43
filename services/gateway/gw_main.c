/*
 * cerrojo-gateway: reads the settings, starts the HTTP servers, waits for
 * SIGINT or SIGTERM and shuts down.
 */
#include <jansson.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_help.h"
#include "config.h"
#include "crypto_util.h"
#include "gw_audit.h"
#include "gw_context.h"
#include "gw_http.h"
#include "gw_jwks.h"
#include "gw_limits.h"
#include "gw_rate_lease.h"
#include "gw_redis.h"
#include "gw_routes.h"
#include "gw_settings.h"
#include "log.h"
#include "proc_threads.h"

/* Frees jansson's memory after wiping it: parsed request bodies hold
 * passwords and tokens in clear. */
static void gw_json_free_wiped(void *ptr)
{
    if (ptr != NULL) {
        explicit_bzero(ptr, malloc_usable_size(ptr));
        free(ptr);
    }
}

static void gw_usage(FILE *out)
{
    fputs("usage: cerrojo-gateway [--print-config|--help]\n"
          "The HTTP front of cerrojo. Settings come from the environment,\n"
          "after a .env file (CERROJO_ENV_FILE, default ./.env):\n",
          out);
    gw_settings_print_help(out);
}

/*
 * Names a command-line argument that the gateway does not take, then
 * prints the usage. The gateway has no healthcheck command, because its
 * health is an HTTP route, so that case names the route.
 */
static void gw_report_bad_arguments(int argc, char **argv)
{
    if (argc > 2) {
        fprintf(stderr, "cerrojo-gateway: unexpected argument '%s'\n", argv[2]);
    } else if (strcmp(argv[1], "healthcheck") == 0) {
        fprintf(stderr, "cerrojo-gateway: unknown command 'healthcheck'; "
                        "the gateway's health check is GET /healthz (or "
                        "/readyz for its dependencies) on its HTTP port\n");
    } else {
        fprintf(stderr, "cerrojo-gateway: unknown command '%s'\n", argv[1]);
    }
    gw_usage(stderr);
}

/* Loads the OpenAPI file into memory; absent is fine (404), too large or
 * unreadable is logged and treated as absent. */
static void gw_load_openapi(struct gw_context *ctx)
{
    FILE *f = fopen(ctx->settings->openapi_file, "rb");
    char *buf = NULL;
    size_t len;

    if (f == NULL) {
        cj_log(CJ_LOG_INFO, "gateway.openapi_absent", NULL,
               CJ_F_STR("file", ctx->settings->openapi_file));
        return;
    }
    buf = malloc(GW_OPENAPI_BYTES_MAX + 1);
    if (buf == NULL) {
        goto out;
    }
    len = fread(buf, 1, GW_OPENAPI_BYTES_MAX + 1, f);
    if (ferror(f) || len > GW_OPENAPI_BYTES_MAX) {
        cj_log(CJ_LOG_WARN, "gateway.openapi_unreadable", NULL,
               CJ_F_STR("file", ctx->settings->openapi_file),
               CJ_F_INT("bytes_max", GW_OPENAPI_BYTES_MAX));
        goto out;
    }
    buf[len] = '\0';
    ctx->openapi = buf;
    ctx->openapi_len = len;
    buf = NULL;

out:
    free(buf);
    fclose(f);
}

int main(int argc, char **argv)
{
    static struct gw_settings settings;
    struct gw_context ctx = {.settings = &settings};
    struct gw_http *http = NULL;
    char err[CJ_CONFIG_ERROR_MAX] = "";
    sigset_t signals;
    int signal_number = 0;
    int exit_code = EXIT_FAILURE;

    /* As in the other services: --help or -h alone or after a command. */
    if (cj_cli_help_requested(
            argc, argv, argc > 1 && strcmp(argv[1], "--print-config") == 0)) {
        gw_usage(stdout);
        return EXIT_SUCCESS;
    }
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--print-config") != 0)) {
        gw_report_bad_arguments(argc, argv);
        return 2;
    }
    if (cj_openssl_skip_error_strings() != CJ_OK) {
        fprintf(stderr, "cerrojo-gateway: OpenSSL failed to initialize\n");
        return EXIT_FAILURE;
    }
    cj_log_init("gateway", CJ_LOG_INFO);
    json_set_alloc_funcs(malloc, gw_json_free_wiped);
    if (cj_config_load_env_file(err, sizeof(err)) != CJ_OK) {
        fprintf(stderr, "cerrojo-gateway: %s\n", err);
        return 2;
    }
    /* --print-config runs the settings checks of the start first, so that
     * a setting that stops the start fails here with the same message. */
    if (gw_settings_load(&settings, err, sizeof(err)) != CJ_OK ||
        gw_settings_check_files(&settings, err, sizeof(err)) != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "gateway.settings_invalid", NULL,
               CJ_F_STR("detail", err));
        fprintf(stderr, "cerrojo-gateway: %s\n", err);
        return 2;
    }
    if (argc == 2) { /* --print-config */
        (void)gw_settings_warn_unknown();
        if (gw_settings_print(stdout, err, sizeof(err)) != CJ_OK) {
            fprintf(stderr, "cerrojo-gateway: %s\n", err);
            return 2;
        }
        return EXIT_SUCCESS;
    }
    cj_log_init("gateway", settings.log_level);
    (void)gw_settings_warn_unknown();
    gw_routes_enable_bench(settings.bench_route);
    if (settings.bench_route) {
        cj_log(CJ_LOG_WARN, "gateway.bench_route_enabled", NULL,
               CJ_F_STR("path", "/v1/bench/ping"));
    }

    /* Block the stop signals in every thread; main waits for them. */
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    gw_load_openapi(&ctx);
    ctx.backends = gw_backends_new(&settings);
    if (ctx.backends == NULL) {
        goto out;
    }
    if (gw_redis_new(settings.redis_addr, &ctx.redis) != CJ_OK) {
        cj_log(CJ_LOG_ERROR, "gateway.redis_invalid", NULL,
               CJ_F_STR("address", settings.redis_addr));
        goto out;
    }
    gw_redis_set_clock_offset_max(ctx.redis,
                                  settings.redis_clock_offset_max_ms);
    gw_backends_set_redis_probe(ctx.backends, gw_redis_probe, ctx.redis);
    ctx.leases = gw_rate_leases_new();
    ctx.jwks = gw_jwks_cache_new(ctx.backends, settings.jwks_refresh_seconds);
    ctx.audit = gw_audit_start(ctx.backends);
    if (ctx.leases == NULL || ctx.jwks == NULL || ctx.audit == NULL ||
        gw_backends_start_probes(ctx.backends) != CJ_OK ||
        gw_jwks_start_refresh(ctx.jwks) != CJ_OK) {
        goto out;
    }
    http = gw_http_start(&ctx);
    if (http == NULL) {
        goto out;
    }
    cj_log(CJ_LOG_INFO, "gateway.started", NULL,
           CJ_F_STR("profile", gw_profile_name(settings.profile)),
           CJ_F_STR("host", settings.http_host),
           CJ_F_INT("port", settings.http_port),
           CJ_F_INT("admin_port", settings.admin_port));
    sigwait(&signals, &signal_number);
    cj_log(CJ_LOG_INFO, "gateway.stopping", NULL,
           CJ_F_INT("signal", signal_number));
    exit_code = EXIT_SUCCESS;

out:
    gw_http_stop(http);
    gw_audit_stop(ctx.audit);
    gw_jwks_cache_free(ctx.jwks);
    gw_backends_free(ctx.backends);
    gw_rate_leases_free(ctx.leases);
    gw_redis_free(ctx.redis);
    free(ctx.openapi);
    /* The gRPC core's detached threads end first, because OpenSSL's exit
     * handler must not run beside them. */
    (void)cj_proc_wait_alone(CJ_PROC_EXIT_WAIT_MS);
    cj_log(CJ_LOG_INFO, "gateway.stopped", NULL,
           CJ_F_INT("exit_code", exit_code));
    return exit_code;
}
