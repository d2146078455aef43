/*
 * cerrojo: the command-line client. Parses the global options and the
 * command, reads secrets without putting them in argv, and prints each
 * result as text or, with --json, as one JSON object.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "cjc_client.h"
#include "cjc_http.h"
#include "cjc_keys.h"
#include "cli_input.h"

#define CLI_DEFAULT_URL "http://127.0.0.1:8080"

/* Exit statuses: 0 success, 1 the request failed, 2 bad usage, which
 * includes every local input error found before a request is sent. */
enum cli_exit {
    CLI_EXIT_OK = 0,
    CLI_EXIT_FAILED = 1,
    CLI_EXIT_USAGE = 2,
};

struct cli {
    struct cjc_client_options opts;
    char url[CJC_URL_MAX]; /* --url in canonical form */
    bool json;
    struct cjc_client *client;
};

static const char global_usage[] =
    "usage: cerrojo [--url URL] [--state FILE] [--pin FINGERPRINT]... "
    "[--json] COMMAND\n"
    "\n"
    "Commands:\n"
    "  keys                                   list the server's HPKE keys\n"
    "  handshake                              open a stateful session\n"
    "  register --username NAME --email ADDR [--password-file FILE]\n"
    "  login --login NAME_OR_EMAIL [--password-file FILE]\n"
    "  me                                     show the profile\n"
    "  data get CLASS                         CLASS: public, private, "
    "protected\n"
    "  data put CLASS [--value-file FILE]     the value is read from stdin "
    "otherwise\n"
    "                                         (at most 64 KiB, 4096 bytes "
    "a field)\n"
    "  refresh\n"
    "  logout [--all]\n"
    "\n"
    "Options:\n"
    "  --url URL          gateway URL (default $CERROJO_URL or " CLI_DEFAULT_URL
    ")\n"
    "  --state FILE       state file with the session and tokens, mode 0600\n"
    "                     (default ~/.local/state/cerrojo/state.json)\n"
    "  --pin FINGERPRINT  accept only a key list signed by this key "
    "(repeatable)\n"
    "  --json             print each result as one JSON object\n"
    "\n"
    "register and login take --stateful (the default: open a session) or\n"
    "--stateless. Without --password-file they prompt without echo. The\n"
    "password file contains the password alone, with at most one trailing\n"
    "newline (LF or CRLF); a file with more than one line is rejected.\n"
    "Run 'cerrojo COMMAND --help' for a command's options.\n"
    "\n"
    "Exit status: 0 on success, 1 when a request failed, 2 for bad usage or\n"
    "invalid local input, a damaged state file included (no request sent).\n";

static int usage_error(const char *fmt, const char *arg)
{
    /* One line, as scripts expect: the problem, then where help is. */
    fprintf(stderr, "cerrojo: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see 'cerrojo --help')\n");
    return CLI_EXIT_USAGE;
}

static int fail(const struct cjc_error *err)
{
    char retry[48] = "";

    if (err->retry_after_seconds > 0)
        snprintf(retry, sizeof(retry), "; retry after %ld s",
                 err->retry_after_seconds);
    if (err->code[0] != '\0')
        fprintf(stderr, "cerrojo: %s (%s)%s\n", err->message, err->code, retry);
    else
        fprintf(stderr, "cerrojo: %s%s\n", err->message, retry);
    return CLI_EXIT_FAILED;
}

/* Reports invalid local input (a file, a value or an option's text) that
 * stopped the command before any request was sent. */
static int input_error(const char *message)
{
    fprintf(stderr, "cerrojo: %s\n", message);
    return CLI_EXIT_USAGE;
}

/* Prints a notice from the client library on stderr, so that scripts that
 * read stdout see only the result. */
static void print_notice(const char *message)
{
    fprintf(stderr, "cerrojo: %s\n", message);
}

