/*
 * GetProfile, GetData and PutData. The user always comes from the caller
 * context. Private and protected values go through the user's data key,
 * which kms unwraps for this one request and which is wiped after it.
 * Protected data is served only on the stateful channel, and every access
 * is audited.
 */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "auth_audit.h"
#include "auth_data_crypto.h"
#include "auth_flows.h"
#include "auth_ids.h"
#include "auth_remote.h"
#include "auth_store.h"
#include "crypto_util.h"
#include "deadline.h"
#include "log.h"
#include "rpc_message.h"

/* Limits of user data; the schema checks the first two as well. */
#define DATA_FIELD_NAME_MAX     64
#define DATA_VALUE_MAX_BYTES    4096
#define DATA_FIELDS_PER_PUT_MAX 32
#define DATA_FIELDS_PER_USER    64

/* Returns true for 1 to 64 characters of [a-z0-9_]. */
static bool field_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > DATA_FIELD_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
    }
    return true;
}

static enum cj_status require_user(struct auth_call *call)
{
    if (!auth_uuid_valid(call->caller->user_id)) {
        auth_call_error(call, "this call needs an authenticated caller");
        return CJ_ERR_UNAUTHENTICATED;
    }
    return CJ_OK;
}

static enum cj_status class_from_proto(struct auth_call *call,
                                       Cerrojo__V1__DataClass proto,
                                       enum auth_data_class *out)
{
    switch (proto) {
    case CERROJO__V1__DATA_CLASS__DATA_CLASS_PUBLIC:
        *out = AUTH_DATA_PUBLIC;
        return CJ_OK;
    case CERROJO__V1__DATA_CLASS__DATA_CLASS_PRIVATE:
        *out = AUTH_DATA_PRIVATE;
        return CJ_OK;
    case CERROJO__V1__DATA_CLASS__DATA_CLASS_PROTECTED:
        if (call->caller->channel != CJ_CHANNEL_STATEFUL) {
            auth_call_error(call, "protected data needs the stateful channel");
            return CJ_ERR_PERMISSION;
        }
        *out = AUTH_DATA_PROTECTED;
        return CJ_OK;
    default:
        break;
    }
    auth_call_error(call, "class must be public, private or protected");
    return CJ_ERR_INVALID;
}

/* A growing list of map entries for a UserData or Profile reply. */
struct entry_list {
    void **items;
    size_t count;
};

/* Appends one key/value entry of the given map-entry message type. */
static enum cj_status entry_add(struct entry_list *list,
                                const ProtobufCMessageDescriptor *type,
                                const char *key, const char *value,
                                size_t value_len)
{
    /* Map entries of both replies share this layout. */
    Cerrojo__V1__UserData__FieldsEntry *entry = malloc(type->sizeof_message);
    void **grown = realloc(list->items, (list->count + 1) * sizeof(void *));

    if (grown != NULL) {
        list->items = grown;
    }
    if (entry == NULL || grown == NULL) {
        free(entry);
        return CJ_ERR_NOMEM;
    }
    type->message_init((ProtobufCMessage *)entry);
    entry->key = strdup(key);
    entry->value = strndup(value, value_len);
    list->items[list->count++] = entry;
    if (entry->key == NULL || entry->value == NULL) {
        return CJ_ERR_NOMEM;
    }
    return CJ_OK;
}

static enum cj_status load_user(struct auth_service *svc,
                                struct auth_call *call, struct cj_db_conn *conn,
                                struct auth_user *user)
{
    enum cj_status rc = auth_store_user_get(conn, call->caller->user_id, user);

    if (rc == CJ_ERR_NOT_FOUND ||
        (rc == CJ_OK && user->status != AUTH_USER_ACTIVE)) {
        auth_call_error(call, "unknown or disabled user");
        rc = CJ_ERR_UNAUTHENTICATED;
    }
    (void)svc;
    return rc;
}

/* Sets the reply for a user whose row delete-user removed while this
 * request ran: the credential names no user any more. */
static enum cj_status user_deleted_error(struct auth_call *call)
{
    cj_log(CJ_LOG_INFO, "auth.data_user_deleted", call->request_id,
           CJ_F_STR("user_id", call->caller->user_id));
    auth_call_error(call, "unknown or disabled user");
    return CJ_ERR_UNAUTHENTICATED;
}

/*
 * Unwraps the user's data key. kms rejects the request once delete-user
 * has forgotten the key, so a rejection for a user whose row is gone is
 * that deletion and not a kms fault.
 */
