/* Tests for the generic JSON <-> protobuf-c converter of the gateway. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cerrojo/v1/auth.pb-c.h"
#include "cerrojo/v1/common.pb-c.h"
#include "cerrojo/v1/kms.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "gw_json.h"
#include "gw_limits.h"

#define INVALID_DIR CJ_SOURCE_DIR "/tests/data/gateway/invalid"

/* Parses `text` and converts it to `desc`; returns the message or NULL. */
static ProtobufCMessage *convert(const char *text,
                                 const ProtobufCMessageDescriptor *desc,
                                 const char *excluded, enum cj_status *status)
{
    json_t *json = NULL;
    ProtobufCMessage *message = NULL;
    char err[GW_JSON_ERROR_CHARS] = "";

    *status = gw_json_parse_object(text, strlen(text), &json, err, sizeof(err));
    if (*status == CJ_OK) {
        *status = gw_json_to_message(json, desc, excluded, &message, err,
                                     sizeof(err));
    }
    json_decref(json);
    return message;
}

static char *render(const ProtobufCMessage *message)
{
    json_t *json = gw_json_from_message(message);
    char *text;

    assert_non_null(json);
    text = json_dumps(json, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(json);
    return text;
}

static void test_strings_and_bytes_convert(void **state)
{
    enum cj_status status;
    /* 32 bytes of 0x01..0x20 in base64url without padding. */
    const char *text = "{\"username\":\"ana\",\"email\":\"a@b.example\","
                       "\"password\":\"correct horse\","
                       "\"client_secret\":"
                       "\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\"}";
    Cerrojo__V1__RegisterRequest *req = (Cerrojo__V1__RegisterRequest *)convert(
        text, &cerrojo__v1__register_request__descriptor, NULL, &status);
    char *out;

    (void)state;
    assert_int_equal(status, CJ_OK);
    assert_non_null(req);
    assert_string_equal(req->username, "ana");
    assert_string_equal(req->password, "correct horse");
    assert_int_equal(req->client_secret.len, 32);
    assert_int_equal(req->client_secret.data[0], 1);
    assert_int_equal(req->client_secret.data[31], 32);
    out = render(&req->base);
    assert_string_equal(
        out,
        "{\"client_secret\":\"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA\","
        "\"email\":\"a@b.example\",\"password\":\"correct horse\","
        "\"username\":\"ana\"}");
    free(out);
    gw_json_message_free(&req->base);
}

static void test_absent_and_null_members_keep_defaults(void **state)
{
    enum cj_status status;
    Cerrojo__V1__RegisterRequest *req = (Cerrojo__V1__RegisterRequest *)convert(
        "{\"username\":null}", &cerrojo__v1__register_request__descriptor, NULL,
        &status);

    (void)state;
    assert_int_equal(status, CJ_OK);
    assert_string_equal(req->username, "");
    assert_int_equal(req->client_secret.len, 0);
    assert_null(req->client_secret.data);
    gw_json_message_free(&req->base);
}

static void test_enum_and_map_convert(void **state)
{
    enum cj_status status;
    Cerrojo__V1__PutDataRequest *req = (Cerrojo__V1__PutDataRequest *)convert(
        "{\"class\":\"private\",\"fields\":{\"city\":\"Lima\",\"pet\":\"\"}}",
        &cerrojo__v1__put_data_request__descriptor, NULL, &status);
    char *out;

    (void)state;
    assert_int_equal(status, CJ_OK);
    assert_int_equal(req->class_, CERROJO__V1__DATA_CLASS__DATA_CLASS_PRIVATE);
    assert_int_equal(req->n_fields, 2);
    assert_string_equal(req->fields[0]->key, "city");
    assert_string_equal(req->fields[0]->value, "Lima");
    assert_string_equal(req->fields[1]->value, "");
    out = render(&req->base);
    assert_string_equal(out, "{\"class\":\"private\",\"fields\":{\"city\":"
                             "\"Lima\",\"pet\":\"\"}}");
    free(out);
    gw_json_message_free(&req->base);
}

static void test_map_value_error_names_the_map(void **state)
{
    json_t *json = NULL;
    ProtobufCMessage *message = NULL;
    char err[GW_JSON_ERROR_CHARS] = "";
    const char *text = "{\"fields\":{\"a\":1}}";

    (void)state;
    assert_int_equal(
        gw_json_parse_object(text, strlen(text), &json, err, sizeof(err)),
        CJ_OK);
    assert_int_equal(
        gw_json_to_message(json, &cerrojo__v1__put_data_request__descriptor,
                           NULL, &message, err, sizeof(err)),
        CJ_ERR_INVALID);
    assert_null(message);
    assert_string_equal(
        err, "a value in member \"fields\" has the wrong type or range");
    json_decref(json);
}

static void test_excluded_field_is_rejected(void **state)
{
    enum cj_status status;
    ProtobufCMessage *msg =
        convert("{\"class\":\"public\"}",
                &cerrojo__v1__get_data_request__descriptor, "class", &status);

    (void)state;
    assert_null(msg);
    assert_int_equal(status, CJ_ERR_INVALID);
    msg = convert("{}", &cerrojo__v1__get_data_request__descriptor, "class",
                  &status);
    assert_int_equal(status, CJ_OK);
    gw_json_message_free(msg);
}

/* Parses and converts `text` as convert() does and returns the error
 * message, or "" when it was accepted. */
static const char *conversion_error(const char *text,
                                    const ProtobufCMessageDescriptor *desc,
                                    const char *excluded)
{
    static char err[GW_JSON_ERROR_CHARS];
    json_t *json = NULL;
    ProtobufCMessage *message = NULL;

    err[0] = '\0';
    if (gw_json_parse_object(text, strlen(text), &json, err, sizeof(err)) ==
            CJ_OK &&
        gw_json_to_message(json, desc, excluded, &message, err, sizeof(err)) ==
            CJ_OK) {
        err[0] = '\0';
    }
    json_decref(json);
    gw_json_message_free(message);
    return err;
}

static void test_rejection_messages_name_no_types(void **state)
{
    const char *err;

    (void)state;
    err = conversion_error("{\"class\":\"public\"}",
                           &cerrojo__v1__get_data_request__descriptor, "class");
    assert_non_null(strstr(err, "\"class\" is set by the request path"));
    err = conversion_error("{\"nope\":1}",
                           &cerrojo__v1__get_data_request__descriptor, NULL);
    assert_non_null(strstr(err, "the body has a member"));
    assert_null(strstr(err, "cerrojo"));
    assert_null(strstr(err, "nope"));
    err = conversion_error("{\"login\":\"ana\",\"login\":\"bob\"}",
                           &cerrojo__v1__login_request__descriptor, NULL);
    assert_non_null(strstr(err, "duplicate member at line 1"));
    assert_null(strstr(err, "bob"));
    err = conversion_error(
        "{\"login\":", &cerrojo__v1__login_request__descriptor, NULL);
    assert_non_null(strstr(err, "invalid JSON at line 1"));
    err = conversion_error("{\"login\":\"a\\u0000b\"}",
                           &cerrojo__v1__login_request__descriptor, NULL);
    assert_non_null(strstr(err, "NUL (\\u0000) is not allowed"));
    assert_null(strstr(err, "invalid JSON"));
    err = conversion_error("{\"a\\u0000\":\"b\"}",
                           &cerrojo__v1__login_request__descriptor, NULL);
    assert_non_null(strstr(err, "NUL (\\u0000) is not allowed"));
}

static void test_int64_accepts_number_and_string(void **state)
{
    enum cj_status status;
    Cerrojo__V1__Profile *p = (Cerrojo__V1__Profile *)convert(
        "{\"created_at_ms\":\"-9223372036854775808\"}",
        &cerrojo__v1__profile__descriptor, NULL, &status);

    (void)state;
    assert_int_equal(status, CJ_OK);
    assert_true(p->created_at_ms == INT64_MIN);
    gw_json_message_free(&p->base);
    p = (Cerrojo__V1__Profile *)convert("{\"created_at_ms\":1733300000000}",
                                        &cerrojo__v1__profile__descriptor, NULL,
                                        &status);
    assert_int_equal(status, CJ_OK);
    assert_true(p->created_at_ms == 1733300000000LL);
    gw_json_message_free(&p->base);
}

static void test_nested_and_repeated_messages_convert(void **state)
{
    enum cj_status status;
    Cerrojo__V1__ListPublicKeysResponse *r =
        (Cerrojo__V1__ListPublicKeysResponse *)convert(
            "{\"key_list_jws\":\"a.b.c\",\"keys\":[{\"key_id\":7,\"kem_id\":32,"
            "\"public_key\":\"AAEC\",\"state\":\"active\"},{\"key_id\":8}],"
            "\"signer_fingerprints\":[\"f1\",\"f2\"]}",
            &cerrojo__v1__list_public_keys_response__descriptor, NULL, &status);
    char *out;

    (void)state;
    assert_int_equal(status, CJ_OK);
    assert_int_equal(r->n_keys, 2);
    assert_int_equal(r->keys[0]->key_id, 7);
    assert_int_equal(r->keys[0]->public_key.len, 3);
    assert_int_equal(r->keys[1]->key_id, 8);
    assert_int_equal(r->n_signer_fingerprints, 2);
    assert_string_equal(r->signer_fingerprints[1], "f2");
    out = render(&r->base);
    assert_non_null(strstr(out, "\"signer_fingerprints\":[\"f1\",\"f2\"]"));
    assert_non_null(strstr(out, "\"public_key\":\"AAEC\""));
    free(out);
    gw_json_message_free(&r->base);
}

static void test_unset_submessage_is_omitted(void **state)
{
    Cerrojo__V1__TokenSet tokens = CERROJO__V1__TOKEN_SET__INIT;
    Cerrojo__V1__SessionInfo session = CERROJO__V1__SESSION_INFO__INIT;
    char *out;

    (void)state;
    tokens.access_token = "x.y.z";
    tokens.expires_in = 900;
    out = render(&tokens.base);
    assert_null(strstr(out, "\"session\""));
    assert_non_null(strstr(out, "\"expires_in\":900"));
    free(out);
    session.session_id = "abc";
    tokens.session = &session;
    out = render(&tokens.base);
    assert_non_null(strstr(out, "\"session\":{"));
    assert_non_null(strstr(out, "\"session_id\":\"abc\""));
    free(out);
}

static void test_uint64_above_int64_renders_as_string(void **state)
{
    Google__Protobuf__UninterpretedOption opt =
        GOOGLE__PROTOBUF__UNINTERPRETED_OPTION__INIT;
    enum cj_status status;
    Google__Protobuf__UninterpretedOption *back;
    char *out;

    (void)state;
    opt.has_positive_int_value = 1;
    opt.positive_int_value = UINT64_MAX;
    opt.has_negative_int_value = 1;
    opt.negative_int_value = -5;
    opt.has_double_value = 1;
    opt.double_value = 0.5;
    out = render(&opt.base);
    assert_non_null(
        strstr(out, "\"positive_int_value\":\"18446744073709551615\""));
    assert_non_null(strstr(out, "\"negative_int_value\":-5"));
    assert_non_null(strstr(out, "\"double_value\":0.5"));
    /* Proto2 optional fields left unset are omitted. */
    assert_null(strstr(out, "\"string_value\""));
    back = (Google__Protobuf__UninterpretedOption *)convert(
        out, &google__protobuf__uninterpreted_option__descriptor, NULL,
        &status);
    assert_int_equal(status, CJ_OK);
    assert_true(back->has_positive_int_value);
    assert_true(back->positive_int_value == UINT64_MAX);
    assert_true(back->negative_int_value == -5);
    assert_true(back->double_value == 0.5);
    assert_false(back->has_string_value);
    free(out);
    gw_json_message_free(&back->base);
}

static void test_proto2_enum_and_repeated_int32(void **state)
{
    enum cj_status status;
    Google__Protobuf__FieldDescriptorProto *f =
        (Google__Protobuf__FieldDescriptorProto *)convert(
            "{\"name\":\"id\",\"number\":3,\"label\":\"repeated\","
            "\"type\":\"int64\"}",
            &google__protobuf__field_descriptor_proto__descriptor, NULL,
            &status);
    Google__Protobuf__SourceCodeInfo__Location *loc;
    char *out;

    (void)state;
    assert_int_equal(status, CJ_OK);
    assert_true(f->has_number);
    assert_int_equal(f->number, 3);
    assert_true(f->has_label);
    assert_int_equal(
        f->label,
        GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED);
    assert_int_equal(
        f->type, GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64);
    gw_json_message_free(&f->base);

    loc = (Google__Protobuf__SourceCodeInfo__Location *)convert(
        "{\"path\":[4,0,2,-1]}",
        &google__protobuf__source_code_info__location__descriptor, NULL,
        &status);
    assert_int_equal(status, CJ_OK);
    assert_int_equal(loc->n_path, 4);
    assert_int_equal(loc->path[3], -1);
    out = render(&loc->base);
    assert_non_null(strstr(out, "\"path\":[4,0,2,-1]"));
    free(out);
    gw_json_message_free(&loc->base);
}

static void test_oneof_takes_one_member(void **state)
{
    enum cj_status status;
    Grpc__Reflection__V1alpha__ServerReflectionRequest *r =
        (Grpc__Reflection__V1alpha__ServerReflectionRequest *)convert(
            "{\"host\":\"h\",\"file_by_filename\":\"a.proto\"}",
            &grpc__reflection__v1alpha__server_reflection_request__descriptor,
            NULL, &status);
    char *out;

    (void)state;
    assert_int_equal(status, CJ_OK);
    assert_int_equal(
        r->message_request_case,
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME);
    out = render(&r->base);
    assert_non_null(strstr(out, "\"file_by_filename\":\"a.proto\""));
    assert_null(strstr(out, "\"list_services\""));
    free(out);
    gw_json_message_free(&r->base);

    r = (Grpc__Reflection__V1alpha__ServerReflectionRequest *)convert(
        "{\"file_by_filename\":\"a\",\"list_services\":\"*\"}",
        &grpc__reflection__v1alpha__server_reflection_request__descriptor, NULL,
        &status);
    assert_null(r);
    assert_int_equal(status, CJ_ERR_INVALID);
}

static void test_enum_names_strip_type_prefix(void **state)
{
    char name[64];

    (void)state;
    gw_json_enum_name(&cerrojo__v1__data_class__descriptor,
                      &cerrojo__v1__data_class__descriptor.values[1], name,
                      sizeof(name));
    assert_string_equal(name, "public");
    gw_json_enum_name(&cerrojo__v1__data_class__descriptor,
                      &cerrojo__v1__data_class__descriptor.values[0], name,
                      sizeof(name));
    assert_string_equal(name, "unspecified");
}

static void test_depth_check_counts_brackets_outside_strings(void **state)
{
    char deep[GW_JSON_DEPTH_MAX + 2];
    const char *quoted = "{\"a\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\\"[[[[\"}";

    (void)state;
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    assert_int_equal(
        gw_json_check_depth(deep, GW_JSON_DEPTH_MAX, GW_JSON_DEPTH_MAX), CJ_OK);
    assert_int_equal(gw_json_check_depth(deep, strlen(deep), GW_JSON_DEPTH_MAX),
                     CJ_ERR_TOO_LARGE);
    assert_int_equal(gw_json_check_depth(quoted, strlen(quoted), 2), CJ_OK);
}

static void test_hundred_thousand_brackets_are_rejected(void **state)
{
    size_t n = 100000;
    char *text = malloc(n * 2 + 1);
    json_t *json = NULL;
    char err[GW_JSON_ERROR_CHARS];

    (void)state;
    memset(text, '[', n);
    memset(text + n, ']', n);
    text[n * 2] = '\0';
    assert_int_equal(gw_json_parse_object(text, n * 2, &json, err, sizeof(err)),
                     CJ_ERR_TOO_LARGE);
    assert_null(json);
    assert_non_null(strstr(err, "deeper"));
    free(text);
}

static const ProtobufCMessageDescriptor *target_for(const char *file)
{
    static const struct {
        const char *prefix;
        const ProtobufCMessageDescriptor *desc;
    } targets[] = {
        {"register__", &cerrojo__v1__register_request__descriptor},
        {"logout__", &cerrojo__v1__logout_request__descriptor},
        {"put_data__", &cerrojo__v1__put_data_request__descriptor},
        {"profile__", &cerrojo__v1__profile__descriptor},
        {"session_info__", &cerrojo__v1__session_info__descriptor},
        {"token_set__", &cerrojo__v1__token_set__descriptor},
        {"list_keys__", &cerrojo__v1__list_public_keys_response__descriptor},
    };

    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        if (strncmp(file, targets[i].prefix, strlen(targets[i].prefix)) == 0) {
            return targets[i].desc;
        }
    }
    return NULL;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;

    assert_non_null(f);
    buf = malloc(1024 * 1024);
    *len = fread(buf, 1, 1024 * 1024 - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void test_invalid_inputs_are_each_rejected(void **state)
{
    DIR *dir = opendir(INVALID_DIR);
    struct dirent *entry;
    int checked = 0;

    (void)state;
    assert_non_null(dir);
    while ((entry = readdir(dir)) != NULL) {
        char path[1024];
        const ProtobufCMessageDescriptor *desc;
        json_t *json = NULL;
        ProtobufCMessage *message = NULL;
        char err[GW_JSON_ERROR_CHARS] = "";
        enum cj_status status;
        size_t len;
        char *text;

        if (entry->d_name[0] == '.') {
            continue;
        }
        desc = target_for(entry->d_name);
        if (desc == NULL) {
            fail_msg("%s: no target message for this file name", entry->d_name);
        }
        snprintf(path, sizeof(path), "%s/%s", INVALID_DIR, entry->d_name);
        text = read_file(path, &len);
        status = gw_json_parse_object(text, len, &json, err, sizeof(err));
        if (status == CJ_OK) {
            status = gw_json_to_message(json, desc, NULL, &message, err,
                                        sizeof(err));
        }
        if (status == CJ_OK) {
            fail_msg("%s: accepted but must be rejected", entry->d_name);
        }
        if (err[0] == '\0') {
            fail_msg("%s: rejected without a message", entry->d_name);
        }
        assert_null(message);
        json_decref(json);
        free(text);
        checked++;
    }
    closedir(dir);
    assert_true(checked >= 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strings_and_bytes_convert),
        cmocka_unit_test(test_absent_and_null_members_keep_defaults),
        cmocka_unit_test(test_enum_and_map_convert),
        cmocka_unit_test(test_map_value_error_names_the_map),
        cmocka_unit_test(test_excluded_field_is_rejected),
        cmocka_unit_test(test_rejection_messages_name_no_types),
        cmocka_unit_test(test_int64_accepts_number_and_string),
        cmocka_unit_test(test_nested_and_repeated_messages_convert),
        cmocka_unit_test(test_unset_submessage_is_omitted),
        cmocka_unit_test(test_uint64_above_int64_renders_as_string),
        cmocka_unit_test(test_proto2_enum_and_repeated_int32),
        cmocka_unit_test(test_oneof_takes_one_member),
        cmocka_unit_test(test_enum_names_strip_type_prefix),
        cmocka_unit_test(test_depth_check_counts_brackets_outside_strings),
        cmocka_unit_test(test_hundred_thousand_brackets_are_rejected),
        cmocka_unit_test(test_invalid_inputs_are_each_rejected),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