/* Prints result as JSON (--json) or as indented text, then frees it. */
static int print_result(const struct cli *cli, const char *what, json_t *result)
{
    if (cli->json) {
        json_t *wrapped = json_pack("{s:b,s:s,s:O}", "ok", 1, "command", what,
                                    "result", result ? result : json_null());
        json_dumpf(wrapped, stdout, JSON_COMPACT | JSON_SORT_KEYS);
        fputc('\n', stdout);
        json_decref(wrapped);
    } else if (result != NULL && json_object_size(result) > 0) {
        printf("%s:\n", what);
        json_dumpf(result, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
    } else {
        printf("%s: ok\n", what);
    }
    json_decref(result);
    return CLI_EXIT_OK;
}

/* True when argv holds --help or -h anywhere after the command. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return true;
    return false;
}

static int cmd_keys(struct cli *cli, int argc, char **argv)
{
    struct cjc_error err = {0};
    json_t *out = NULL;

    if (wants_help(argc, argv)) {
        puts("usage: cerrojo keys\n\nFetches the server's HPKE key list, "
             "checks its signature\nagainst the pinned fingerprints, and "
             "prints the keys.");
        return CLI_EXIT_OK;
    }
    if (argc > 1)
        return usage_error("keys takes no arguments, got '%s'", argv[1]);
    if (cjc_keys(cli->client, &out, &err) != CJ_OK)
        return fail(&err);
    return print_result(cli, "keys", out);
}

static int cmd_handshake(struct cli *cli, int argc, char **argv)
{
    struct cjc_error err = {0};
    json_t *out = NULL;

    if (wants_help(argc, argv)) {
        puts("usage: cerrojo handshake\n\nOpens a stateful session with a "
             "fresh 32-byte secret, sealed to\nthe server's HPKE key, and "
             "keeps it in the state file. No user is\nlogged in on it, so "
             "a state file that holds a login is rejected:\nrun 'cerrojo "
             "logout' first, or 'cerrojo login' to log in again.");
        return CLI_EXIT_OK;
    }
    if (argc > 1)
        return usage_error("handshake takes no arguments, got '%s'", argv[1]);
    if (cjc_handshake(cli->client, &out, &err) != CJ_OK)
        return fail(&err);
    return print_result(cli, "handshake", out);
}

/* The password file rule, in the help of register and login. */
#define PASSWORD_FILE_HELP                                                     \
    "--password-file FILE reads the whole file as the password; one "          \
    "trailing\nnewline (LF or CRLF) is dropped, and a file with more than "    \
    "one line is\nrejected with status 2."

/*
 * Reports the option that getopt_long rejected, in one line that names the
 * command. getopt's own message would be a second line, and it names
 * argv[0], which for `data put` is the class. Call with opterr 0 and an
 * optstring that starts with ':', so that c is ':' for a missing value.
 */
static int option_error(const char *command, int c, char **argv)
{
    const char *option = argv[optind - 1];
    int name_len = (int)strcspn(option, "=");

    /* A short option can sit inside a group such as -xy, so optind may not
     * have passed it yet, but optopt contains it. */
    if (c == ':')
        fprintf(stderr, "cerrojo: option '%s' of %s needs a value", option,
                command);
    else if (optopt != 0)
        fprintf(stderr, "cerrojo: invalid option '-%c' for %s", optopt,
                command);
    else
        fprintf(stderr, "cerrojo: invalid option '%.*s' for %s", name_len,
                option, command);
    fprintf(stderr, " (see 'cerrojo %s --help')\n", command);
    return CLI_EXIT_USAGE;
}

/* Options shared by register and login. */
struct credential_args {
    const char *username;
    const char *email;
    const char *login;
    const char *password_file;
    enum cjc_mode mode;
    bool stateless_given;
    bool stateful_given;
};

/* Options that cerrojo reads before the command name. */
static const char *const global_options[] = {"--url", "--state", "--pin",
                                             "--json"};

/*
 * Rejects a global option placed after the command. getopt_long would
 * otherwise report "--state" as an ambiguous prefix of --stateful and
 * --stateless, or as an unknown option, and neither names the place
 * where the option belongs.
 */
static int reject_global_options(int argc, char **argv)
{
    for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        for (size_t k = 0;
             k < sizeof(global_options) / sizeof(global_options[0]); k++) {
            size_t n = strlen(global_options[k]);

            if (strncmp(argv[i], global_options[k], n) == 0 &&
                (argv[i][n] == '\0' || argv[i][n] == '=')) {
                return usage_error("%s is a global option: put it before "
                                   "the command",
                                   global_options[k]);
            }
        }
    }
    return CLI_EXIT_OK;
}

