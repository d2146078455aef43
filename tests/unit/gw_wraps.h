/*
 * Declares the link-time double of the gateway's rate-limit script call.
 * A test linked with -Wl,--wrap=gw_ratelimit_take_many (see
 * services/gateway/CMakeLists.txt) defines it, and every call that gw_core
 * makes to gw_ratelimit_take_many reaches that definition.
 */
#ifndef CJ_TEST_GW_WRAPS_H
#define CJ_TEST_GW_WRAPS_H

#include "gw_redis.h"

/* The signature must match gw_ratelimit_take_many in gw_redis.h, because
 * the linker does not compare them. */
enum cj_status
__wrap_gw_ratelimit_take_many(struct gw_redis *redis, const char *bucket,
                              const char *client_ip, unsigned per_minute,
                              unsigned burst, unsigned max_count,
                              unsigned *granted, unsigned *retry_after_s);

#endif
