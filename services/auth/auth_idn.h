/*
 * Internationalized email domains. A domain can be written with Unicode
 * labels ("bücher.example") or with the ASCII labels that encode them
 * ("xn--bcher-kva.example"). Both name the same mailbox, so auth decodes
 * encoded labels before it normalizes an address.
 */
#ifndef AUTH_IDN_H
#define AUTH_IDN_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/*
 * Copies an email address to out with its domain's "xn--" labels decoded
 * (Unicode TS #46 processing, nontransitional, with the bidi and
 * CONTEXTJ checks). Sets *decoded to false and writes nothing when the
 * address has no '@' or its domain has no "xn--" label. Returns
 * CJ_ERR_INVALID when a label is not a valid encoding or the result does
 * not fit out_size bytes.
 */
CJ_WARN_UNUSED enum cj_status auth_idn_email_decode(const char *input,
                                                    size_t len, char *out,
                                                    size_t out_size,
                                                    bool *decoded);

#endif
