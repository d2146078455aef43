/*
 * The audit queue: a fixed ring of small events and one thread that sends
 * them to auth's RecordAudit.
 */
#include "gw_audit.h"

#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "gw_json.h"
#include "gw_net.h"
#include "log.h"

/* Room for an event name and a route, with the NUL. */
#define GW_AUDIT_NAME_SIZE 64
/* Room for a backend's status message in the log. */
#define GW_AUDIT_DETAIL_CHARS 256

struct gw_audit_event {
    char event[GW_AUDIT_NAME_SIZE];
    char route[GW_AUDIT_NAME_SIZE];
    char client_ip[GW_IP_CHARS];
    char request_id[GW_REQUEST_ID_SIZE];
};

struct gw_audit {
    struct gw_backends *backends;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    struct gw_audit_event ring[GW_AUDIT_QUEUE_MAX];
    size_t head;
    size_t count;
    bool stopping;
    unsigned long long dropped;
};

static const struct gw_rpc gw_record_audit_rpc = {
    GW_BACKEND_AUTH, "/cerrojo.v1.Auth/RecordAudit",
    &cerrojo__v1__record_audit_request__descriptor,
    &cerrojo__v1__record_audit_response__descriptor};

static void gw_audit_send(struct gw_audit *audit,
                          const struct gw_audit_event *ev)
{
    Cerrojo__V1__RecordAuditRequest request =
        CERROJO__V1__RECORD_AUDIT_REQUEST__INIT;
    struct gw_caller caller = {.client_ip = ev->client_ip,
                               .request_id = ev->request_id};
    ProtobufCMessage *response = NULL;
    char detail[GW_AUDIT_DETAIL_CHARS] = "";
    json_t *json = json_pack("{s:s,s:s,s:s}", "route", ev->route, "client_ip",
                             ev->client_ip, "request_id", ev->request_id);
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    grpc_status_code code;

    if (text == NULL) {
        goto out;
    }
    request.event = (char *)ev->event;
    request.detail_json = text;
    code =
        gw_backend_call(audit->backends, &gw_record_audit_rpc, &caller,
                        &request.base, &response, detail, sizeof(detail), NULL);
    if (code != GRPC_STATUS_OK) {
        cj_log(CJ_LOG_WARN, "gateway.audit_failed", ev->request_id,
               CJ_F_STR("audit_event", ev->event),
               CJ_F_INT("grpc_status", code), CJ_F_STR("detail", detail));
    }

out:
    gw_json_message_free(response);
    free(text);
    json_decref(json);
}

static void *gw_audit_main(void *arg)
{
    struct gw_audit *audit = arg;

    pthread_mutex_lock(&audit->lock);
    for (;;) {
        struct gw_audit_event ev;

        while (audit->count == 0 && !audit->stopping) {
            pthread_cond_wait(&audit->ready, &audit->lock);
        }
        if (audit->stopping) {
            /* Each send may wait a whole RPC deadline when auth is down:
             * at shutdown the rest is dropped (every event was logged when
             * it was queued). */
            if (audit->count > 0) {
                cj_log(CJ_LOG_WARN, "gateway.audit_dropped_at_stop", NULL,
                       CJ_F_INT("events", audit->count));
            }
            break;
        }
        ev = audit->ring[audit->head];
        audit->head = (audit->head + 1) % GW_AUDIT_QUEUE_MAX;
        audit->count--;
        pthread_mutex_unlock(&audit->lock);
        gw_audit_send(audit, &ev);
        pthread_mutex_lock(&audit->lock);
    }
    pthread_mutex_unlock(&audit->lock);
    return NULL;
}

struct gw_audit *gw_audit_start(struct gw_backends *backends)
{
    struct gw_audit *audit = calloc(1, sizeof(*audit));

    if (audit == NULL) {
        return NULL;
    }
    audit->backends = backends;
    pthread_mutex_init(&audit->lock, NULL);
    pthread_cond_init(&audit->ready, NULL);
    if (pthread_create(&audit->thread, NULL, gw_audit_main, audit) != 0) {
        pthread_cond_destroy(&audit->ready);
        pthread_mutex_destroy(&audit->lock);
        free(audit);
        return NULL;
    }
    return audit;
}

void gw_audit_stop(struct gw_audit *audit)
{
    if (audit == NULL) {
        return;
    }
    pthread_mutex_lock(&audit->lock);
    audit->stopping = true;
    pthread_cond_signal(&audit->ready);
    pthread_mutex_unlock(&audit->lock);
    pthread_join(audit->thread, NULL);
    pthread_cond_destroy(&audit->ready);
    pthread_mutex_destroy(&audit->lock);
    free(audit);
}

void gw_audit_record(struct gw_audit *audit, const char *event,
                     const char *route, const char *client_ip,
                     const char *request_id)
{
    struct gw_audit_event *slot;
    bool dropped = false;

    cj_log(CJ_LOG_INFO, "gateway.audit_event", request_id,
           CJ_F_STR("audit_event", event), CJ_F_STR("route", route),
           CJ_F_STR("client_ip", client_ip));
    if (audit == NULL) {
        return;
    }
    pthread_mutex_lock(&audit->lock);
    if (audit->count == GW_AUDIT_QUEUE_MAX || audit->stopping) {
        audit->dropped++;
        dropped = true;
    } else {
        slot = &audit->ring[(audit->head + audit->count) % GW_AUDIT_QUEUE_MAX];
        snprintf(slot->event, sizeof(slot->event), "%s", event);
        snprintf(slot->route, sizeof(slot->route), "%s", route);
        snprintf(slot->client_ip, sizeof(slot->client_ip), "%s", client_ip);
        snprintf(slot->request_id, sizeof(slot->request_id), "%s", request_id);
        audit->count++;
        pthread_cond_signal(&audit->ready);
    }
    pthread_mutex_unlock(&audit->lock);
    if (dropped) {
        cj_log(CJ_LOG_WARN, "gateway.audit_dropped", request_id,
               CJ_F_STR("audit_event", event));
    }
}

unsigned long long gw_audit_dropped(const struct gw_audit *audit)
{
    return audit != NULL ? __atomic_load_n(&audit->dropped, __ATOMIC_RELAXED)
                         : 0;
}
