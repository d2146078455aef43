/*
 * Server reflection responses from the embedded descriptor set: an index of
 * files, symbols and extensions, and one function that turns a serialized
 * ServerReflectionRequest into a serialized response. The v1alpha and v1
 * protocols share these wire messages.
 */
#include "rpc_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"

extern const unsigned char cj_descriptor_set[];
extern const size_t cj_descriptor_set_len;

/* Maximum length of an indexed symbol name, in bytes. */
#define CJ_REFL_SYMBOL_MAX_LEN 255

/* Names listed by list_services besides the service's own. */
static const char *const builtin_services[] = {
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
};
#define N_BUILTIN_SERVICES                                                     \
    (sizeof(builtin_services) / sizeof(builtin_services[0]))

/*
 * One file of the set. Only its name and dependency names outlive indexing.
 * Each unpacked FileDescriptorProto is freed once its symbols are indexed,
 * because keeping them all cost about 200 KiB of heap per service (massif).
 */
struct refl_file {
    const uint8_t *raw; /* the FileDescriptorProto bytes in the set */
    size_t raw_len;
    char *name;
    char **dependencies;
    size_t n_dependencies;
};

struct refl_symbol {
    char *name; /* fully qualified, no leading dot */
    size_t file;
};

struct refl_extension {
    char *extendee; /* fully qualified, no leading dot */
    int32_t number;
    size_t file;
};

struct cj_rpc_reflection {
    struct refl_file *files;
    size_t n_files;
    struct refl_symbol *symbols;
    size_t n_symbols;
    size_t cap_symbols;
    struct refl_extension *extensions;
    size_t n_extensions;
    size_t cap_extensions;
    const char *services[1 + N_BUILTIN_SERVICES];
};

/* Reads a base-128 varint. Returns false on truncation or overflow. */
static bool read_varint(const uint8_t *p, size_t len, size_t *pos,
                        uint64_t *value)
{
    *value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (*pos >= len) {
            return false;
        }
        uint8_t byte = p[(*pos)++];
        *value |= (uint64_t)(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) {
            return true;
        }
    }
    return false;
}

/*
 * Splits FileDescriptorSet bytes into their `file` fields (field 1,
 * length-delimited), keeping each file's exact bytes for the responses.
 */
static enum cj_status index_file(struct cj_rpc_reflection *r,
                                 const Google__Protobuf__FileDescriptorProto *f,
                                 size_t file);

/* Copies the name and dependency names that file_closure needs. */
static enum cj_status
keep_file_names(struct refl_file *file,
                const Google__Protobuf__FileDescriptorProto *proto)
{
    file->name = strdup(proto->name != NULL ? proto->name : "");
    if (file->name == NULL) {
        return CJ_ERR_NOMEM;
    }
    if (proto->n_dependency == 0) {
        return CJ_OK;
    }
    file->dependencies =
        calloc(proto->n_dependency, sizeof(*file->dependencies));
    if (file->dependencies == NULL) {
        return CJ_ERR_NOMEM;
    }
    for (size_t d = 0; d < proto->n_dependency; d++) {
        file->dependencies[d] = strdup(proto->dependency[d]);
        if (file->dependencies[d] == NULL) {
            return CJ_ERR_NOMEM;
        }
        file->n_dependencies++;
    }
    return CJ_OK;
}

/* Splits the set into files, indexing each one as it is unpacked. */
static enum cj_status split_files(struct cj_rpc_reflection *r)
{
    const uint8_t *p = cj_descriptor_set;
    size_t len = cj_descriptor_set_len;
    size_t pos = 0;
    uint64_t key;
    uint64_t field_len;
    enum cj_status s = CJ_OK;

