/* SQL on auth.audit_events: appends, and deletes past retention. */
#include "auth_store.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>

#include "auth_store_rows.h"

/* Empty strings become SQL NULL, so absent context stays absent. */
static struct cj_db_param optional_text(const char *value)
{
    if (value == NULL || value[0] == '\0') {
        return CJ_DB_NULL;
    }
    return CJ_DB_TEXT(value);
}

/*
 * An address that is not an IPv4 or IPv6 literal is stored as NULL rather
 * than failing the insert, because the event matters more than the address.
 */
static struct cj_db_param ip_param(const char *value)
{
    unsigned char addr[sizeof(struct in6_addr)];

    if (value == NULL || (inet_pton(AF_INET, value, addr) != 1 &&
                          inet_pton(AF_INET6, value, addr) != 1)) {
        return CJ_DB_NULL;
    }
    return CJ_DB_TEXT(value);
}

void auth_audit_params(const struct auth_audit_event *event,
                       struct cj_db_param out[AUTH_AUDIT_PARAM_COUNT])
{
    out[0] = CJ_DB_TEXT(event->event);
    out[1] = optional_text(event->user_id);
    out[2] = optional_text(event->session_hash);
    out[3] = ip_param(event->client_ip);
    out[4] = optional_text(event->user_agent);
    out[5] = optional_text(event->request_id);
    out[6] = optional_text(event->detail_json);
}

enum cj_status auth_store_audit_insert(struct cj_db_conn *conn,
                                       const struct auth_audit_event *event)
{
    struct cj_db_param params[AUTH_AUDIT_PARAM_COUNT];

    auth_audit_params(event, params);
    return cj_db_query(conn, AUTH_AUDIT_INSERT_SQL, params,
                       AUTH_AUDIT_PARAM_COUNT, false, NULL);
}

enum cj_status auth_store_audit_delete_old(struct cj_db_conn *conn,
                                           long long retention_days,
                                           long long limit, unsigned *count)
{
    static const char sql[] =
        "DELETE FROM auth.audit_events WHERE id IN (SELECT id FROM "
        "auth.audit_events WHERE occurred_at < now() - make_interval(days => "
        "$1::integer) ORDER BY occurred_at LIMIT $2::integer)";
    char days[AUTH_INT_PARAM_SIZE];
    char limit_text[AUTH_INT_PARAM_SIZE];
    const struct cj_db_param params[] = {
        CJ_DB_TEXT(auth_int_param(days, sizeof(days), retention_days)),
        CJ_DB_TEXT(auth_int_param(limit_text, sizeof(limit_text), limit)),
    };
    PGresult *res = NULL;
    enum cj_status rc;

    *count = 0;
    rc = cj_db_query(conn, sql, params, 2, false, &res);
    if (rc == CJ_OK) {
        *count = (unsigned)strtoul(PQcmdTuples(res), NULL, 10);
    }
    PQclear(res);
    return rc;
}
