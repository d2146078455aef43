/*
 * Every SQL statement of cerrojo-auth, grouped by table: users
 * (auth_store_users.c), refresh tokens (auth_store_tokens.c), user data
 * (auth_store_data.c), revocations and audit events (auth_store_audit.c),
 * and the login throttle's key (auth_store_throttle.c).
 * Each function runs explicit parameterized SQL on a borrowed connection;
 * transactions are the caller's.
 */
#ifndef AUTH_STORE_H
#define AUTH_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "db.h"
#include "status.h"

/* A UUID in its canonical text form, with the NUL. */
#define AUTH_UUID_TEXT_SIZE 37
/* libsodium's crypto_pwhash_STRBYTES. */
#define AUTH_PASSWORD_HASH_SIZE 128
/* Wrapped data keys are at most this long (checked by the schema too). */
#define AUTH_WRAPPED_KEY_MAX 1024
#define AUTH_USERNAME_MAX    256
#define AUTH_EMAIL_MAX       256
/* Session ids are 22 characters of base64url; the caller context allows
 * ids of up to 128 bytes. */
#define AUTH_SESSION_ID_MAX 128
/* A refresh token's SHA-256. */
#define AUTH_TOKEN_HASH_SIZE 32

enum auth_user_status {
    AUTH_USER_ACTIVE = 0,
    AUTH_USER_DISABLED,
};

struct auth_user {
    char id[AUTH_UUID_TEXT_SIZE];
    char username[AUTH_USERNAME_MAX + 1];
    char email[AUTH_EMAIL_MAX + 1];
    char password_hash[AUTH_PASSWORD_HASH_SIZE];
    unsigned char wrapped_key[AUTH_WRAPPED_KEY_MAX];
    size_t wrapped_key_len;
    uint32_t kek_version;
    enum auth_user_status status;
    int64_t created_at_ms;
    /* Time of the latest logout of all devices in Unix ms, or 0 if none. */
    int64_t sessions_revoked_at_ms;
    /* True when password_hash is of the password's NFKC form, false for
     * a hash of the exact bytes, made before passwords were normalized. */
    bool password_normalized;
};

/* A new user's row; every string borrowed. */
struct auth_user_new {
    const char *id;
    const char *username;
    const char *username_norm;
    const char *username_skeleton;
    const char *email;
    const char *email_norm;
    const char *password_hash;
    const unsigned char *wrapped_key;
    size_t wrapped_key_len;
    uint32_t kek_version;
};

/* Unique name an insert or check collided with. */
enum auth_name_conflict {
    AUTH_CONFLICT_NONE = 0,
    AUTH_CONFLICT_USERNAME, /* same normalized form or same skeleton */
    AUTH_CONFLICT_EMAIL,
};

/*
 * Finds whether a username (by normalized form or skeleton) or an email
 * is taken, so register can fail before calling kms. The unique indexes
 * remain the authority under concurrency.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_user_check_names(struct cj_db_conn *conn, const char *username_norm,
                            const char *skeleton, const char *email_norm,
                            enum auth_name_conflict *conflict);

/* Inserts a user; CJ_ERR_EXISTS with *conflict set on a unique name. */
CJ_WARN_UNUSED enum cj_status
auth_store_user_insert(struct cj_db_conn *conn,
                       const struct auth_user_new *user,
                       enum auth_name_conflict *conflict);

/* Loads the user whose normalized username or email is login_norm. */
CJ_WARN_UNUSED enum cj_status
auth_store_user_find_by_login(struct cj_db_conn *conn, const char *login_norm,
                              struct auth_user *out);

/* Loads a user by id; CJ_ERR_NOT_FOUND when there is none. */
CJ_WARN_UNUSED enum cj_status auth_store_user_get(struct cj_db_conn *conn,
                                                  const char *user_id,
                                                  struct auth_user *out);

/*
 * Replaces the password hash and records whether it is of the NFKC form
 * (rehash after a parameter change or to normalize an older hash).
 */
CJ_WARN_UNUSED enum cj_status
auth_store_user_set_password_hash(struct cj_db_conn *conn, const char *user_id,
                                  const char *password_hash, bool normalized);

