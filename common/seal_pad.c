/* Padding of sealed plaintexts with trailing JSON whitespace. */
#include "seal_pad.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "crypto_util.h"

/* Base64url without padding writes 4 characters for every 3 bytes. */
#define CJ_SEAL_PAD_B64_IN  3
#define CJ_SEAL_PAD_B64_OUT 4

enum cj_status cj_seal_pad_json(char **text, size_t *text_len,
                                size_t prefix_len, size_t max_len)
{
    size_t used;
    size_t target;
    char *padded;

    if (text == NULL || *text == NULL || text_len == NULL)
        return CJ_ERR_INVALID;
    if (prefix_len > SIZE_MAX - *text_len)
        return CJ_ERR_INVALID;
    used = prefix_len + *text_len;
    if (used >= max_len)
        return CJ_OK;
    target = used + (CJ_SEAL_PAD_BLOCK_LEN - used % CJ_SEAL_PAD_BLOCK_LEN) %
                        CJ_SEAL_PAD_BLOCK_LEN;
    if (target > max_len)
        target = max_len;
    if (target == used)
        return CJ_OK;
    padded = malloc(target - prefix_len + 1);
    if (padded == NULL)
        return CJ_ERR_NOMEM;
    memcpy(padded, *text, *text_len);
    memset(padded + *text_len, ' ', target - used);
    padded[target - prefix_len] = '\0';
    cj_wipe(*text, *text_len);
    free(*text);
    *text = padded;
    *text_len = target - prefix_len;
    return CJ_OK;
}

size_t cj_seal_pad_plaintext_max(size_t envelope_max)
{
    size_t ct_text;
    size_t ct_len;

    if (envelope_max <= CJ_SEAL_PAD_ENVELOPE_OVERHEAD)
        return 0;
    ct_text = envelope_max - CJ_SEAL_PAD_ENVELOPE_OVERHEAD;
    /* Whole groups of 4 characters only, which makes the bound slightly
     * low but never high. */
    ct_len = ct_text / CJ_SEAL_PAD_B64_OUT * CJ_SEAL_PAD_B64_IN;
    if (ct_len <= CJ_AEAD_TAG_LEN)
        return 0;
    return ct_len - CJ_AEAD_TAG_LEN;
}