static enum cj_status decrypt_user_key(struct auth_service *svc,
                                       struct auth_call *call,
                                       struct cj_db_conn *conn,
                                       const struct auth_user *user,
                                       uint8_t key[AUTH_USER_KEY_SIZE])
{
    struct auth_user current;
    enum cj_status rc =
        auth_kms_decrypt_key(svc, call->request_id, user->id, user->wrapped_key,
                             user->wrapped_key_len, key);

    if (rc == CJ_OK || rc == CJ_ERR_UNAVAILABLE || rc == CJ_ERR_TIMEOUT) {
        return auth_remote_call_error(call, AUTH_REMOTE_KMS, rc);
    }
    if (auth_store_user_get(conn, user->id, &current) == CJ_ERR_NOT_FOUND) {
        return user_deleted_error(call);
    }
    cj_wipe(current.password_hash, sizeof(current.password_hash));
    return auth_remote_call_error(call, AUTH_REMOTE_KMS, rc);
}

/* Reads every field of a class into list, decrypting when needed. */
static enum cj_status read_fields(
    struct auth_service *svc, struct auth_call *call, struct cj_db_conn *conn,
    const struct auth_user *user, enum auth_data_class cls,
    const ProtobufCMessageDescriptor *entry_type, struct entry_list *list)
{
    struct auth_data_field *plain = NULL;
    struct auth_sealed_field *sealed = NULL;
    size_t count = 0;
    uint8_t key[AUTH_USER_KEY_SIZE];
    uint8_t *value = NULL;
    enum cj_status rc;

    if (cls == AUTH_DATA_PUBLIC) {
        rc = auth_store_public_get(conn, user->id, &plain, &count);
        for (size_t i = 0; rc == CJ_OK && i < count; i++) {
            rc = entry_add(list, entry_type, plain[i].name, plain[i].value,
                           strlen(plain[i].value));
        }
        auth_data_fields_free(plain, count);
        return rc;
    }

    rc = auth_store_sealed_get(conn, cls, user->id, &sealed, &count);
    if (rc != CJ_OK || count == 0) {
        goto out;
    }
    rc = decrypt_user_key(svc, call, conn, user, key);
    for (size_t i = 0; rc == CJ_OK && i < count; i++) {
        size_t len = sealed[i].ciphertext_len - CJ_AEAD_TAG_LEN;

        value = malloc(len + 1);
        if (value == NULL) {
            rc = CJ_ERR_NOMEM;
            break;
        }
        rc = auth_data_open(key, user->id, cls, sealed[i].name, sealed[i].nonce,
                            sealed[i].nonce_len, sealed[i].ciphertext,
                            sealed[i].ciphertext_len, value);
        if (rc == CJ_OK) {
            rc = entry_add(list, entry_type, sealed[i].name,
                           (const char *)value, len);
        } else {
            cj_log(CJ_LOG_ERROR, "auth.data_decrypt_failed", call->request_id,
                   CJ_F_STR("user_id", user->id),
                   CJ_F_STR("class", auth_data_class_name(cls)),
                   CJ_F_STR("field", sealed[i].name));
            auth_call_error(call, "stored data could not be decrypted");
        }
        cj_wipe(value, len);
        free(value);
        value = NULL;
    }
out:
    cj_wipe(key, sizeof(key));
    auth_sealed_fields_free(sealed, count);
    return rc;
}