/*
 * Records revoked_at_ms as the time of the user's latest logout of all
 * devices, unless a later one is already recorded.
 */
CJ_WARN_UNUSED enum cj_status auth_store_user_set_sessions_revoked(
    struct cj_db_conn *conn, const char *user_id, int64_t revoked_at_ms);

/*
 * Replaces a user's wrapped key only if it still equals old_wrapped, so a
 * concurrent re-wrap never overwrites a newer one. *updated is true when
 * the row changed.
 */
CJ_WARN_UNUSED enum cj_status auth_store_user_replace_wrapped_key(
    struct cj_db_conn *conn, const char *user_id,
    const unsigned char *old_wrapped, size_t old_len,
    const unsigned char *new_wrapped, size_t new_len, uint32_t kek_version,
    bool *updated);

/*
 * Lists up to `limit` users with id greater than after_id ("" for the
 * first page), ordered by id, for the re-wrap job. Fills out[0..*count).
 */
CJ_WARN_UNUSED enum cj_status
auth_store_user_list_after(struct cj_db_conn *conn, const char *after_id,
                           struct auth_user *out, size_t limit, size_t *count);

/* Deletes the user with this id, and by cascade its data fields and
 * refresh tokens; *deleted is false when there was no such row. */
CJ_WARN_UNUSED enum cj_status auth_store_user_delete(struct cj_db_conn *conn,
                                                     const char *user_id,
                                                     bool *deleted);

/*
 * Sets *recorded when auth has a record that this user id was deleted:
 * a user.deleted audit event or a user revocation row.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_user_deletion_recorded(struct cj_db_conn *conn, const char *user_id,
                                  bool *recorded);

/* Sets *exists to whether a user with this id (canonical UUID text) is
 * stored. */
CJ_WARN_UNUSED enum cj_status auth_store_user_exists(struct cj_db_conn *conn,
                                                     const char *user_id,
                                                     bool *exists);

/* A refresh token row. Times in Unix milliseconds, 0 for NULL. */
struct auth_refresh_row {
    char id[AUTH_UUID_TEXT_SIZE];
    char family_id[AUTH_UUID_TEXT_SIZE];
    char user_id[AUTH_UUID_TEXT_SIZE];
    char session_id[AUTH_SESSION_ID_MAX + 1]; /* "" when none */
    unsigned char token_hash[AUTH_TOKEN_HASH_SIZE];
    int64_t issued_at_ms;
    int64_t expires_at_ms;
    int64_t family_expires_at_ms;
    int64_t used_at_ms;
    int64_t revoked_at_ms;
    char replaced_by[AUTH_UUID_TEXT_SIZE]; /* "" when none */
};

/* Inserts a new, live token. issued/expiry times come from the row. */
CJ_WARN_UNUSED enum cj_status
auth_store_token_insert(struct cj_db_conn *conn,
                        const struct auth_refresh_row *row);

/* Loads a token by its hash without locking; CJ_ERR_NOT_FOUND if none. */
CJ_WARN_UNUSED enum cj_status
auth_store_token_find(struct cj_db_conn *conn, const unsigned char *hash,
                      struct auth_refresh_row *out);

/* Loads a token by its id (a UUID) without locking; CJ_ERR_NOT_FOUND if
 * none. */
CJ_WARN_UNUSED enum cj_status
auth_store_token_find_by_id(struct cj_db_conn *conn, const char *token_id,
                            struct auth_refresh_row *out);

/*
 * Loads a token by its hash and, in the same query, whether its user is
 * active. CJ_ERR_NOT_FOUND when there is no such token or user.
 */
CJ_WARN_UNUSED enum cj_status auth_store_token_find_with_user(
    struct cj_db_conn *conn, const unsigned char *hash,
    struct auth_refresh_row *out, enum auth_user_status *user_status);

/*
 * Takes the transaction-scoped lock of a family. Every change to a family
 * (rotation, revocation) runs under it, so a revocation sees every
 * successor a concurrent rotation created.
 */
