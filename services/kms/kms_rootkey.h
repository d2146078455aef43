/*
 * The root key of cerrojo-kms: 32 random bytes, base64, read from a secret
 * file (CERROJO_KMS_ROOT_KEY_FILE) or the environment (CERROJO_KMS_ROOT_KEY).
 * It wraps every key kms stores and lives only in sodium_malloc memory.
 */
#ifndef KMS_ROOTKEY_H
#define KMS_ROOTKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "status.h"

#define KMS_ROOT_KEY_BYTES 32
/* Prefix that marks a root key generated for development. */
#define KMS_ROOT_KEY_GENERATED_PREFIX "generated:"
#define KMS_ROOT_KEY_FILE_VAR         "CERROJO_KMS_ROOT_KEY_FILE"
#define KMS_ROOT_KEY_ENV_VAR          "CERROJO_KMS_ROOT_KEY"
/* Maximum length of a root-key file or value, in bytes. */
#define KMS_ROOT_KEY_TEXT_MAX 256
/* Length of the error message buffer callers pass, in bytes. */
#define KMS_ROOT_KEY_ERROR_MAX 256

/* Sources of the root key and what the profile allows. */
struct kms_root_key_source {
    const char *file_path; /* CERROJO_KMS_ROOT_KEY_FILE or NULL */
    const char *value;     /* CERROJO_KMS_ROOT_KEY or NULL */
    /* Only the dev profile may generate a missing key or use a generated
     * one; stage and prod reject both. */
    bool allow_generated;
    /* Stage and prod reject a key file that other users can read or
     * write; dev logs a warning (cj_config_check_key_file_mode). */
    enum cj_profile profile;
    /* Path of the generated dev key (mode 0600), e.g. var/kms-root-key. */
    const char *generated_path;
};

struct kms_root_key {
    unsigned char *bytes; /* KMS_ROOT_KEY_BYTES, sodium_malloc, read-only */
    bool generated;       /* marked as generated for development */
};

/*
 * Parses one root-key text: optional "generated:" prefix, then 32 bytes in
 * base64 (standard or URL-safe alphabet, padding optional), surrounding
 * white space ignored. key must hold KMS_ROOT_KEY_BYTES; it is wiped on
 * failure.
 */
enum cj_status kms_root_key_parse(const char *text, size_t len,
                                  unsigned char *key,
                                  bool *generated) CJ_WARN_UNUSED;

/*
 * Loads the root key by the rules of src. On success *out is new (free it
 * with kms_root_key_free); on failure err contains a message that names the
 * variable to fix. A generated key is announced with a warning log.
 */
enum cj_status kms_root_key_load(const struct kms_root_key_source *src,
                                 struct kms_root_key **out, char *err,
                                 size_t err_size) CJ_WARN_UNUSED;

/*
 * Reads a root key from one file, for rewrap-root, with the rules of load
 * for `profile`: a generated key only in dev, and the file's permission
 * check.
 */
enum cj_status kms_root_key_read_file(const char *path, enum cj_profile profile,
                                      struct kms_root_key **out, char *err,
                                      size_t err_size) CJ_WARN_UNUSED;

/*
 * Runs the checks of kms_root_key_load without keeping the key, for
 * --print-config. Where load would generate a development key, it only
 * returns CJ_OK, so that no file is written.
 */
enum cj_status kms_root_key_check(const struct kms_root_key_source *src,
                                  char *err, size_t err_size) CJ_WARN_UNUSED;

/* Wipes and frees; accepts NULL. */
void kms_root_key_free(struct kms_root_key *key);

#endif