    while (s == CJ_OK && pos < len) {
        if (!read_varint(p, len, &pos, &key) || key != ((1 << 3) | 2) ||
            !read_varint(p, len, &pos, &field_len) || field_len > len - pos) {
            return CJ_ERR_INTERNAL;
        }
        struct refl_file *grown =
            realloc(r->files, (r->n_files + 1) * sizeof(*r->files));
        if (grown == NULL) {
            return CJ_ERR_NOMEM;
        }
        r->files = grown;
        struct refl_file *f = &r->files[r->n_files];
        memset(f, 0, sizeof(*f));
        f->raw = p + pos;
        f->raw_len = (size_t)field_len;
        r->n_files++;
        Google__Protobuf__FileDescriptorProto *proto =
            google__protobuf__file_descriptor_proto__unpack(NULL, f->raw_len,
                                                            f->raw);
        if (proto == NULL) {
            return CJ_ERR_INTERNAL;
        }
        s = keep_file_names(f, proto);
        if (s == CJ_OK) {
            s = index_file(r, proto, r->n_files - 1);
        }
        google__protobuf__file_descriptor_proto__free_unpacked(proto, NULL);
        pos += (size_t)field_len;
    }
    return s;
}

static enum cj_status add_symbol(struct cj_rpc_reflection *r, const char *scope,
                                 const char *name, size_t file)
{
    char full[CJ_REFL_SYMBOL_MAX_LEN + 1];
    int n = snprintf(full, sizeof(full), "%s%s%s", scope,
                     scope[0] != '\0' ? "." : "", name);
    if (n < 0 || (size_t)n >= sizeof(full)) {
        return CJ_ERR_TOO_LARGE;
    }
    if (r->n_symbols == r->cap_symbols) {
        size_t cap = r->cap_symbols != 0 ? r->cap_symbols * 2 : 64;
        struct refl_symbol *grown = realloc(r->symbols, cap * sizeof(*grown));
        if (grown == NULL) {
            return CJ_ERR_NOMEM;
        }
        r->symbols = grown;
        r->cap_symbols = cap;
    }
    r->symbols[r->n_symbols].name = strdup(full);
    if (r->symbols[r->n_symbols].name == NULL) {
        return CJ_ERR_NOMEM;
    }
    r->symbols[r->n_symbols].file = file;
    r->n_symbols++;
    return CJ_OK;
}

static enum cj_status
add_extensions(struct cj_rpc_reflection *r,
               Google__Protobuf__FieldDescriptorProto **ext, size_t n_ext,
               const char *scope, size_t file)
{
    for (size_t i = 0; i < n_ext; i++) {
        enum cj_status s = add_symbol(r, scope, ext[i]->name, file);
        if (s != CJ_OK) {
            return s;
        }
        if (r->n_extensions == r->cap_extensions) {
            size_t cap = r->cap_extensions != 0 ? r->cap_extensions * 2 : 8;
            struct refl_extension *grown =
                realloc(r->extensions, cap * sizeof(*grown));
            if (grown == NULL) {
                return CJ_ERR_NOMEM;
            }
            r->extensions = grown;
            r->cap_extensions = cap;
        }
        const char *extendee = ext[i]->extendee != NULL ? ext[i]->extendee : "";
        struct refl_extension *e = &r->extensions[r->n_extensions];
        e->extendee = strdup(extendee[0] == '.' ? extendee + 1 : extendee);
        if (e->extendee == NULL) {
            return CJ_ERR_NOMEM;
        }
        e->number = ext[i]->number;
        e->file = file;
        r->n_extensions++;
    }
    return CJ_OK;
}

static enum cj_status index_enum(struct cj_rpc_reflection *r,
                                 const Google__Protobuf__EnumDescriptorProto *e,
                                 const char *scope, size_t file)
{
    enum cj_status s = add_symbol(r, scope, e->name, file);
    /* Enum values live in the scope that contains the enum, as in C++. */
    for (size_t i = 0; s == CJ_OK && i < e->n_value; i++) {
        s = add_symbol(r, scope, e->value[i]->name, file);
    }
    return s;
}