CJ_WARN_UNUSED enum cj_status auth_store_family_lock(struct cj_db_conn *conn,
                                                     const char *family_id);

/* Loads a token by id with SELECT ... FOR UPDATE. */
CJ_WARN_UNUSED enum cj_status
auth_store_token_get_for_update(struct cj_db_conn *conn, const char *token_id,
                                struct auth_refresh_row *out);

/*
 * Loads a token by id with SELECT ... FOR UPDATE, and the time of its
 * user's last revocation of every token (0 when none) in the same
 * statement. Call it under the token's family lock.
 */
CJ_WARN_UNUSED enum cj_status auth_store_token_get_for_update_with_revocation(
    struct cj_db_conn *conn, const char *token_id, struct auth_refresh_row *out,
    int64_t *user_revoked_at_ms);

struct auth_audit_event;

/*
 * Rotates token_id to its successor `next` in one statement. With
 * revoked_successor_id NULL (first use) token_id is marked used and linked
 * to next. On a grace retry token_id is already used, so its unseen
 * successor revoked_successor_id is revoked ("grace_retry") and token_id
 * is relinked to next. The same statement appends the audit event. The
 * old token leaves the family's one-live-token index before next is
 * inserted. Returns CJ_ERR_NOT_FOUND when a row is not in the state the
 * caller read under its locks. The audit row is written even then, so the
 * caller must roll back.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_token_rotate(struct cj_db_conn *conn, const char *token_id,
                        const char *revoked_successor_id,
                        const struct auth_refresh_row *next,
                        const struct auth_audit_event *audit);

/*
 * Records a successful login in one statement: inserts the new token,
 * sets the user's last login time and appends the audit event.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_login_record(struct cj_db_conn *conn,
                        const struct auth_refresh_row *row,
                        const struct auth_audit_event *audit);

/* Revokes every not yet revoked token of a family; *count gets how many. */
CJ_WARN_UNUSED enum cj_status auth_store_family_revoke(struct cj_db_conn *conn,
                                                       const char *family_id,
                                                       const char *reason,
                                                       unsigned *count);

/*
 * Lists the family ids of a user's families that still have a live token,
 * ordered by id (the order logout of all devices locks them in).
 */
CJ_WARN_UNUSED enum cj_status
auth_store_user_live_families(struct cj_db_conn *conn, const char *user_id,
                              char (*families)[AUTH_UUID_TEXT_SIZE],
                              size_t limit, size_t *count);

/*
 * Revokes every not yet revoked token of a user bound to one session (a
 * stateful logout without a refresh token); *count gets how many.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_session_tokens_revoke(struct cj_db_conn *conn, const char *user_id,
                                 const char *session_id, const char *reason,
                                 unsigned *count);

/* Revokes every live token of a user; *count gets how many. */
CJ_WARN_UNUSED enum cj_status
auth_store_user_tokens_revoke(struct cj_db_conn *conn, const char *user_id,
                              const char *reason, unsigned *count);

/* Deletes tokens whose family has expired; *count gets how many. */
CJ_WARN_UNUSED enum cj_status
auth_store_tokens_delete_expired(struct cj_db_conn *conn, long long limit,
                                 unsigned *count);

/* One field of user data, decrypted or public. Both strings owned. */
struct auth_data_field {
    char *name;
    char *value;
};

/* One stored encrypted field, as read from the table. Buffers owned. */
struct auth_sealed_field {
    char *name;
    unsigned char *nonce;
    size_t nonce_len;
    unsigned char *ciphertext;
    size_t ciphertext_len;
};

enum auth_data_class {
    AUTH_DATA_PUBLIC = 1,
    AUTH_DATA_PRIVATE = 2,
    AUTH_DATA_PROTECTED = 3,
};

/* Returns "public", "private" or "protected"; NULL for anything else. */
const char *auth_data_class_name(enum auth_data_class cls);

/*
 * Reads every public field of a user into a new array (*out, *count) that
 * the caller frees with auth_data_fields_free.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_public_get(struct cj_db_conn *conn, const char *user_id,
                      struct auth_data_field **out, size_t *count);
void auth_data_fields_free(struct auth_data_field *fields, size_t count);

/* A user's profile and public data, as Introspect and GetProfile read
 * them. */
