/*
 * Tests for the server reflection responses built from the embedded
 * descriptor set, without a server: each request kind, symbol lookup with
 * dependencies, and the error responses.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "rpc_internal.h"

typedef Grpc__Reflection__V1alpha__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1alpha__ServerReflectionResponse refl_response;

#define CASE_RESPONSE(name)                                                    \
    GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_##name
#define CASE_REQUEST(name)                                                     \
    GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_##name

static int setup(void **state)
{
    struct cj_rpc_reflection *r = NULL;
    if (cj_rpc_reflection_create("cerrojo.v1.Kms", &r) != CJ_OK) {
        return -1;
    }
    *state = r;
    return 0;
}

static int teardown(void **state)
{
    cj_rpc_reflection_destroy(*state);
    return 0;
}

/* Packs `req`, builds the response and unpacks it (free with
 * free_unpacked). */
static refl_response *ask(void **state, refl_request *req)
{
    uint8_t packed[512];
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    size_t len = protobuf_c_message_pack(&req->base, packed);

    assert_int_equal(
        cj_rpc_reflection_answer(*state, packed, len, &answer, &answer_len),
        CJ_OK);
    refl_response *resp =
        grpc__reflection__v1alpha__server_reflection_response__unpack(
            NULL, answer_len, answer);
    free(answer);
    assert_non_null(resp);
    return resp;
}

static refl_response *ask_symbol(void **state, const char *symbol)
{
    refl_request req =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case = CASE_REQUEST(FILE_CONTAINING_SYMBOL);
    req.file_containing_symbol = (char *)symbol;
    return ask(state, &req);
}

/* Writes the file names of a file-descriptor response, joined by spaces. */
static void file_names(const refl_response *resp, char *out, size_t size)
{
    const Grpc__Reflection__V1alpha__FileDescriptorResponse *files =
        resp->file_descriptor_response;
    out[0] = '\0';
    for (size_t i = 0; i < files->n_file_descriptor_proto; i++) {
        Google__Protobuf__FileDescriptorProto *fd =
            google__protobuf__file_descriptor_proto__unpack(
                NULL, files->file_descriptor_proto[i].len,
                files->file_descriptor_proto[i].data);
        assert_non_null(fd);
        if (i > 0) {
            strncat(out, " ", size - strlen(out) - 1);
        }
        strncat(out, fd->name, size - strlen(out) - 1);
        google__protobuf__file_descriptor_proto__free_unpacked(fd, NULL);
    }
}

static void test_list_services(void **state)
{
    refl_request req =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case = CASE_REQUEST(LIST_SERVICES);
    req.list_services = (char *)"";
    req.host = (char *)"localhost";
    refl_response *resp = ask(state, &req);

    assert_int_equal(resp->message_response_case,
                     CASE_RESPONSE(LIST_SERVICES_RESPONSE));
    assert_string_equal(resp->valid_host, "localhost");
    assert_non_null(resp->original_request);
    const Grpc__Reflection__V1alpha__ListServiceResponse *list =
        resp->list_services_response;
    assert_int_equal(list->n_service, 4);
    assert_string_equal(list->service[0]->name, "cerrojo.v1.Kms");
    assert_string_equal(list->service[1]->name, "grpc.health.v1.Health");
    assert_string_equal(list->service[2]->name,
                        "grpc.reflection.v1alpha.ServerReflection");
    assert_string_equal(list->service[3]->name,
                        "grpc.reflection.v1.ServerReflection");
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp,
                                                                         NULL);
}

static void test_symbol_answer_has_dependencies(void **state)
{
    char names[256];
    static const char *const symbols[] = {
        "cerrojo.v1.Auth",
        "cerrojo.v1.Auth.Login",
        ".cerrojo.v1.LoginRequest",
        "cerrojo.v1.Profile.PublicDataEntry",
        "cerrojo.v1.IntrospectResponse.sub",
    };
    for (size_t i = 0; i < sizeof(symbols) / sizeof(symbols[0]); i++) {
        refl_response *resp = ask_symbol(state, symbols[i]);
        assert_int_equal(resp->message_response_case,
                         CASE_RESPONSE(FILE_DESCRIPTOR_RESPONSE));
        file_names(resp, names, sizeof(names));
        assert_string_equal(names,
                            "cerrojo/v1/auth.proto cerrojo/v1/common.proto");
        grpc__reflection__v1alpha__server_reflection_response__free_unpacked(
            resp, NULL);
    }
}

