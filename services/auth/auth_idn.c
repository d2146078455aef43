/* Decoding of "xn--" labels in email domains through ICU's UTS #46. */
#include "auth_idn.h"

#include <pthread.h>
#include <string.h>
#include <strings.h>

#include <unicode/uidna.h>

/* The prefix of an encoded label, in any case (RFC 3490 section 5). */
#define IDN_ACE_PREFIX     "xn--"
#define IDN_ACE_PREFIX_LEN 4

static UIDNA *idna;
static pthread_once_t idna_once = PTHREAD_ONCE_INIT;

/* ICU documents a UTS #46 instance as safe for concurrent use. */
static void idna_open(void)
{
    UErrorCode err = U_ZERO_ERROR;
    UIDNA *opened = uidna_openUTS46(UIDNA_USE_STD3_RULES | UIDNA_CHECK_BIDI |
                                        UIDNA_CHECK_CONTEXTJ |
                                        UIDNA_NONTRANSITIONAL_TO_UNICODE,
                                    &err);

    if (U_SUCCESS(err)) {
        idna = opened;
    }
}

/* Returns true when a label of the domain starts with the ACE prefix. */
static bool has_encoded_label(const char *domain, size_t len)
{
    size_t start = 0;

    for (size_t i = 0; i <= len; i++) {
        if (i == len || domain[i] == '.') {
            if (i - start >= IDN_ACE_PREFIX_LEN &&
                strncasecmp(domain + start, IDN_ACE_PREFIX,
                            IDN_ACE_PREFIX_LEN) == 0) {
                return true;
            }
            start = i + 1;
        }
    }
    return false;
}

enum cj_status auth_idn_email_decode(const char *input, size_t len, char *out,
                                     size_t out_size, bool *decoded)
{
    UErrorCode err = U_ZERO_ERROR;
    UIDNAInfo info = UIDNA_INFO_INITIALIZER;
    const char *at = len > 0 ? memrchr(input, '@', len) : NULL;
    size_t local_len;
    size_t domain_len;
    int32_t written;

    *decoded = false;
    if (at == NULL) {
        return CJ_OK;
    }
    local_len = (size_t)(at - input) + 1;
    domain_len = len - local_len;
    if (!has_encoded_label(at + 1, domain_len)) {
        return CJ_OK;
    }
    pthread_once(&idna_once, idna_open);
    if (idna == NULL || local_len >= out_size || domain_len > INT32_MAX ||
        out_size - local_len > INT32_MAX) {
        return CJ_ERR_INVALID;
    }
    memcpy(out, input, local_len);
    written = uidna_nameToUnicodeUTF8(
        idna, at + 1, (int32_t)domain_len, out + local_len,
        (int32_t)(out_size - local_len), &info, &err);
    /* A full buffer leaves no room for the terminator, which ICU reports
     * as a warning rather than an error. */
    if (U_FAILURE(err) || err == U_STRING_NOT_TERMINATED_WARNING ||
        info.errors != 0 || written < 0 ||
        (size_t)written >= out_size - local_len) {
        memset(out, 0, out_size);
        return CJ_ERR_INVALID;
    }
    out[local_len + (size_t)written] = '\0';
    *decoded = true;
    return CJ_OK;
}
