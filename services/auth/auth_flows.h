/*
 * The flows behind each Auth RPC. Each takes the service, the call
 * context and the unpacked request. On CJ_OK it sets *out to a reply the
 * framework frees. On failure it leaves *out NULL, and call->error holds a
 * message for the client that names what failed.
 */
#ifndef AUTH_FLOWS_H
#define AUTH_FLOWS_H

#include "auth_service.h"
#include "cerrojo/v1/auth.pb-c.h"

/* Size of a handshake secret, bytes. */
#define AUTH_CLIENT_SECRET_SIZE 32

/* Client message of a register, login or refresh on a stateful session
 * that is bound to another user (ALREADY_EXISTS). */
#define AUTH_SESSION_OTHER_USER                                                \
    "the session is bound to another user; open a new session"

/*
 * Checks the client_secret of a register or login: empty, or 32 bytes on
 * the stateless channel. A stateful request binds the session it came on,
 * so a secret there, which would open a second session, is rejected.
 * CJ_ERR_INVALID with call->error set otherwise.
 */
CJ_WARN_UNUSED enum cj_status
auth_client_secret_check(struct auth_call *call,
                         const ProtobufCBinaryData *client_secret);

CJ_WARN_UNUSED enum cj_status
auth_register(struct auth_service *svc, struct auth_call *call,
              const Cerrojo__V1__RegisterRequest *req,
              Cerrojo__V1__TokenSet **out);

CJ_WARN_UNUSED enum cj_status auth_login(struct auth_service *svc,
                                         struct auth_call *call,
                                         const Cerrojo__V1__LoginRequest *req,
                                         Cerrojo__V1__TokenSet **out);

CJ_WARN_UNUSED enum cj_status
auth_refresh(struct auth_service *svc, struct auth_call *call,
             const Cerrojo__V1__RefreshRequest *req,
             Cerrojo__V1__TokenSet **out);

CJ_WARN_UNUSED enum cj_status auth_logout(struct auth_service *svc,
                                          struct auth_call *call,
                                          const Cerrojo__V1__LogoutRequest *req,
                                          Cerrojo__V1__LogoutResponse **out);

CJ_WARN_UNUSED enum cj_status auth_get_profile(struct auth_service *svc,
                                               struct auth_call *call,
                                               Cerrojo__V1__Profile **out);

CJ_WARN_UNUSED enum cj_status
auth_get_data(struct auth_service *svc, struct auth_call *call,
              const Cerrojo__V1__GetDataRequest *req,
              Cerrojo__V1__UserData **out);

CJ_WARN_UNUSED enum cj_status
auth_put_data(struct auth_service *svc, struct auth_call *call,
              const Cerrojo__V1__PutDataRequest *req,
              Cerrojo__V1__UserData **out);

CJ_WARN_UNUSED enum cj_status
auth_record_audit(struct auth_service *svc, struct auth_call *call,
                  const Cerrojo__V1__RecordAuditRequest *req,
                  Cerrojo__V1__RecordAuditResponse **out);

CJ_WARN_UNUSED enum cj_status
auth_introspect(struct auth_service *svc, struct auth_call *call,
                const Cerrojo__V1__IntrospectRequest *req,
                Cerrojo__V1__IntrospectResponse **out);

/*
 * Opens the session a successful register or login asks for: with a
 * handshake secret, creates a session and binds it to user_id (*created
 * true, *info its SessionInfo); without one, on a stateful request, binds
 * the session the request came in on. Fills session_id ("" for none).
 */
CJ_WARN_UNUSED enum cj_status
auth_session_open_for(struct auth_service *svc, struct auth_call *call,
                      const ProtobufCBinaryData *client_secret,
                      const char *user_id, char *session_id,
                      size_t session_id_size, bool *created,
                      Cerrojo__V1__SessionInfo **info);

/* Deletes a session this request created, after a later failure. */
void auth_session_discard(struct auth_service *svc, struct auth_call *call,
                          const char *session_id);

#endif
