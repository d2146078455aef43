/*
 * JSON <-> protobuf-c through the message descriptors, so that a route is a
 * table entry. The rules, the same for every message:
 *   - a member is named exactly as the .proto field (snake_case);
 *   - string: JSON string without NUL; bytes: base64url without padding;
 *   - 32-bit integers: JSON integers in range; 64-bit integers: JSON
 *     integers, or decimal strings on input; written as JSON integers,
 *     except a uint64 above INT64_MAX, written as a decimal string;
 *   - bool: true or false; float and double: JSON numbers;
 *   - enum: the value name without the prefix made from the enum type name,
 *     in lower case ("public" for DATA_CLASS_PUBLIC of DataClass);
 *   - message: JSON object; repeated: JSON array; map<K,V> (a repeated
 *     *Entry message with fields key = 1 and value = 2, string keys): JSON
 *     object;
 *   - null on input leaves the field at its default; unknown and duplicate
 *     members are rejected; every field is written on output except unset
 *     messages, unset proto3 optional fields and oneof members not chosen.
 */
#ifndef GW_JSON_H
#define GW_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>

#include "status.h"

/* Room for an error message shown to the client; never holds input. */
#define GW_JSON_ERROR_CHARS 160

/*
 * Checks the nesting depth of `text` (objects and arrays, outermost at 1)
 * without parsing it, so that deep input is rejected before a recursive
 * parser sees it. Returns CJ_ERR_TOO_LARGE above depth_max, CJ_OK
 * otherwise; syntax is left to the parser.
 */
CJ_WARN_UNUSED enum cj_status gw_json_check_depth(const char *text, size_t len,
                                                  size_t depth_max);

/*
 * Parses `text` into a new JSON object (the caller decrefs *out) after the
 * depth check. Returns CJ_ERR_INVALID (syntax, duplicate member, not an
 * object, NUL in a string) or CJ_ERR_TOO_LARGE (depth) with a message in
 * err.
 */
CJ_WARN_UNUSED enum cj_status gw_json_parse_object(const char *text, size_t len,
                                                   json_t **out, char *err,
                                                   size_t err_size);

/*
 * Builds a new message of type `desc` from a JSON object. A member named
 * `excluded_field` (may be NULL) is rejected like an unknown one: the
 * route sets that field itself. On success *out is a message allocated
 * with the default protobuf-c allocator; free it with
 * gw_json_message_free(). On failure *out is NULL and err says which
 * member failed and why, naming only schema names.
 */
CJ_WARN_UNUSED enum cj_status
gw_json_to_message(const json_t *object, const ProtobufCMessageDescriptor *desc,
                   const char *excluded_field, ProtobufCMessage **out,
                   char *err, size_t err_size);

/*
 * Renders a message as a new JSON object (the caller decrefs it), or NULL
 * when a string is not valid UTF-8, a map has non-string keys or memory
 * runs out.
 */
json_t *gw_json_from_message(const ProtobufCMessage *message);

/* Wipes every string and bytes field (they may hold passwords or keys),
 * then frees the message. Accepts NULL. */
void gw_json_message_free(ProtobufCMessage *message);

/* Writes the JSON name of an enum value ("public") into buf. */
void gw_json_enum_name(const ProtobufCEnumDescriptor *desc,
                       const ProtobufCEnumValue *value, char *buf, size_t size);

#endif