struct auth_user_public {
    char username[AUTH_USERNAME_MAX + 1];
    char email[AUTH_EMAIL_MAX + 1];
    int64_t created_at_ms;
    enum auth_user_status status;
    struct auth_data_field *fields; /* owned, ordered by name */
    size_t count;
};

/*
 * Loads a user's profile, status and public fields in one query. Returns
 * CJ_ERR_NOT_FOUND when there is no such user. On CJ_OK free out->fields
 * with auth_data_fields_free(out->fields, out->count).
 */
CJ_WARN_UNUSED enum cj_status
auth_store_user_public_get(struct cj_db_conn *conn, const char *user_id,
                           struct auth_user_public *out);

/* Sets a public field, or deletes it when value is NULL. */
CJ_WARN_UNUSED enum cj_status auth_store_public_put(struct cj_db_conn *conn,
                                                    const char *user_id,
                                                    const char *field,
                                                    const char *value);

/*
 * Reads every encrypted field of a user in the private or protected table
 * into a new array the caller frees with auth_sealed_fields_free.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_sealed_get(struct cj_db_conn *conn, enum auth_data_class cls,
                      const char *user_id, struct auth_sealed_field **out,
                      size_t *count);
void auth_sealed_fields_free(struct auth_sealed_field *fields, size_t count);

/* Sets an encrypted field (nonce NULL: deletes the field). */
CJ_WARN_UNUSED enum cj_status
auth_store_sealed_put(struct cj_db_conn *conn, enum auth_data_class cls,
                      const char *user_id, const char *field,
                      const unsigned char *nonce, size_t nonce_len,
                      const unsigned char *ciphertext, size_t ciphertext_len);

/*
 * Takes the transaction-scoped lock of one class of a user's data. Every
 * PutData keeps it from before its first count until its commit. Under
 * read committed, each statement after the lock then reads the rows that
 * every earlier PUT of that class committed, so the counts are exact.
 */
CJ_WARN_UNUSED enum cj_status auth_store_data_lock(struct cj_db_conn *conn,
                                                   enum auth_data_class cls,
                                                   const char *user_id);

/* Counts a user's fields of one class (to enforce the per-user limit). */
CJ_WARN_UNUSED enum cj_status auth_store_data_count(struct cj_db_conn *conn,
                                                    enum auth_data_class cls,
                                                    const char *user_id,
                                                    long long *count);

enum auth_revocation_kind {
    AUTH_REVOKED_TOKEN = 0, /* subject: an access token's jti */
    AUTH_REVOKED_SESSION,   /* subject: a deleted session's id */
    AUTH_REVOKED_USER,      /* subject: a user id; revoked_at matters */
};

/*
 * One durable revocation as session's cache takes it, in Unix seconds:
 * revoked_at rounded down (session counts a token with iat <= revoked_at
 * as revoked, and iat is rounded down too) and expires_at rounded up, so
 * rounding never shortens a revocation.
 */
struct auth_revocation {
    enum auth_revocation_kind kind;
    char subject[AUTH_SESSION_ID_MAX + 1];
    int64_t revoked_at;
    int64_t expires_at;
};

/*
 * Records a revocation, not yet confirmed by session (sent_at NULL). For
 * AUTH_REVOKED_USER an existing row keeps the later revoked_at and
 * expires_at and becomes unconfirmed again; for the other kinds a repeat
 * is a no-op. user_id may be NULL.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_revocation_put(struct cj_db_conn *conn,
                          enum auth_revocation_kind kind, const char *subject,
                          const char *user_id, int64_t revoked_at_ms,
                          int64_t expires_at_ms);

/* An access token revoked with its refresh family: jti and exp. */
struct auth_revoked_access {
    char token_id[AUTH_UUID_TEXT_SIZE];
    int64_t expires_at; /* Unix seconds, the token's exp at the latest */
};