static enum cj_status index_message(struct cj_rpc_reflection *r,
                                    const Google__Protobuf__DescriptorProto *m,
                                    const char *scope, size_t file)
{
    char full[CJ_REFL_SYMBOL_MAX_LEN + 1];
    enum cj_status s = add_symbol(r, scope, m->name, file);
    if (s != CJ_OK) {
        return s;
    }
    snprintf(full, sizeof(full), "%s%s%s", scope, scope[0] != '\0' ? "." : "",
             m->name);
    for (size_t i = 0; s == CJ_OK && i < m->n_field; i++) {
        s = add_symbol(r, full, m->field[i]->name, file);
    }
    for (size_t i = 0; s == CJ_OK && i < m->n_oneof_decl; i++) {
        s = add_symbol(r, full, m->oneof_decl[i]->name, file);
    }
    for (size_t i = 0; s == CJ_OK && i < m->n_nested_type; i++) {
        s = index_message(r, m->nested_type[i], full, file);
    }
    for (size_t i = 0; s == CJ_OK && i < m->n_enum_type; i++) {
        s = index_enum(r, m->enum_type[i], full, file);
    }
    if (s == CJ_OK) {
        s = add_extensions(r, m->extension, m->n_extension, full, file);
    }
    return s;
}

static enum cj_status index_file(struct cj_rpc_reflection *r,
                                 const Google__Protobuf__FileDescriptorProto *f,
                                 size_t file)
{
    const char *pkg = f->package != NULL ? f->package : "";
    char full[CJ_REFL_SYMBOL_MAX_LEN + 1];
    enum cj_status s = CJ_OK;

    for (size_t i = 0; s == CJ_OK && i < f->n_message_type; i++) {
        s = index_message(r, f->message_type[i], pkg, file);
    }
    for (size_t i = 0; s == CJ_OK && i < f->n_enum_type; i++) {
        s = index_enum(r, f->enum_type[i], pkg, file);
    }
    for (size_t i = 0; s == CJ_OK && i < f->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *svc = f->service[i];
        s = add_symbol(r, pkg, svc->name, file);
        snprintf(full, sizeof(full), "%s%s%s", pkg, pkg[0] != '\0' ? "." : "",
                 svc->name);
        for (size_t k = 0; s == CJ_OK && k < svc->n_method; k++) {
            s = add_symbol(r, full, svc->method[k]->name, file);
        }
    }
    if (s == CJ_OK) {
        s = add_extensions(r, f->extension, f->n_extension, pkg, file);
    }
    return s;
}

void cj_rpc_reflection_destroy(struct cj_rpc_reflection *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n_files; i++) {
        for (size_t d = 0; d < r->files[i].n_dependencies; d++) {
            free(r->files[i].dependencies[d]);
        }
        free(r->files[i].dependencies);
        free(r->files[i].name);
    }
    for (size_t i = 0; i < r->n_symbols; i++) {
        free(r->symbols[i].name);
    }
    for (size_t i = 0; i < r->n_extensions; i++) {
        free(r->extensions[i].extendee);
    }
    free(r->files);
    free(r->symbols);
    free(r->extensions);
    free(r);
}

enum cj_status cj_rpc_reflection_create(const char *service_name,
                                        struct cj_rpc_reflection **out)
{
    enum cj_status result = CJ_ERR_NOMEM;
    struct cj_rpc_reflection *r = calloc(1, sizeof(*r));

    *out = NULL;
    if (r == NULL) {
        goto out;
    }
    result = split_files(r);
    if (result != CJ_OK) {
        goto out;
    }
    r->services[0] = service_name;
    for (size_t i = 0; i < N_BUILTIN_SERVICES; i++) {
        r->services[1 + i] = builtin_services[i];
    }
    *out = r;
    r = NULL;
out:
    cj_rpc_reflection_destroy(r);
    return result;
}

static bool find_file_by_name(const struct cj_rpc_reflection *r,
                              const char *name, size_t *file)
{
    for (size_t i = 0; i < r->n_files; i++) {
        if (strcmp(r->files[i].name, name) == 0) {
            *file = i;
            return true;
        }
    }
    return false;
}

static bool find_file_by_symbol(const struct cj_rpc_reflection *r,
                                const char *symbol, size_t *file)
{
    if (symbol[0] == '.') {
        symbol++;
    }
    for (size_t i = 0; i < r->n_symbols; i++) {
        if (strcmp(r->symbols[i].name, symbol) == 0) {
            *file = r->symbols[i].file;
            return true;
        }
    }
    return false;
}

/*
 * Lists `root` and its transitive dependencies, each once, root first, into
 * order (r->n_files entries). Returns the count.
 */