static void test_enum_value_is_a_symbol(void **state)
{
    char names[256];
    refl_response *resp = ask_symbol(state, "cerrojo.v1.DATA_CLASS_PUBLIC");
    file_names(resp, names, sizeof(names));
    assert_string_equal(names, "cerrojo/v1/common.proto");
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp,
                                                                         NULL);
}

static void test_file_by_name(void **state)
{
    char names[256];
    refl_request req =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case = CASE_REQUEST(FILE_BY_FILENAME);
    req.file_by_filename = (char *)"grpc/health/v1/health.proto";
    refl_response *resp = ask(state, &req);
    file_names(resp, names, sizeof(names));
    assert_string_equal(names, "grpc/health/v1/health.proto");
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp,
                                                                         NULL);
}

static void test_unknown_names_are_not_found(void **state)
{
    refl_response *resp = ask_symbol(state, "cerrojo.v1.Nope");
    assert_int_equal(resp->message_response_case,
                     CASE_RESPONSE(ERROR_RESPONSE));
    assert_int_equal(resp->error_response->error_code, GRPC_STATUS_NOT_FOUND);
    assert_string_equal(resp->error_response->error_message,
                        "symbol 'cerrojo.v1.Nope' not found");
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp,
                                                                         NULL);

    /* A prefix of a real name is not a match. */
    resp = ask_symbol(state, "cerrojo.v1.Au");
    assert_int_equal(resp->message_response_case,
                     CASE_RESPONSE(ERROR_RESPONSE));
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp,
                                                                         NULL);

    refl_request req =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case = CASE_REQUEST(FILE_BY_FILENAME);
    req.file_by_filename = (char *)"cerrojo/v1/none.proto";
    resp = ask(state, &req);
    assert_int_equal(resp->error_response->error_code, GRPC_STATUS_NOT_FOUND);
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp,
                                                                         NULL);
}

static void test_extension_numbers_of_type(void **state)
{
    refl_request req =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__INIT;
    req.message_request_case = CASE_REQUEST(ALL_EXTENSION_NUMBERS_OF_TYPE);
    req.all_extension_numbers_of_type = (char *)"cerrojo.v1.TokenSet";
    refl_response *resp = ask(state, &req);
    assert_int_equal(resp->message_response_case,
                     CASE_RESPONSE(ALL_EXTENSION_NUMBERS_RESPONSE));
    assert_string_equal(resp->all_extension_numbers_response->base_type_name,
                        "cerrojo.v1.TokenSet");
    assert_int_equal(resp->all_extension_numbers_response->n_extension_number,
                     0);
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp,
                                                                         NULL);

    req.all_extension_numbers_of_type = (char *)"cerrojo.v1.Missing";
    resp = ask(state, &req);
    assert_int_equal(resp->message_response_case,
                     CASE_RESPONSE(ERROR_RESPONSE));
    grpc__reflection__v1alpha__server_reflection_response__free_unpacked(resp,
                                                                         NULL);
}

static void test_garbage_request_is_invalid(void **state)
{
    static const uint8_t garbage[] = {0xff, 0xff, 0xff};
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    assert_int_equal(cj_rpc_reflection_answer(*state, garbage, sizeof(garbage),
                                              &answer, &answer_len),
                     CJ_ERR_INVALID);
    assert_null(answer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_services),
        cmocka_unit_test(test_symbol_answer_has_dependencies),
        cmocka_unit_test(test_enum_value_is_a_symbol),
        cmocka_unit_test(test_file_by_name),
        cmocka_unit_test(test_unknown_names_are_not_found),
        cmocka_unit_test(test_extension_numbers_of_type),
        cmocka_unit_test(test_garbage_request_is_invalid),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