static void entry_list_free(struct entry_list *list)
{
    for (size_t i = 0; i < list->count; i++) {
        cj_rpc_message_free(list->items[i]);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* Builds a UserData reply from the class's stored fields. */
static enum cj_status
build_user_data(struct auth_service *svc, struct auth_call *call,
                struct cj_db_conn *conn, const struct auth_user *user,
                enum auth_data_class cls, Cerrojo__V1__UserData **out)
{
    struct entry_list list = {0};
    Cerrojo__V1__UserData *data;
    enum cj_status rc;

    rc = read_fields(svc, call, conn, user, cls,
                     &cerrojo__v1__user_data__fields_entry__descriptor, &list);
    if (rc != CJ_OK) {
        entry_list_free(&list);
        return rc;
    }
    data = malloc(sizeof(*data));
    if (data == NULL) {
        entry_list_free(&list);
        return CJ_ERR_NOMEM;
    }
    cerrojo__v1__user_data__init(data);
    data->class_ = (Cerrojo__V1__DataClass)cls;
    data->fields = (Cerrojo__V1__UserData__FieldsEntry **)list.items;
    data->n_fields = list.count;
    *out = data;
    return CJ_OK;
}

enum cj_status auth_get_data(struct auth_service *svc, struct auth_call *call,
                             const Cerrojo__V1__GetDataRequest *req,
                             Cerrojo__V1__UserData **out)
{
    struct auth_user user;
    enum auth_data_class cls = AUTH_DATA_PUBLIC;
    struct cj_db_conn *conn = NULL;
    enum cj_status rc;

    *out = NULL;
    rc = require_user(call);
    if (rc == CJ_OK) {
        rc = class_from_proto(call, req->class_, &cls);
    }
    if (rc == CJ_OK) {
        rc = auth_db_acquire_for(svc, call, &conn);
    }
    if (rc != CJ_OK) {
        return rc;
    }
    rc = load_user(svc, call, conn, &user);
    if (rc == CJ_OK) {
        rc = build_user_data(svc, call, conn, &user, cls, out);
    }
    if (rc == CJ_OK && cls == AUTH_DATA_PROTECTED) {
        rc = auth_audit_write(
            conn, call, AUTH_EVENT_PROTECTED_READ, user.id,
            call->caller->session_id,
            json_pack("{s:i}", "fields", (int)(*out)->n_fields));
        if (rc != CJ_OK) {
            /* No audit record, no protected data. */
            cj_rpc_message_free(&(*out)->base);
            *out = NULL;
        }
    }
    cj_wipe(user.password_hash, sizeof(user.password_hash));
    cj_db_release(conn);
    return rc;
}

/* Checks the fields of a PutData request. */
static enum cj_status check_put(struct auth_call *call,
                                const Cerrojo__V1__PutDataRequest *req)
{
    if (req->n_fields == 0) {
        auth_call_error(call, "fields is empty");
        return CJ_ERR_INVALID;
    }
    if (req->n_fields > DATA_FIELDS_PER_PUT_MAX) {
        auth_call_error(call, "at most %d fields per request",
                        DATA_FIELDS_PER_PUT_MAX);
        return CJ_ERR_INVALID;
    }
    for (size_t i = 0; i < req->n_fields; i++) {
        const Cerrojo__V1__PutDataRequest__FieldsEntry *f = req->fields[i];

        if (!field_name_valid(f->key)) {
            auth_call_error(call,
                            "field names are 1 to 64 characters of a-z, 0-9 "
                            "and _");
            return CJ_ERR_INVALID;
        }
        if (strlen(f->value) > DATA_VALUE_MAX_BYTES) {
            auth_call_error(call, "field '%s' is longer than %d bytes", f->key,
                            DATA_VALUE_MAX_BYTES);
            return CJ_ERR_INVALID;
        }
    }
    return CJ_OK;
}

/* Writes one field: empty values delete, others are stored or sealed. */
static enum cj_status write_field(struct cj_db_conn *conn,
                                  const struct auth_user *user,
                                  enum auth_data_class cls, const uint8_t *key,
                                  const char *name, const char *value)
{
    size_t len = strlen(value);
    uint8_t nonce[CJ_AEAD_NONCE_LEN];
    uint8_t *sealed = NULL;
    enum cj_status rc;

    if (cls == AUTH_DATA_PUBLIC) {
        return auth_store_public_put(conn, user->id, name,
                                     len == 0 ? NULL : value);
    }
    if (len == 0) {
        return auth_store_sealed_put(conn, cls, user->id, name, NULL, 0, NULL,
                                     0);
    }
    sealed = malloc(len + CJ_AEAD_TAG_LEN);
    if (sealed == NULL) {
        return CJ_ERR_NOMEM;
    }
    rc = auth_data_seal(key, user->id, cls, name, (const uint8_t *)value, len,
                        nonce, sealed);
    if (rc == CJ_OK) {
        rc =
            auth_store_sealed_put(conn, cls, user->id, name, nonce,
                                  sizeof(nonce), sealed, len + CJ_AEAD_TAG_LEN);
    }
    free(sealed);
    return rc;
}

/*
 * Rejects the PUT when the class now has more than DATA_FIELDS_PER_USER
 * fields and more than before, its count before the PUT's writes. A PUT
 * that keeps or lowers the count passes even above the limit.
 * So a class that concurrent PUTs pushed over the limit, before PUTs took
 * the class lock, can still be updated and brought back under it.
 */
static enum cj_status check_class_limit(struct auth_call *call,
                                        struct cj_db_conn *conn,
                                        const struct auth_user *user,
                                        enum auth_data_class cls,
                                        long long before)
{
    long long after = 0;
    enum cj_status rc = auth_store_data_count(conn, cls, user->id, &after);

    if (rc == CJ_OK && after > DATA_FIELDS_PER_USER && after > before) {
        auth_call_error(call, "at most %d fields per class",
                        DATA_FIELDS_PER_USER);
        rc = CJ_ERR_INVALID;
    }
    return rc;
}

static enum cj_status
write_fields(struct auth_service *svc, struct auth_call *call,
             struct cj_db_conn *conn, const struct auth_user *user,
             enum auth_data_class cls, const Cerrojo__V1__PutDataRequest *req)
{
    uint8_t key[AUTH_USER_KEY_SIZE];
    long long before = 0;
    json_t *names;
    enum cj_status rc = CJ_OK;

    if (cls != AUTH_DATA_PUBLIC) {
        rc = decrypt_user_key(svc, call, conn, user, key);
    }
    if (rc == CJ_OK) {
        rc = cj_db_begin(conn);
    }
    /* Without the lock, concurrent PUTs of one class would each count only
     * their own new rows, because read committed shows no uncommitted rows
     * of other transactions. */
    if (rc == CJ_OK) {
        rc = auth_store_data_lock(conn, cls, user->id);
    }
    if (rc == CJ_OK) {
        rc = auth_store_data_count(conn, cls, user->id, &before);
    }
    for (size_t i = 0; rc == CJ_OK && i < req->n_fields; i++) {
        rc = write_field(conn, user, cls, key, req->fields[i]->key,
                         req->fields[i]->value);
    }
    if (rc == CJ_OK) {
        rc = check_class_limit(call, conn, user, cls, before);
    }
    if (rc == CJ_OK && cls == AUTH_DATA_PROTECTED) {
        names = json_array();
        for (size_t i = 0; i < req->n_fields; i++) {
            json_array_append_new(names, json_string(req->fields[i]->key));
        }
        rc = auth_audit_write(conn, call, AUTH_EVENT_PROTECTED_WRITE, user->id,
                              call->caller->session_id,
                              json_pack("{s:o}", "fields", names));
    }
    if (rc == CJ_OK && auth_call_caller_gone(call)) {
        /* The gateway has sent its 503 already. A write committed anyway
         * could land after a newer one that the client sent as its retry. */
        cj_log(CJ_LOG_WARN, "auth.data_write_abandoned", call->request_id,
               CJ_F_STR("user_id", user->id),
               CJ_F_STR("class", auth_data_class_name(cls)),
               CJ_F_INT("margin_ms", AUTH_COMMIT_MARGIN_MS),
               CJ_F_BOOL("cancelled", auth_call_cancelled(call)));
        auth_call_error(call, "the call was cancelled or its deadline passed "
                              "before the write was committed; nothing was "
                              "written");
        rc = CJ_ERR_TIMEOUT;
    }
    if (rc == CJ_OK) {
        rc = cj_db_commit(conn);
    }
    /* A field row references the user row, which delete-user may have
     * removed after load_user read it. */
    if (rc != CJ_OK &&
        strcmp(cj_db_last_sqlstate(conn), CJ_DB_SQLSTATE_FOREIGN_KEY) == 0) {
        rc = user_deleted_error(call);
    }
    if (rc != CJ_OK) {
        auth_db_abort(conn);
    }
    cj_wipe(key, sizeof(key));
    return rc;
}

/*
 * Takes this process's lock on the caller's class before the PUT borrows a
 * connection. Without it, a burst of one user's PUTs to one class would
 * park every pooled connection on the Postgres advisory lock, and every
 * other request of this process would wait for a connection behind them.
 */
static enum cj_status class_lock_enter(struct auth_service *svc,
                                       struct auth_call *call,
                                       enum auth_data_class cls,
                                       struct auth_data_lock_entry **out)
{
    int64_t wait_ms = AUTH_DATA_LOCK_WAIT_MAX_MS;
    const char *reason = NULL;
    enum cj_status rc;

    if (call->deadline_ms != 0) {
        wait_ms = call->deadline_ms - cj_monotonic_ms();
    }
    rc = auth_data_lock_enter(&svc->data_locks, call->caller->user_id, cls,
                              wait_ms, out, &reason);
    if (rc == CJ_ERR_UNAVAILABLE) {
        call->retry_after_s = AUTH_DATA_LOCK_RETRY_AFTER_S;
        auth_metrics_inc(svc->m.data_write_refused, reason);
        cj_log(CJ_LOG_WARN, "auth.data_write_refused", call->request_id,
               CJ_F_STR("reason", reason),
               CJ_F_STR("user_id", call->caller->user_id),
               CJ_F_STR("class", auth_data_class_name(cls)));
        auth_call_error(call,
                        "earlier writes to this data class are still "
                        "running; retry after %d s",
                        AUTH_DATA_LOCK_RETRY_AFTER_S);
    }
    return rc;
}

enum cj_status auth_put_data(struct auth_service *svc, struct auth_call *call,
                             const Cerrojo__V1__PutDataRequest *req,
                             Cerrojo__V1__UserData **out)
{
    struct auth_user user;
    enum auth_data_class cls = AUTH_DATA_PUBLIC;
    struct auth_data_lock_entry *class_lock = NULL;
    struct cj_db_conn *conn = NULL;
    enum cj_status rc;

    *out = NULL;
    memset(&user, 0, sizeof(user));
    rc = require_user(call);
    if (rc == CJ_OK) {
        rc = class_from_proto(call, req->class_, &cls);
    }
    if (rc == CJ_OK) {
        rc = check_put(call, req);
    }
    if (rc == CJ_OK) {
        rc = class_lock_enter(svc, call, cls, &class_lock);
    }
    if (rc == CJ_OK) {
        rc = auth_db_acquire_for(svc, call, &conn);
    }
    if (rc == CJ_OK) {
        rc = load_user(svc, call, conn, &user);
    }
    if (rc == CJ_OK) {
        rc = write_fields(svc, call, conn, &user, cls, req);
    }
    if (rc == CJ_OK) {
        rc = build_user_data(svc, call, conn, &user, cls, out);
    }
    cj_wipe(user.password_hash, sizeof(user.password_hash));
    cj_db_release(conn);
    auth_data_lock_leave(&svc->data_locks, class_lock);
    return rc;
}

enum cj_status auth_get_profile(struct auth_service *svc,
                                struct auth_call *call,
                                Cerrojo__V1__Profile **out)
{
    struct auth_user_public user;
    struct entry_list list = {0};
    struct cj_db_conn *conn = NULL;
    Cerrojo__V1__Profile *profile = NULL;
    enum cj_status rc;

    *out = NULL;
    memset(&user, 0, sizeof(user));
    rc = require_user(call);
    if (rc == CJ_OK) {
        rc = auth_db_acquire_for(svc, call, &conn);
    }
    if (rc != CJ_OK) {
        return rc;
    }
    /* One query for the user row and its public data. */
    rc = auth_store_user_public_get(conn, call->caller->user_id, &user);
    cj_db_release(conn);
    if (rc == CJ_ERR_NOT_FOUND ||
        (rc == CJ_OK && user.status != AUTH_USER_ACTIVE)) {
        auth_call_error(call, "unknown or disabled user");
        rc = CJ_ERR_UNAUTHENTICATED;
    }
    for (size_t i = 0; rc == CJ_OK && i < user.count; i++) {
        rc = entry_add(&list,
                       &cerrojo__v1__profile__public_data_entry__descriptor,
                       user.fields[i].name, user.fields[i].value,
                       strlen(user.fields[i].value));
    }
    auth_data_fields_free(user.fields, user.count);
    if (rc == CJ_OK) {
        profile = malloc(sizeof(*profile));
        rc = profile != NULL ? CJ_OK : CJ_ERR_NOMEM;
    }
    if (rc != CJ_OK) {
        entry_list_free(&list);
        return rc;
    }
    cerrojo__v1__profile__init(profile);
    profile->public_data = (Cerrojo__V1__Profile__PublicDataEntry **)list.items;
    profile->n_public_data = list.count;
    profile->user_id = strdup(call->caller->user_id);
    profile->username = strdup(user.username);
    profile->email = strdup(user.email);
    profile->created_at_ms = user.created_at_ms;
    if (profile->user_id == NULL || profile->username == NULL ||
        profile->email == NULL) {
        cj_rpc_message_free(&profile->base);
        return CJ_ERR_NOMEM;
    }
    *out = profile;
    return CJ_OK;
}