/*
 * Records as revoked every access token of a family that may still be
 * live. Each refresh row's id is the jti of the access token issued with
 * it. A token's exp is taken as its row's issue second plus access_ttl_s,
 * and its revocation is kept leeway_s longer. *out (malloc, free it) gets
 * every such token, including those an earlier call recorded, so that a
 * retry can send them to the cache again.
 */
CJ_WARN_UNUSED enum cj_status auth_store_family_access_revoke(
    struct cj_db_conn *conn, const char *family_id, int64_t access_ttl_s,
    int64_t leeway_s, struct auth_revoked_access **out, size_t *count);

/*
 * Lists unexpired revocations after the key (after_kind, after_subject),
 * in key order, up to limit; *count gets how many. after_subject NULL
 * starts at the first row.
 */
CJ_WARN_UNUSED enum cj_status auth_store_revocations_list(
    struct cj_db_conn *conn, enum auth_revocation_kind after_kind,
    const char *after_subject, struct auth_revocation *out, size_t limit,
    size_t *count);

/*
 * Lists like auth_store_revocations_list, but only the rows session has
 * not confirmed (sent_at NULL) whose revoked_at is at least min_age_s
 * seconds old.
 */
CJ_WARN_UNUSED enum cj_status auth_store_revocations_list_unsent(
    struct cj_db_conn *conn, enum auth_revocation_kind after_kind,
    const char *after_subject, int64_t min_age_s, struct auth_revocation *out,
    size_t limit, size_t *count);

/*
 * Marks rows confirmed by session (sent_at = now()), matched on kind and
 * subject. revoked_at is used for AUTH_REVOKED_USER only: a user's row
 * whose revocation time is in a later second than the one sent stays
 * unconfirmed. *confirmed gets how many rows changed. CJ_ERR_INVALID for
 * an invalid kind.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_revocations_confirm(struct cj_db_conn *conn,
                               const struct auth_revocation *rows, size_t count,
                               unsigned *confirmed);

/* Counts the unexpired rows that session has not confirmed (sent_at NULL)
 * into *count, whatever their age. */
CJ_WARN_UNUSED enum cj_status
auth_store_revocations_count_unsent(struct cj_db_conn *conn, int64_t *count);

/* Deletes expired revocations, at most limit; *count gets how many. */
CJ_WARN_UNUSED enum cj_status
auth_store_revocations_delete_expired(struct cj_db_conn *conn, long long limit,
                                      unsigned *count);

/* SHA-256 of a session id in lower-case hex, with the NUL. */
#define AUTH_SESSION_HASH_TEXT_SIZE 65

/* One audit event; every field but event may be NULL or empty. */
struct auth_audit_event {
    const char *event;
    const char *user_id;
    /* Stored in place of the session id, which is half of a credential.
     * Empty for an event without a session. */
    char session_hash[AUTH_SESSION_HASH_TEXT_SIZE];
    const char *client_ip;
    const char *user_agent;
    const char *request_id;
    const char *detail_json; /* a JSON object; NULL for {} */
};

/* Appends an audit event. */
CJ_WARN_UNUSED enum cj_status
auth_store_audit_insert(struct cj_db_conn *conn,
                        const struct auth_audit_event *event);

/* Deletes audit rows older than retention_days, at most limit. */
CJ_WARN_UNUSED enum cj_status
auth_store_audit_delete_old(struct cj_db_conn *conn, long long retention_days,
                            long long limit, unsigned *count);

/* Bytes of the login throttle's HMAC key (AUTH_THROTTLE_SECRET_BYTES). */
#define AUTH_STORE_THROTTLE_KEY_SIZE 32

/*
 * Reads the login throttle's HMAC key from auth.login_throttle_key. When
 * the table has no key yet, stores candidate first. Of replicas that race
 * there, the first insert wins and all read its key. Returns
 * CJ_ERR_INTERNAL when the stored key is not AUTH_STORE_THROTTLE_KEY_SIZE
 * bytes.
 */
CJ_WARN_UNUSED enum cj_status
auth_store_throttle_key(struct cj_db_conn *conn,
                        const uint8_t candidate[AUTH_STORE_THROTTLE_KEY_SIZE],
                        uint8_t out[AUTH_STORE_THROTTLE_KEY_SIZE]);

#endif