static size_t file_closure(const struct cj_rpc_reflection *r, size_t root,
                           size_t *order)
{
    size_t count = 0;
    bool *seen = calloc(r->n_files, sizeof(*seen));

    if (seen == NULL) {
        return 0;
    }
    order[count++] = root;
    seen[root] = true;
    for (size_t next = 0; next < count; next++) {
        const struct refl_file *f = &r->files[order[next]];
        for (size_t d = 0; d < f->n_dependencies; d++) {
            size_t dep;
            if (find_file_by_name(r, f->dependencies[d], &dep) && !seen[dep]) {
                seen[dep] = true;
                order[count++] = dep;
            }
        }
    }
    free(seen);
    return count;
}

/* The parts of a response that need storage until it is packed. */
struct refl_answer {
    Grpc__Reflection__V1alpha__ServerReflectionResponse response;
    Grpc__Reflection__V1alpha__FileDescriptorResponse files;
    Grpc__Reflection__V1alpha__ListServiceResponse list;
    Grpc__Reflection__V1alpha__ServiceResponse
        service_items[1 + N_BUILTIN_SERVICES];
    Grpc__Reflection__V1alpha__ServiceResponse
        *service_ptrs[1 + N_BUILTIN_SERVICES];
    Grpc__Reflection__V1alpha__ExtensionNumberResponse numbers;
    Grpc__Reflection__V1alpha__ErrorResponse error;
    char error_message[CJ_REFL_SYMBOL_MAX_LEN + 64];
    size_t *order;
    ProtobufCBinaryData *blobs;
    int32_t *extension_numbers;
};

static void answer_error(struct refl_answer *a, grpc_status_code code,
                         const char *what, const char *name)
{
    snprintf(a->error_message, sizeof(a->error_message), "%s '%.*s' not found",
             what, CJ_REFL_SYMBOL_MAX_LEN, name);
    grpc__reflection__v1alpha__error_response__init(&a->error);
    a->error.error_code = (int32_t)code;
    a->error.error_message = a->error_message;
    a->response.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    a->response.error_response = &a->error;
}

static enum cj_status answer_files(const struct cj_rpc_reflection *r,
                                   struct refl_answer *a, size_t root)
{
    a->order = calloc(r->n_files, sizeof(*a->order));
    a->blobs = calloc(r->n_files, sizeof(*a->blobs));
    if (a->order == NULL || a->blobs == NULL) {
        return CJ_ERR_NOMEM;
    }
    size_t count = file_closure(r, root, a->order);
    for (size_t i = 0; i < count; i++) {
        a->blobs[i].data = (uint8_t *)r->files[a->order[i]].raw;
        a->blobs[i].len = r->files[a->order[i]].raw_len;
    }
    grpc__reflection__v1alpha__file_descriptor_response__init(&a->files);
    a->files.n_file_descriptor_proto = count;
    a->files.file_descriptor_proto = a->blobs;
    a->response.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    a->response.file_descriptor_response = &a->files;
    return CJ_OK;
}

static void answer_list(const struct cj_rpc_reflection *r,
                        struct refl_answer *a)
{
    size_t n = 1 + N_BUILTIN_SERVICES;
    for (size_t i = 0; i < n; i++) {
        grpc__reflection__v1alpha__service_response__init(&a->service_items[i]);
        a->service_items[i].name = (char *)r->services[i];
        a->service_ptrs[i] = &a->service_items[i];
    }
    grpc__reflection__v1alpha__list_service_response__init(&a->list);
    a->list.n_service = n;
    a->list.service = a->service_ptrs;
    a->response.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    a->response.list_services_response = &a->list;
}

static enum cj_status
answer_extension_numbers(const struct cj_rpc_reflection *r,
                         struct refl_answer *a, const char *type)
{
    size_t file;
    size_t count = 0;
    const char *name = type[0] == '.' ? type + 1 : type;

