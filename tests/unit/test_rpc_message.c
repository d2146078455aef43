/* Tests for byte buffer and protobuf-c conversions and message wiping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <grpc/byte_buffer_reader.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "cerrojo/v1/kms.pb-c.h"
#include "rpc_message.h"

/* Message size limit used by these tests, in bytes. */
#define LIMIT 4096

static bool all_zero(const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        if (p[i] != 0) {
            return false;
        }
    }
    return true;
}

static void test_pack_unpack_round_trip(void **state)
{
    (void)state;
    Cerrojo__V1__SignTokenRequest req = CERROJO__V1__SIGN_TOKEN_REQUEST__INIT;
    grpc_byte_buffer *buffer = NULL;
    ProtobufCMessage *out = NULL;

    req.user_id = (char *)"user-1";
    req.expires_at = 1767225600;
    assert_int_equal(cj_rpc_message_pack(&req.base, LIMIT, &buffer), CJ_OK);
    assert_int_equal(cj_rpc_message_unpack(
                         buffer, &cerrojo__v1__sign_token_request__descriptor,
                         LIMIT, &out, NULL),
                     CJ_OK);
    const Cerrojo__V1__SignTokenRequest *copy =
        (const Cerrojo__V1__SignTokenRequest *)out;
    assert_string_equal(copy->user_id, "user-1");
    assert_int_equal(copy->expires_at, 1767225600);
    cj_rpc_message_free(out);
    grpc_byte_buffer_destroy(buffer);
}

static void test_unpack_spanning_slices(void **state)
{
    (void)state;
    Cerrojo__V1__SignTokenRequest req = CERROJO__V1__SIGN_TOKEN_REQUEST__INIT;
    uint8_t packed[64];
    ProtobufCMessage *out = NULL;

    req.user_id = (char *)"split-across-slices";
    size_t len = protobuf_c_message_pack(&req.base, packed);
    grpc_slice parts[3] = {
        grpc_slice_from_copied_buffer((const char *)packed, 3),
        grpc_slice_from_copied_buffer((const char *)packed + 3, 5),
        grpc_slice_from_copied_buffer((const char *)packed + 8, len - 8),
    };
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(parts, 3);
    for (int i = 0; i < 3; i++) {
        grpc_slice_unref(parts[i]);
    }
    assert_int_equal(cj_rpc_message_unpack(
                         buffer, &cerrojo__v1__sign_token_request__descriptor,
                         LIMIT, &out, NULL),
                     CJ_OK);
    assert_string_equal(((Cerrojo__V1__SignTokenRequest *)out)->user_id,
                        "split-across-slices");
    cj_rpc_message_free(out);
    grpc_byte_buffer_destroy(buffer);
}

static void test_limits_apply_both_ways(void **state)
{
    (void)state;
    Cerrojo__V1__SignTokenRequest req = CERROJO__V1__SIGN_TOKEN_REQUEST__INIT;
    grpc_byte_buffer *buffer = NULL;
    ProtobufCMessage *out = NULL;
    char big[200];

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    req.user_id = big;
    assert_int_equal(cj_rpc_message_pack(&req.base, 100, &buffer),
                     CJ_ERR_TOO_LARGE);
    assert_null(buffer);
    assert_int_equal(cj_rpc_message_pack(&req.base, LIMIT, &buffer), CJ_OK);
    assert_int_equal(cj_rpc_message_unpack(
                         buffer, &cerrojo__v1__sign_token_request__descriptor,
                         100, &out, NULL),
                     CJ_ERR_TOO_LARGE);
    assert_null(out);
    grpc_byte_buffer_destroy(buffer);
}

static void test_unpack_rejects_garbage(void **state)
{
    (void)state;
    grpc_slice slice = grpc_slice_from_static_string("\xff\xff\xff");
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
    ProtobufCMessage *out = NULL;

    assert_int_equal(cj_rpc_message_unpack(
                         buffer, &cerrojo__v1__sign_token_request__descriptor,
                         LIMIT, &out, NULL),
                     CJ_ERR_INVALID);
    assert_null(out);
    grpc_byte_buffer_destroy(buffer);
}

/* Packs `message`, overwrites the first occurrence of `mark` in the bytes
 * with a NUL and unpacks them as `descriptor`, reporting the NUL field. */
static enum cj_status unpack_with_nul(const ProtobufCMessage *message,
                                      const ProtobufCMessageDescriptor *d,
                                      char mark, const char **nul_field)
{
    uint8_t packed[256];
    ProtobufCMessage *out = NULL;
    size_t len = protobuf_c_message_pack(message, packed);
    uint8_t *at = memchr(packed, mark, len);

    assert_non_null(at);
    *at = '\0';
    grpc_slice slice = grpc_slice_from_copied_buffer((const char *)packed, len);
    grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    enum cj_status status =
        cj_rpc_message_unpack(buffer, d, LIMIT, &out, nul_field);
    cj_rpc_message_free(out);
    grpc_byte_buffer_destroy(buffer);
    return status;
}

