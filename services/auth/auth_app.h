/* Building and tearing down the process state of cerrojo-auth. */
#ifndef AUTH_APP_H
#define AUTH_APP_H

#include "auth_service.h"

/*
 * Opens everything the flows use from svc->cfg (already loaded): the
 * password hasher and policy, the Postgres and Redis pools, the kms and
 * session clients, the metrics registry. On failure logs which part and
 * leaves svc for auth_app_close.
 */
CJ_WARN_UNUSED enum cj_status auth_app_open(struct auth_service *svc);

/* Frees what auth_app_open created; safe on a partly opened svc. */
void auth_app_close(struct auth_service *svc);

#endif