    if (!find_file_by_symbol(r, name, &file)) {
        answer_error(a, GRPC_STATUS_NOT_FOUND, "type", type);
        return CJ_OK;
    }
    a->extension_numbers =
        calloc(r->n_extensions + 1, sizeof(*a->extension_numbers));
    if (a->extension_numbers == NULL) {
        return CJ_ERR_NOMEM;
    }
    for (size_t i = 0; i < r->n_extensions; i++) {
        if (strcmp(r->extensions[i].extendee, name) == 0) {
            a->extension_numbers[count++] = r->extensions[i].number;
        }
    }
    grpc__reflection__v1alpha__extension_number_response__init(&a->numbers);
    a->numbers.base_type_name = (char *)name;
    a->numbers.n_extension_number = count;
    a->numbers.extension_number = a->extension_numbers;
    a->response.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
    a->response.all_extension_numbers_response = &a->numbers;
    return CJ_OK;
}

static enum cj_status
answer_extension(const struct cj_rpc_reflection *r, struct refl_answer *a,
                 const Grpc__Reflection__V1alpha__ExtensionRequest *req)
{
    const char *type = req->containing_type;
    const char *name = type[0] == '.' ? type + 1 : type;

    for (size_t i = 0; i < r->n_extensions; i++) {
        if (strcmp(r->extensions[i].extendee, name) == 0 &&
            r->extensions[i].number == req->extension_number) {
            return answer_files(r, a, r->extensions[i].file);
        }
    }
    answer_error(a, GRPC_STATUS_NOT_FOUND, "extension of", type);
    return CJ_OK;
}

/* Fills a->response for `req`. */
static enum cj_status
answer_request(const struct cj_rpc_reflection *r, struct refl_answer *a,
               const Grpc__Reflection__V1alpha__ServerReflectionRequest *req)
{
    size_t file;

    switch (req->message_request_case) {
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        answer_list(r, a);
        return CJ_OK;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
        if (find_file_by_name(r, req->file_by_filename, &file)) {
            return answer_files(r, a, file);
        }
        answer_error(a, GRPC_STATUS_NOT_FOUND, "file", req->file_by_filename);
        return CJ_OK;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        if (find_file_by_symbol(r, req->file_containing_symbol, &file)) {
            return answer_files(r, a, file);
        }
        answer_error(a, GRPC_STATUS_NOT_FOUND, "symbol",
                     req->file_containing_symbol);
        return CJ_OK;
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        return answer_extension(r, a, req->file_containing_extension);
    case GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
        return answer_extension_numbers(r, a,
                                        req->all_extension_numbers_of_type);
    default:
        break;
    }
    snprintf(a->error_message, sizeof(a->error_message),
             "reflection request kind %d is not supported",
             (int)req->message_request_case);
    grpc__reflection__v1alpha__error_response__init(&a->error);
    a->error.error_code = GRPC_STATUS_UNIMPLEMENTED;
    a->error.error_message = a->error_message;
    a->response.message_response_case =
        GRPC__REFLECTION__V1ALPHA__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    a->response.error_response = &a->error;
    return CJ_OK;
}

enum cj_status cj_rpc_reflection_answer(const struct cj_rpc_reflection *r,
                                        const uint8_t *request,
                                        size_t request_len, uint8_t **out,
                                        size_t *out_len)
{
    enum cj_status result = CJ_ERR_INVALID;
    Grpc__Reflection__V1alpha__ServerReflectionRequest *req;
    struct refl_answer *a = NULL;

    *out = NULL;
    *out_len = 0;
    req = grpc__reflection__v1alpha__server_reflection_request__unpack(
        NULL, request_len, request);
    if (req == NULL) {
        goto out;
    }
    result = CJ_ERR_NOMEM;
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        goto out;
    }
    grpc__reflection__v1alpha__server_reflection_response__init(&a->response);
    a->response.valid_host = req->host;
    a->response.original_request = req;
    result = answer_request(r, a, req);
    if (result != CJ_OK) {
        goto out;
    }
    *out_len = protobuf_c_message_get_packed_size(&a->response.base);
    *out = malloc(*out_len > 0 ? *out_len : 1);
    if (*out == NULL) {
        result = CJ_ERR_NOMEM;
        goto out;
    }
    protobuf_c_message_pack(&a->response.base, *out);
    result = CJ_OK;
out:
    if (a != NULL) {
        free(a->order);
        free(a->blobs);
        free(a->extension_numbers);
        free(a);
    }
    if (req != NULL) {
        grpc__reflection__v1alpha__server_reflection_request__free_unpacked(
            req, NULL);
    }
    return result;
}