static void test_unpack_rejects_nul_in_string(void **state)
{
    (void)state;
    Cerrojo__V1__LoginRequest req = CERROJO__V1__LOGIN_REQUEST__INIT;
    const char *field = NULL;

    req.login = (char *)"ana";
    req.password = (char *)"first#rest";
    assert_int_equal(unpack_with_nul(&req.base,
                                     &cerrojo__v1__login_request__descriptor,
                                     '#', &field),
                     CJ_ERR_INVALID);
    assert_non_null(field);
    assert_string_equal(field, "password");
}

static void test_unpack_rejects_nul_in_nested_string(void **state)
{
    (void)state;
    Cerrojo__V1__PutDataRequest req = CERROJO__V1__PUT_DATA_REQUEST__INIT;
    Cerrojo__V1__PutDataRequest__FieldsEntry entry =
        CERROJO__V1__PUT_DATA_REQUEST__FIELDS_ENTRY__INIT;
    Cerrojo__V1__PutDataRequest__FieldsEntry *entries[1] = {&entry};
    const char *field = NULL;

    entry.key = (char *)"note";
    entry.value = (char *)"abc#def";
    req.n_fields = 1;
    req.fields = entries;
    assert_int_equal(unpack_with_nul(&req.base,
                                     &cerrojo__v1__put_data_request__descriptor,
                                     '#', &field),
                     CJ_ERR_INVALID);
    assert_non_null(field);
    assert_string_equal(field, "fields");
}

static void test_unpack_keeps_nul_in_bytes(void **state)
{
    (void)state;
    Cerrojo__V1__LoginRequest req = CERROJO__V1__LOGIN_REQUEST__INIT;
    uint8_t secret[4] = {'#', '#', '#', '#'};
    const char *field = "unset";

    req.login = (char *)"ana";
    req.password = (char *)"secret-words";
    req.client_secret.data = secret;
    req.client_secret.len = sizeof(secret);
    assert_int_equal(unpack_with_nul(&req.base,
                                     &cerrojo__v1__login_request__descriptor,
                                     '#', &field),
                     CJ_OK);
    assert_null(field);
}

static void test_wipe_clears_strings_bytes_and_maps(void **state)
{
    (void)state;
    /* An unpacked message owns its memory, so wiping it in place is safe
     * and the bytes can be inspected before they are freed. */
    Cerrojo__V1__PutDataRequest src = CERROJO__V1__PUT_DATA_REQUEST__INIT;
    Cerrojo__V1__PutDataRequest__FieldsEntry entry =
        CERROJO__V1__PUT_DATA_REQUEST__FIELDS_ENTRY__INIT;
    Cerrojo__V1__PutDataRequest__FieldsEntry *entries[1] = {&entry};
    uint8_t packed[128];

    entry.key = (char *)"phone";
    entry.value = (char *)"+34 600 000 000";
    src.n_fields = 1;
    src.fields = entries;
    size_t len = protobuf_c_message_pack(&src.base, packed);
    Cerrojo__V1__PutDataRequest *msg =
        cerrojo__v1__put_data_request__unpack(NULL, len, packed);
    assert_non_null(msg);
    char *key = msg->fields[0]->key;
    char *value = msg->fields[0]->value;
    size_t key_len = strlen(key);
    size_t value_len = strlen(value);

    cj_rpc_message_wipe(&msg->base);
    assert_true(all_zero(key, key_len));
    assert_true(all_zero(value, value_len));
    cerrojo__v1__put_data_request__free_unpacked(msg, NULL);

    Cerrojo__V1__DecryptKeyResponse keysrc =
        CERROJO__V1__DECRYPT_KEY_RESPONSE__INIT;
    uint8_t secret[32];
    memset(secret, 0x5a, sizeof(secret));
    keysrc.data_key.data = secret;
    keysrc.data_key.len = sizeof(secret);
    len = protobuf_c_message_pack(&keysrc.base, packed);
    Cerrojo__V1__DecryptKeyResponse *key_msg =
        cerrojo__v1__decrypt_key_response__unpack(NULL, len, packed);
    assert_non_null(key_msg);
    cj_rpc_message_wipe(&key_msg->base);
    assert_int_equal(key_msg->data_key.len, sizeof(secret));
    assert_true(all_zero(key_msg->data_key.data, key_msg->data_key.len));
    cerrojo__v1__decrypt_key_response__free_unpacked(key_msg, NULL);
}

static void test_wipe_skips_unset_fields(void **state)
{
    (void)state;
    /* Unset strings point at protobuf-c's shared read-only "", which a
     * wipe must not write to; NULL is accepted too. */
    Cerrojo__V1__SignTokenRequest req = CERROJO__V1__SIGN_TOKEN_REQUEST__INIT;
    cj_rpc_message_wipe(&req.base);
    assert_string_equal(req.user_id, "");
    cj_rpc_message_wipe(NULL);
    cj_rpc_message_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pack_unpack_round_trip),
        cmocka_unit_test(test_unpack_spanning_slices),
        cmocka_unit_test(test_limits_apply_both_ways),
        cmocka_unit_test(test_unpack_rejects_garbage),
        cmocka_unit_test(test_unpack_rejects_nul_in_string),
        cmocka_unit_test(test_unpack_rejects_nul_in_nested_string),
        cmocka_unit_test(test_unpack_keeps_nul_in_bytes),
        cmocka_unit_test(test_wipe_clears_strings_bytes_and_maps),
        cmocka_unit_test(test_wipe_skips_unset_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