/* Rejects option text that is not UTF-8, which no JSON request can carry. */
static int check_credential_text(const struct credential_args *args)
{
    const struct {
        const char *option;
        const char *value;
    } texts[] = {
        {"--username", args->username},
        {"--email", args->email},
        {"--login", args->login},
    };

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        const char *value = texts[i].value;

        if (value != NULL && !cli_utf8_valid(value, strlen(value)))
            return usage_error("invalid %s: the text is not valid UTF-8",
                               texts[i].option);
    }
    return CLI_EXIT_OK;
}

static int parse_credential_args(bool is_register, int argc, char **argv,
                                 struct credential_args *args)
{
    enum { OPT_STATELESS = 1000, OPT_STATEFUL };
    static const struct option options[] = {
        {"username", required_argument, NULL, 'u'},
        {"email", required_argument, NULL, 'e'},
        {"login", required_argument, NULL, 'l'},
        {"password-file", required_argument, NULL, 'p'},
        {"stateless", no_argument, NULL, OPT_STATELESS},
        {"stateful", no_argument, NULL, OPT_STATEFUL},
        {NULL, 0, NULL, 0},
    };
    int c;

    args->mode = CJC_MODE_STATEFUL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        switch (c) {
        case 'u':
            args->username = optarg;
            break;
        case 'e':
            args->email = optarg;
            break;
        case 'l':
            args->login = optarg;
            break;
        case 'p':
            args->password_file = optarg;
            break;
        case OPT_STATELESS:
            args->mode = CJC_MODE_STATELESS;
            args->stateless_given = true;
            break;
        case OPT_STATEFUL:
            args->mode = CJC_MODE_STATEFUL;
            args->stateful_given = true;
            break;
        default:
            return option_error(argv[0], c, argv);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (args->stateless_given && args->stateful_given)
        return usage_error("%s takes --stateful or --stateless, not both",
                           argv[0]);
    /* A misplaced option is named before a missing one, because the user
     * who typed it expects it to have been read. */
    if (is_register && args->login != NULL)
        return usage_error("--login is an option of login, and %s takes "
                           "--username and --email",
                           argv[0]);
    if (!is_register && (args->username != NULL || args->email != NULL))
        return usage_error("--username and --email are options of register, "
                           "and %s takes --login NAME_OR_EMAIL",
                           argv[0]);
    if (is_register && (args->username == NULL || args->email == NULL))
        return usage_error("%s needs --username and --email", argv[0]);
    if (!is_register && args->login == NULL)
        return usage_error("%s needs --login", argv[0]);
    return check_credential_text(args);
}

static int cmd_credentials(struct cli *cli, bool is_register, int argc,
                           char **argv)
{
    struct credential_args args = {0};
    struct cjc_error err = {0};
    char ioerr[256] = "";
    char *password = NULL;
    json_t *out = NULL;
    enum cj_status rc;
    int status;

    if (wants_help(argc, argv)) {
        if (is_register)
            puts("usage: cerrojo register --username NAME --email ADDR "
                 "[--password-file FILE]\n"
                 "                        [--stateful | --stateless]\n\n"
                 "Creates a user. --stateful (the default) also opens a "
                 "session in the\nsame round trip. Without --password-file "
                 "the password is prompted\nfor without echo; it is never "
                 "taken from the command line.\n" PASSWORD_FILE_HELP);
        else
            puts("usage: cerrojo login --login NAME_OR_EMAIL "
                 "[--password-file FILE]\n"
                 "                     [--stateful | --stateless]\n\n"
                 "Logs in and stores the tokens. --stateful (the default) "
                 "also opens a\nsession in the same round trip. Without "
                 "--password-file the password\nis prompted for without "
                 "echo.\n" PASSWORD_FILE_HELP);
        return CLI_EXIT_OK;
    }
    status = parse_credential_args(is_register, argc, argv, &args);
    if (status != CLI_EXIT_OK)
        return status;
    rc = cli_read_password(args.password_file, "Password: ", &password, ioerr,
                           sizeof(ioerr));
    if (rc == CJ_ERR_NOMEM) {
        fprintf(stderr, "cerrojo: out of memory reading the password\n");
        return CLI_EXIT_FAILED;
    }
    if (rc != CJ_OK)
        return input_error(ioerr);
    if (!cli_utf8_valid(password, strlen(password))) {
        cli_secret_free(password);
        return input_error("the password is not valid UTF-8");
    }
    if (is_register)
        rc = cjc_register(cli->client, args.username, args.email, password,
                          args.mode, &out, &err);
    else
        rc =
            cjc_login(cli->client, args.login, password, args.mode, &out, &err);
    cli_secret_free(password);
    if (rc != CJ_OK)
        return fail(&err);
    return print_result(cli, argv[0], out);
}

static int cmd_me(struct cli *cli, int argc, char **argv)
{
    struct cjc_error err = {0};
    json_t *out = NULL;

    if (wants_help(argc, argv)) {
        puts("usage: cerrojo me\n\nShows the profile of the logged-in user.");
        return CLI_EXIT_OK;
    }
    if (argc > 1)
        return usage_error("me takes no arguments, got '%s'", argv[1]);
    if (cjc_me(cli->client, &out, &err) != CJ_OK)
        return fail(&err);
    return print_result(cli, "me", out);
}

static bool valid_class(const char *name)
{
    return strcmp(name, "public") == 0 || strcmp(name, "private") == 0 ||
           strcmp(name, "protected") == 0;
}

/* Returns whether text, after leading white space, opens a JSON object. */
static bool looks_like_object(const char *text, size_t len)
{
    size_t i = 0;

    while (i < len && strchr(" \t\r\n", text[i]) != NULL && text[i] != '\0')
        i++;
    return i < len && text[i] == '{';
}

/* The UTF-8 byte order mark that some editors write at the start. */
static const char UTF8_BOM[] = "\xEF\xBB\xBF";
#define UTF8_BOM_LEN (sizeof(UTF8_BOM) - 1)
/* Maximum length of a field name quoted back in an error. */
#define FIELD_NAME_SHOWN_MAX 64

/* Writes why text that opens an object failed to parse, and where. */
static void describe_parse_error(const json_error_t *error, char *why,
                                 size_t whylen)
{
    const char *reason;

    switch (json_error_code(error)) {
    case json_error_duplicate_key:
        reason = "duplicate key";
        break;
    case json_error_null_character:
    case json_error_null_byte_in_key:
        reason = "\\u0000 inside a string";
        break;
    case json_error_premature_end_of_input:
        reason = "incomplete JSON";
        break;
    case json_error_invalid_utf8:
        reason = "invalid UTF-8";
        break;
    default:
        reason = "invalid JSON";
        break;
    }
    snprintf(why, whylen, "%s at line %d, column %d", reason, error->line,
             error->column);
}

/* Returns the first field whose value is not a string, or NULL. */
static const char *first_non_string(json_t *object)
{
    const char *key;
    json_t *v;

    json_object_foreach(object, key, v)
    {
        if (!json_is_string(v)) {
            return key;
        }
    }
    return NULL;
}

/* Copies at most FIELD_NAME_SHOWN_MAX bytes of a field name for an error,
 * with control characters replaced, so that a file from elsewhere cannot
 * write escape sequences to the terminal. */
static void field_name_shown(const char *name, char *out, size_t outlen)
{
    size_t i = 0;

    for (; i < FIELD_NAME_SHOWN_MAX && i + 1 < outlen && name[i] != '\0'; i++) {
        unsigned char c = (unsigned char)name[i];

        out[i] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    out[i] = '\0';
}

/*
 * Returns the first field whose value is longer than auth accepts, with
 * why set to auth's own wording, or NULL when every value fits. Sending
 * such a value would only get 400 from the server.
 */
static const char *first_oversize_field(json_t *fields, char *why,
                                        size_t whylen)
{
    char shown[FIELD_NAME_SHOWN_MAX + 1];
    const char *key;
    json_t *v;

    json_object_foreach(fields, key, v)
    {
        if (json_string_length(v) > CLI_FIELD_VALUE_MAX) {
            field_name_shown(key, shown, sizeof(shown));
            snprintf(why, whylen, "field '%s' is longer than %u bytes", shown,
                     CLI_FIELD_VALUE_MAX);
            return key;
        }
    }
    return NULL;
}

/* Returns whether name is 1 to CLI_FIELD_NAME_MAX characters of a-z, 0-9
 * and _, the names that auth stores. */
static bool field_name_valid(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > CLI_FIELD_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/*
 * Checks the fields of a JSON object against auth's rules for one request
 * (at least one field, at most CLI_FIELDS_PER_PUT_MAX, valid names) and
 * returns false with why set on the first rule broken. The server would
 * reject such a request with a 400 that names its own request member.
 */
static bool fields_allowed(json_t *fields, char *why, size_t whylen)
{
    char shown[FIELD_NAME_SHOWN_MAX + 1];
    size_t count = json_object_size(fields);
    const char *key;
    json_t *v;

    if (count == 0) {
        snprintf(why, whylen,
                 "the JSON object has no fields, so nothing was stored. "
                 "Give at least one field");
        return false;
    }
    if (count > CLI_FIELDS_PER_PUT_MAX) {
        snprintf(why, whylen,
                 "the JSON object has %zu fields, but one 'data put' sets "
                 "at most %u, so split them over several commands",
                 count, CLI_FIELDS_PER_PUT_MAX);
        return false;
    }
    json_object_foreach(fields, key, v)
    {
        if (!field_name_valid(key)) {
            field_name_shown(key, shown, sizeof(shown));
            snprintf(why, whylen,
                     "invalid field name '%s%s': names are 1 to %u "
                     "characters of a-z, 0-9 and _",
                     shown, strlen(key) > FIELD_NAME_SHOWN_MAX ? "..." : "",
                     CLI_FIELD_NAME_MAX);
            return false;
        }
    }
    return true;
}

/*
 * Returns whether the value read for `data put` is empty once a leading
 * byte order mark and one trailing newline are dropped. Such input usually
 * comes from a failed producer in a pipe, and stored as "value" it would
 * delete that field.
 */
static bool value_is_empty(const char *text, size_t len)
{
    if (len >= UTF8_BOM_LEN && memcmp(text, UTF8_BOM, UTF8_BOM_LEN) == 0)
        len -= UTF8_BOM_LEN;
    return cli_drop_newline(text, len) == 0;
}

/* Returns whether the value read for `data put` is a JSON array once a
 * leading byte order mark is dropped. */
static bool value_is_json_array(const char *text, size_t len)
{
    if (len >= UTF8_BOM_LEN && memcmp(text, UTF8_BOM, UTF8_BOM_LEN) == 0) {
        text += UTF8_BOM_LEN;
        len -= UTF8_BOM_LEN;
    }
    return cli_value_is_json_array(text, len);
}

/*
 * Turns the value read for `data put` into fields: a JSON object of
 * strings is taken as the fields, and other text is one field, "value".
 * The caller has rejected a JSON array already.
 * Text that opens an object but is no valid object of strings is rejected
 * (why set, NULL returned), because a typo would otherwise store the raw
 * text under "value" in place of the fields meant. A leading byte order
 * mark is dropped.
 */
static json_t *value_to_fields(const char *text, size_t len, char *why,
                               size_t whylen)
{
    char shown[FIELD_NAME_SHOWN_MAX + 1];
    json_error_t error;
    json_t *parsed;
    const char *bad;

    why[0] = '\0';
    if (len >= UTF8_BOM_LEN && memcmp(text, UTF8_BOM, UTF8_BOM_LEN) == 0) {
        text += UTF8_BOM_LEN;
        len -= UTF8_BOM_LEN;
    }
    if (!looks_like_object(text, len)) {
        /* A trailing newline from `echo` is not part of the value. */
        return json_pack("{s:s%}", "value", text, cli_drop_newline(text, len));
    }
    /* Text that opens with '{' parses to an object or not at all. */
    parsed = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
    if (parsed == NULL) {
        describe_parse_error(&error, why, whylen);
        return NULL;
    }
    bad = first_non_string(parsed);
    if (bad == NULL) {
        return parsed;
    }
    field_name_shown(bad, shown, sizeof(shown));
    snprintf(why, whylen, "field \"%s\" is not a string", shown);
    json_decref(parsed);
    return NULL;
}

static int cmd_data(struct cli *cli, int argc, char **argv)
{
    static const struct option options[] = {
        {"value-file", required_argument, NULL, 'f'},
        {NULL, 0, NULL, 0},
    };
    struct cjc_error err = {0};
    const char *value_file = NULL;
    json_t *out = NULL;
    int c;

    if (wants_help(argc, argv)) {
        puts("usage: cerrojo data get CLASS\n"
             "       cerrojo data put CLASS [--value-file FILE]\n\n"
             "CLASS is public, private or protected (protected needs a "
             "stateful\nsession). put reads the value from FILE or stdin: a "
             "JSON object of\nstrings sets those fields; other text sets "
             "the field \"value\", without one\ntrailing newline (LF or "
             "CRLF). A JSON array is rejected. Text that\nstarts with '{' "
             "must be such an object, with 1 to 32 fields whose names\nare "
             "1 to 64 characters of a-z, 0-9 and _. Empty input is "
             "rejected. A\nfield that the object sets to \"\" is deleted. "
             "The input is at most 64\nKiB, and each field value at most "
             "4096 bytes of UTF-8. Invalid input\nexits with status 2 and "
             "sends nothing.");
        return CLI_EXIT_OK;
    }
    if (argc < 3)
        return usage_error("%s needs get|put and a CLASS", argv[0]);
    const char *verb = argv[1];
    const char *data_class = argv[2];
    if (!valid_class(data_class))
        return usage_error(
            "invalid class '%s': expected public, private or protected",
            data_class);
    /* The gateway serves protected data only on the stateful channel, and
     * its plain 400 for a stateless request reads like tampering. */
    if (strcmp(data_class, "protected") == 0 &&
        !cjc_client_has_session(cli->client))
        return input_error("the protected class needs a stateful session, "
                           "but this state file has none. Run 'cerrojo "
                           "login' without --stateless first");
    if (strcmp(verb, "get") == 0) {
        if (argc > 3)
            return usage_error("unexpected argument '%s'", argv[3]);
        if (cjc_data_get(cli->client, data_class, &out, &err) != CJ_OK)
            return fail(&err);
        return print_result(cli, "data get", out);
    }
    if (strcmp(verb, "put") != 0)
        return usage_error("invalid data command '%s': expected get or put",
                           verb);

    optind = 1;
    opterr = 0;
    argc -= 2;
    argv += 2;
    while ((c = getopt_long(argc, argv, ":", options, NULL)) != -1) {
        if (c != 'f')
            return option_error("data put", c, argv);
        value_file = optarg;
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);

    char ioerr[256] = "";
    char *text = NULL;
    size_t len = 0;
    enum cj_status read_rc =
        cli_read_value(value_file, &text, &len, ioerr, sizeof(ioerr));
    if (read_rc == CJ_ERR_NOMEM) {
        fprintf(stderr, "cerrojo: out of memory reading the value\n");
        return CLI_EXIT_FAILED;
    }
    if (read_rc != CJ_OK)
        return input_error(ioerr);
    if (value_is_empty(text, len)) {
        free(text);
        fprintf(stderr,
                "cerrojo: the value is empty, so nothing was stored; to "
                "delete a field, give a JSON object that sets it to \"\", "
                "such as {\"value\":\"\"}\n");
        return CLI_EXIT_USAGE;
    }
    if (value_is_json_array(text, len)) {
        sodium_memzero(text, len);
        free(text);
        return input_error(
            "the value is a JSON array, but data put stores only a JSON "
            "object of string fields or plain text, so nothing was stored; "
            "to keep the array as text, put it in a string field, such as "
            "{\"value\":\"[1,2]\"}");
    }
    char why[200];
    json_t *fields = value_to_fields(text, len, why, sizeof(why));
    /* Text that is no object fails to convert only when it is not UTF-8 or
     * memory ran out. */
    bool utf8 = fields != NULL || cli_utf8_valid(text, len);
    sodium_memzero(text, len);
    free(text);
    if (why[0] != '\0') {
        fprintf(stderr,
                "cerrojo: the value starts with '{' but is not a JSON "
                "object of string fields (%s); fix it, or give text that "
                "does not start with '{' to set the field \"value\"\n",
                why);
        return CLI_EXIT_USAGE;
    }
    if (fields == NULL && !utf8)
        return input_error("the value is not valid UTF-8 text");
    if (fields == NULL) {
        fprintf(stderr, "cerrojo: out of memory parsing the value\n");
        return CLI_EXIT_FAILED;
    }
    if (!fields_allowed(fields, why, sizeof(why))) {
        json_decref(fields);
        return input_error(why);
    }
    if (first_oversize_field(fields, why, sizeof(why)) != NULL) {
        json_decref(fields);
        return input_error(why);
    }
    enum cj_status rc =
        cjc_data_put(cli->client, data_class, fields, &out, &err);
    json_decref(fields);
    if (rc != CJ_OK)
        return fail(&err);
    return print_result(cli, "data put", out);
}

static int cmd_refresh(struct cli *cli, int argc, char **argv)
{
    struct cjc_error err = {0};
    json_t *out = NULL;

    if (wants_help(argc, argv)) {
        puts("usage: cerrojo refresh\n\nRotates the refresh token and "
             "stores the new access and refresh tokens.");
        return CLI_EXIT_OK;
    }
    if (argc > 1)
        return usage_error("refresh takes no arguments, got '%s'", argv[1]);
    if (cjc_refresh(cli->client, &out, &err) != CJ_OK)
        return fail(&err);
    return print_result(cli, "refresh", out);
}

static int cmd_logout(struct cli *cli, int argc, char **argv)
{
    struct cjc_error err = {0};
    bool all = false;

    if (wants_help(argc, argv)) {
        puts("usage: cerrojo logout [--all]\n\nRevokes this device's "
             "refresh family, session and access token;\n--all revokes "
             "every device of the user. When the server rejects the\nstored "
             "session, the tokens are revoked without it. When the server\n"
             "no longer has the session, the refresh token alone revokes "
             "its family,\nand --all cannot reach other devices.");
        return CLI_EXIT_OK;
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--all") != 0)
            return usage_error("unexpected argument '%s'", argv[i]);
        all = true;
    }
    if (cjc_logout(cli->client, all, &err) != CJ_OK)
        return fail(&err);
    return print_result(cli, all ? "logout --all" : "logout", NULL);
}

struct command {
    const char *name;
    int (*run)(struct cli *cli, int argc, char **argv);
};

static int cmd_register(struct cli *cli, int argc, char **argv)
{
    return cmd_credentials(cli, true, argc, argv);
}

static int cmd_login(struct cli *cli, int argc, char **argv)
{
    return cmd_credentials(cli, false, argc, argv);
}

static const struct command commands[] = {
    {"keys", cmd_keys},
    {"handshake", cmd_handshake},
    {"register", cmd_register},
    {"login", cmd_login},
    {"me", cmd_me},
    {"data", cmd_data},
    {"refresh", cmd_refresh},
    {"logout", cmd_logout},
};

/* Parses the global options; returns the index of the command or -1. */
static int parse_globals(struct cli *cli, int argc, char **argv)
{
    int i = 1;

    cli->opts.url = getenv("CERROJO_URL");
    if (cli->opts.url == NULL || cli->opts.url[0] == '\0')
        cli->opts.url = CLI_DEFAULT_URL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--json") == 0) {
            cli->json = true;
            continue;
        }
        if (strcmp(opt, "--help") == 0 || strcmp(opt, "-h") == 0) {
            fputs(global_usage, stdout);
            exit(CLI_EXIT_OK);
        }
        /* Checked before the value, so that an unknown option is named as
         * unknown whether or not an argument follows it. */
        if (strcmp(opt, "--url") != 0 && strcmp(opt, "--state") != 0 &&
            strcmp(opt, "--pin") != 0) {
            usage_error("unknown option '%s'", opt);
            return -1;
        }
        if (i + 1 >= argc) {
            usage_error("option %s needs a value", opt);
            return -1;
        }
        if (strcmp(opt, "--url") == 0) {
            cli->opts.url = argv[++i];
        } else if (strcmp(opt, "--state") == 0) {
            cli->opts.state_path = argv[++i];
        } else if (strcmp(opt, "--pin") == 0) {
            if (cli->opts.n_pins == CJC_MAX_PINS) {
                usage_error("at most 8 --pin options, got more at '%s'",
                            argv[i + 1]);
                return -1;
            }
            struct cjc_error why = {0};
            if (cjc_pin_check(argv[i + 1], why.message, sizeof(why.message)) !=
                CJ_OK) {
                usage_error("%s", why.message);
                return -1;
            }
            cli->opts.pins[cli->opts.n_pins++] = argv[++i];
        }
    }
    /* The client library compares and stores the URL in this form too. */
    if (cjc_url_normalize(cli->opts.url, cli->url, sizeof(cli->url)) != CJ_OK) {
        usage_error("invalid URL '%s': expected http://HOST:PORT or "
                    "https://HOST:PORT",
                    cli->opts.url);
        return -1;
    }
    cli->opts.url = cli->url;
    if (i >= argc) {
        usage_error("%s", "missing COMMAND");
        return -1;
    }
    return i;
}

/*
 * Rejects a --state that names a folder, before the client locks it and
 * checks its mode. The lock would leave FOLDER.lock behind, and the mode
 * check would advise chmod 600 on a folder such as /tmp.
 */
static int check_state_option(const char *state_path)
{
    struct stat st;
    size_t len;

    if (state_path == NULL)
        return CLI_EXIT_OK;
    len = strlen(state_path);
    if ((len > 0 && state_path[len - 1] == '/') ||
        (stat(state_path, &st) == 0 && S_ISDIR(st.st_mode)))
        return usage_error("--state %s is a folder; name a file", state_path);
    return CLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    struct cli cli = {0};
    struct cjc_error err = {0};
    const struct command *cmd = NULL;
    int status;

    if (sodium_init() < 0) {
        fprintf(stderr, "cerrojo: libsodium failed to initialize\n");
        return CLI_EXIT_FAILED;
    }
    int first = parse_globals(&cli, argc, argv);
    if (first < 0)
        return CLI_EXIT_USAGE;
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[first], commands[i].name) == 0)
            cmd = &commands[i];
    if (cmd == NULL)
        return usage_error("unknown command '%s'", argv[first]);
    /* A command's --help needs no state file and no server. */
    if (wants_help(argc - first, argv + first))
        return cmd->run(&cli, argc - first, argv + first);
    if (reject_global_options(argc - first, argv + first) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;
    if (check_state_option(cli.opts.state_path) != CLI_EXIT_OK)
        return CLI_EXIT_USAGE;

    /* Only a command that starts a new login may replace one made at
     * another URL. A handshake starts none, because it binds no user, so
     * it replaces only a session without tokens. */
    cli.opts.replace_other_login =
        strcmp(cmd->name, "login") == 0 || strcmp(cmd->name, "register") == 0;
    cli.opts.replace_other_session = strcmp(cmd->name, "handshake") == 0;
    cli.opts.notice = print_notice;
    /* A user may stop a command with Ctrl-C at any point. */
    cli.opts.save_before_send = true;
    enum cj_status rc = cjc_client_open(&cli.opts, &cli.client, &err);
    /* CJ_ERR_INVALID means local input that no request can mend, such as
     * a damaged state file or a state path that is too long. */
    if (rc == CJ_ERR_INVALID)
        return input_error(err.message);
    if (rc != CJ_OK)
        return fail(&err);
    status = cmd->run(&cli, argc - first, argv + first);
    cjc_client_close(cli.client);
    return status;
}
