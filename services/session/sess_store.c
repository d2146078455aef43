/*
 * Redis commands and Lua scripts of cerrojo-session. Every state change
 * that must be atomic (create, epoch compare-and-set, replay window, bind,
 * delete, revocation checks) is one Lua script. Times are Unix milliseconds
 * passed in by the service, so that epochs and expiries follow one clock.
 */
#include "sess_store.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SESS_ARGS_MAX     16
#define SESS_NUM_TEXT_MAX 24
#define SESS_REDIS_KEY_MAX                                                     \
    (sizeof(SESS_REVOKE_PREFIX) + sizeof("user:") + SESS_NAME_MAX + 1)

/* Session hash fields: c created ms, u user ("" unbound), b bound ms and
 * e epoch. k is the wrapped key of e, p the wrapped key of e - 1, pu when p
 * is dropped, ws the highest sequence seen and wb the window ring of '0'
 * and '1'. it is the idle timeout ms, ab the absolute expiry ms and n the
 * count of advances. */

/*
 * Lua function shared by the scripts that accept a bound session. It
 * deletes the session, as DeleteSession does, when the user's revocation
 * time (whole seconds, from a logout of all devices) is at or after the
 * second the session was bound. This check does not depend on
 * DeleteUserSessions, which can fail or be lost after auth's commit. A
 * session stored before the bind time was recorded has no b, and its
 * creation time stands in. A session is never bound before it is created,
 * so that choice can only end a session, never keep a revoked one. The
 * arguments are the hash key, the session id, the values of u, b and c,
 * and the index i of five ARGV entries: the prefixes of the user
 * revocation keys, the due set, the user index prefix, the tombstone
 * prefix and the tombstone lifetime (ms).
 */
#define LUA_DROP_IF_REVOKED                                                    \
    "local function drop_if_revoked(k, sid, u, b, c, i)\n"                     \
    "  if not u or u == '' then return false end\n"                            \
    "  local r = redis.call('GET', ARGV[i] .. u)\n"                            \
    "  if not r then return false end\n"                                       \
    "  local bound = tonumber(b or c)\n"                                       \
    "  if bound and math.floor(bound / 1000) > tonumber(r) then\n"             \
    "    return false\n"                                                       \
    "  end\n"                                                                  \
    "  redis.call('DEL', k)\n"                                                 \
    "  redis.call('ZREM', ARGV[i + 1], sid)\n"                                 \
    "  redis.call('SREM', ARGV[i + 2] .. u, sid)\n"                            \
    "  redis.call('SET', ARGV[i + 3] .. sid, '1', 'PX', ARGV[i + 4])\n"        \
    "  return true\n"                                                          \
    "end\n"

static const char SCRIPT_CREATE_SRC[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end\n"
    "local abs = tonumber(ARGV[6])\n"
    "local exp = math.min(tonumber(ARGV[7]) + tonumber(ARGV[5]), abs)\n"
    "redis.call('HSET', KEYS[1], 'c', ARGV[2], 'u', '', 'e', ARGV[3],\n"
    "  'k', ARGV[4], 'ws', '0', 'wb', string.rep('0', tonumber(ARGV[9])),\n"
    "  'it', ARGV[5], 'ab', ARGV[6], 'n', '0')\n"
    "redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', exp))\n"
    "redis.call('ZADD', KEYS[2], ARGV[8], ARGV[1])\n"
    "if redis.call('PEXPIRETIME', KEYS[2]) < abs then\n"
    "  redis.call('PEXPIREAT', KEYS[2], ARGV[6])\n"
    "end\n"
    "return 1\n";

/* A session bound before its user's revocation time reads as missing. */
static const char SCRIPT_LOAD_SRC[] = LUA_DROP_IF_REVOKED
    "local v = redis.call('HMGET', KEYS[1], 'c', 'u', 'e', 'k', 'p', 'pu',\n"
    "  'it', 'ab', 'n', 'b')\n"
    "if not v[1] then return false end\n"
    "if drop_if_revoked(KEYS[1], ARGV[1], v[2], v[10], v[1], 2) then\n"
    "  return false\n"
    "end\n"
    "v[10] = redis.call('PEXPIRETIME', KEYS[1])\n"
    "return v\n";

/* The compare-and-set of an epoch: nothing changes unless the stored
 * epoch is still the one the caller derived its keys from. */
static const char SCRIPT_ADVANCE_SRC[] =
    "local e = redis.call('HGET', KEYS[1], 'e')\n"
    "if not e then return -1 end\n"
    "if e ~= ARGV[2] then return 0 end\n"
    "redis.call('HSET', KEYS[1], 'e', ARGV[3], 'k', ARGV[4])\n"
    "if ARGV[5] ~= '' then\n"
    "  redis.call('HSET', KEYS[1], 'p', ARGV[5], 'pu', ARGV[6])\n"
    "else\n"
    "  redis.call('HDEL', KEYS[1], 'p', 'pu')\n"
    "end\n"
    "if ARGV[3] ~= ARGV[2] then redis.call('HINCRBY', KEYS[1], 'n', 1) end\n"
    "redis.call('ZADD', KEYS[2], ARGV[7], ARGV[1])\n"
    "return 1\n";

/*
 * The sliding replay window (the DTLS scheme of RFC 6347 4.1.2.6): ws is
 * the highest sequence accepted, wb a ring of W flags where sequence s sits
 * at s mod W. A number above ws slides the window and clears the slots it
 * passes. A number within the window is accepted once, and an older one is
 * rejected. Returns -1 when the session is gone or was bound before its
 * user's revocation time (and is deleted now), -2 for a replay.
 *
 * A bound session is also a user's credential, so without the revocation
 * cache's loaded marker (KEYS[2]) the script returns -3 and changes
 * nothing, as IsRevoked fails for a token: a revocation that auth could not
 * deliver may be missing. An unbound session carries no user and passes.
 */
static const char SCRIPT_COMMIT_SRC[] = LUA_DROP_IF_REVOKED
    "local v = redis.call('HMGET', KEYS[1], 'ws', 'wb', 'it', 'ab', 'u',\n"
    "  'e', 'b', 'c')\n"
    "if not v[1] then return -1 end\n"
    "if drop_if_revoked(KEYS[1], ARGV[4], v[5], v[7], v[8], 5) then\n"
    "  return -1\n"
    "end\n"
    "if v[5] and v[5] ~= '' and redis.call('EXISTS', KEYS[2]) == 0 then\n"
    "  return -3\n"
    "end\n"
    "local W = tonumber(ARGV[3])\n"
    "local top = tonumber(v[1])\n"
    "local bits = v[2]\n"
    "local seq = tonumber(ARGV[1])\n"
    "if string.len(bits) ~= W then\n"
    "  return redis.error_reply('replay window size mismatch')\n"
    "end\n"
    "local function slot(s) return (s % W) + 1 end\n"
    "if seq > top then\n"
    "  if seq - top >= W then\n"
    "    bits = string.rep('0', W)\n"
    "  else\n"
    "    local b = {}\n"
    "    for i = 1, W do b[i] = string.sub(bits, i, i) end\n"
    "    for s = top + 1, seq do b[slot(s)] = '0' end\n"
    "    bits = table.concat(b)\n"
    "  end\n"
    "  top = seq\n"
    "elseif seq + W <= top then\n"
    "  return -2\n"
    "elseif string.sub(bits, slot(seq), slot(seq)) == '1' then\n"
    "  return -2\n"
    "end\n"
    "local i = slot(seq)\n"
    "bits = string.sub(bits, 1, i - 1) .. '1' .. string.sub(bits, i + 1)\n"
    "redis.call('HSET', KEYS[1], 'ws', string.format('%.0f', top),\n"
    "  'wb', bits)\n"
    "local exp = math.min(tonumber(ARGV[2]) + tonumber(v[3]),\n"
    "  tonumber(v[4]))\n"
    "redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', exp))\n"
    "return {1, v[5], v[6], exp}\n";

/*
 * Lua function of the bind script that ends the user's oldest sessions
 * while the user's index lists more than max (ARGV[12], 0 for no limit).
 * It returns how many it ended. Members whose hash expired, or that are
 * bound to someone else, are removed from the index and not counted, and
 * so are sessions that drop_if_revoked deletes. The eviction skips the
 * session being bound (self), so a login succeeds however many sessions
 * its user left open. The others are ordered by bind time b (creation
 * time c where b is absent, then the id), and each ended one is deleted
 * with its tombstone, as DeleteSession does. The index is read in full
 * only when SCARD is over max, so the usual bind costs one SCARD.
 * NOTE: self is kept even when another session has a later bind time,
 * which happens when concurrent binds reach Redis out of bind-time order.
 */
#define LUA_EVICT_OLDEST                                                       \
    "local function evict_oldest(index, self, user, max)\n"                    \
    "  if max <= 0 or redis.call('SCARD', index) <= max then return 0 end\n"   \
    "  local live = {}\n"                                                      \
    "  for _, sid in ipairs(redis.call('SMEMBERS', index)) do\n"               \
    "    local k = ARGV[11] .. sid\n"                                          \
    "    local v = redis.call('HMGET', k, 'u', 'b', 'c')\n"                    \
    "    if sid == self then\n"                                                \
    "      -- self is counted once, as the 1 in n below\n"                     \
    "    elseif not v[1] then\n"                                               \
    "      redis.call('SREM', index, sid)\n"                                   \
    "      redis.call('ZREM', ARGV[6], sid)\n"                                 \
    "    elseif v[1] ~= user then\n"                                           \
    "      redis.call('SREM', index, sid)\n"                                   \
    "    elseif not drop_if_revoked(k, sid, v[1], v[2], v[3], 5) then\n"       \
    "      live[#live + 1] = {sid, tonumber(v[2] or v[3]) or 0}\n"             \
    "    end\n"                                                                \
    "  end\n"                                                                  \
    "  table.sort(live, function(x, y)\n"                                      \
    "    if x[2] ~= y[2] then return x[2] < y[2] end\n"                        \
    "    return x[1] < y[1]\n"                                                 \
    "  end)\n"                                                                 \
    "  local n = #live + 1 - max\n"                                            \
    "  for i = 1, n do\n"                                                      \
    "    local sid = live[i][1]\n"                                             \
    "    redis.call('DEL', ARGV[11] .. sid)\n"                                 \
    "    redis.call('ZREM', ARGV[6], sid)\n"                                   \
    "    redis.call('SREM', index, sid)\n"                                     \
    "    redis.call('SET', ARGV[8] .. sid, '1', 'PX', ARGV[9])\n"              \
    "  end\n"                                                                  \
    "  return math.max(n, 0)\n"                                                \
    "end\n"

/* Binding an unbound session records the bind time ARGV[10], which auth
 * sends from the clock that also sets the user's revocation time, while
 * ARGV[4], session's own time, sets the expiry. Binding it again to the
 * same user keeps the first bind time, so a session bound before the
 * user's revocation time is deleted here too, and so is a fresh bind in
 * that same second. Returns -1 when the session is gone or deleted, -2
 * when it is bound to another user. The bind and the eviction of the
 * oldest sessions run in one script, so concurrent binds of one user
 * cannot both count the same sessions. */
static const char SCRIPT_BIND_SRC[] = LUA_DROP_IF_REVOKED LUA_EVICT_OLDEST
    "local v = redis.call('HMGET', KEYS[1], 'u', 'ab', 'c', 'b')\n"
    "if not v[2] then return -1 end\n"
    "if v[1] ~= '' and v[1] ~= ARGV[2] then return -2 end\n"
    "local bound = v[4]\n"
    "if v[1] == '' then bound = ARGV[10] end\n"
    "if drop_if_revoked(KEYS[1], ARGV[1], ARGV[2], bound, v[3], 5) then\n"
    "  return -1\n"
    "end\n"
    "if v[1] == '' then redis.call('HSET', KEYS[1], 'b', ARGV[10]) end\n"
    "redis.call('HSET', KEYS[1], 'u', ARGV[2], 'it', ARGV[3])\n"
    "local abs = tonumber(v[2])\n"
    "local exp = math.min(tonumber(ARGV[4]) + tonumber(ARGV[3]), abs)\n"
    "redis.call('PEXPIREAT', KEYS[1], string.format('%.0f', exp))\n"
    "redis.call('SADD', KEYS[2], ARGV[1])\n"
    "if redis.call('PEXPIRETIME', KEYS[2]) < abs then\n"
    "  redis.call('PEXPIREAT', KEYS[2], v[2])\n"
    "end\n"
    "local ended = evict_oldest(KEYS[2], ARGV[1], ARGV[2],\n"
    "  tonumber(ARGV[12]))\n"
    "return {v[3], exp, abs, ended}\n";

static const char SCRIPT_DELETE_SRC[] =
    "local u = redis.call('HGET', KEYS[1], 'u')\n"
    "local n = redis.call('DEL', KEYS[1])\n"
    "redis.call('ZREM', KEYS[2], ARGV[1])\n"
    "if u and u ~= '' then redis.call('SREM', ARGV[3] .. u, ARGV[1]) end\n"
    "redis.call('SET', KEYS[3], '1', 'PX', ARGV[2])\n"
    "return n\n";

/* A session listed in the index but bound to someone else is left alone;
 * one that expired already still gets its tombstone. */
static const char SCRIPT_DELETE_USER_SRC[] =
    "local n = 0\n"
    "for _, sid in ipairs(redis.call('SMEMBERS', KEYS[1])) do\n"
    "  local k = ARGV[3] .. sid\n"
    "  local u = redis.call('HGET', k, 'u')\n"
    "  if u == ARGV[1] then n = n + redis.call('DEL', k) end\n"
    "  if u == false or u == ARGV[1] then\n"
    "    redis.call('ZREM', KEYS[2], sid)\n"
    "    redis.call('SET', ARGV[4] .. sid, '1', 'PX', ARGV[2])\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return n\n";

static const char SCRIPT_UNLOCK_SRC[] =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  return redis.call('DEL', KEYS[1])\n"
    "end\n"
    "return 0\n";

/* A token issued in the same second as the user's revocation counts as
 * revoked: iat has one-second resolution, so this errs on the safe side. */
/* A token of a stateful login lives only as long as its session: a sid
 * with a tombstone (deleted) or with no session hash (expired, or lost with
 * Redis) counts as revoked. */
static const char SCRIPT_IS_REVOKED_SRC[] =
    "if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end\n"
    "if redis.call('EXISTS', KEYS[2]) == 1 then return 1 end\n"
    "local r = redis.call('GET', KEYS[3])\n"
    "if r and tonumber(ARGV[1]) <= tonumber(r) then return 2 end\n"
    "if ARGV[2] == '1' and (redis.call('EXISTS', KEYS[4]) == 1 or\n"
    "    redis.call('EXISTS', KEYS[5]) == 0) then\n"
    "  return 3\n"
    "end\n"
    "return 0\n";

static const char SCRIPT_REVOKE_USER_SRC[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and tonumber(cur) >= tonumber(ARGV[1]) then\n"
    "  if redis.call('PEXPIRETIME', KEYS[1]) < tonumber(ARGV[2]) then\n"
    "    redis.call('PEXPIREAT', KEYS[1], ARGV[2])\n"
    "  end\n"
    "  return 0\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])\n"
    "return 1\n";

/* One batch of a revocation-cache load; the entries' expiries were
 * computed by the caller. A user time never moves backwards. ARGV[4] > 0
 * sets the loaded marker (KEYS[1]) for that many ms after the batch. */
/* A session whose revocation is loaded is also deleted, as DeleteSession
 * does, because a deletion that failed during an outage leaves it usable
 * for stateful requests, which read no tombstone. */
static const char SCRIPT_LOAD_BATCH_SRC[] =
    "local nt, nu = tonumber(ARGV[1]), tonumber(ARGV[2])\n"
    "local ns = tonumber(ARGV[3])\n"
    "local record, step = ARGV[12], tonumber(ARGV[13])\n"
    "if step == 1 then\n"
    "  redis.call('SET', record, '1', 'PX', ARGV[14])\n"
    "elseif step == 2 then\n"
    "  if redis.call('PEXPIRE', record, ARGV[14]) == 0 then return -1 end\n"
    "end\n"
    "local i = 15\n"
    "for _ = 1, nt do\n"
    "  redis.call('SET', ARGV[6] .. ARGV[i], '1', 'PXAT', ARGV[i + 1])\n"
    "  i = i + 2\n"
    "end\n"
    "for _ = 1, nu do\n"
    "  local k = ARGV[7] .. ARGV[i]\n"
    "  local cur = redis.call('GET', k)\n"
    "  if not cur or tonumber(cur) < tonumber(ARGV[i + 1]) then\n"
    "    redis.call('SET', k, ARGV[i + 1], 'PXAT', ARGV[i + 2])\n"
    "  end\n"
    "  i = i + 3\n"
    "end\n"
    "for _ = 1, ns do\n"
    "  local sid = ARGV[i]\n"
    "  local k = ARGV[9] .. sid\n"
    "  local u = redis.call('HGET', k, 'u')\n"
    "  redis.call('DEL', k)\n"
    "  redis.call('ZREM', ARGV[10], sid)\n"
    "  if u and u ~= '' then redis.call('SREM', ARGV[11] .. u, sid) end\n"
    "  redis.call('SET', ARGV[8] .. sid, '1', 'PX', ARGV[5])\n"
    "  i = i + 1\n"
    "end\n"
    "if tonumber(ARGV[4]) > 0 then\n"
    "  redis.call('SET', KEYS[1], '1', 'PX', ARGV[4])\n"
    "  if step ~= 0 then redis.call('DEL', record) end\n"
    "end\n"
    "return nt + nu + ns\n";

/* Scripts with their SHA-1, hashed once before first use. */
static struct cj_redis_script script_create;
static struct cj_redis_script script_load;
static struct cj_redis_script script_advance;
static struct cj_redis_script script_commit;
static struct cj_redis_script script_bind;
static struct cj_redis_script script_delete;
static struct cj_redis_script script_delete_user;
static struct cj_redis_script script_unlock;
static struct cj_redis_script script_is_revoked;
static struct cj_redis_script script_revoke_user;
static struct cj_redis_script script_load_batch;

static pthread_once_t scripts_once = PTHREAD_ONCE_INIT;

static void scripts_init(void)
{
    cj_redis_script_init(&script_create, SCRIPT_CREATE_SRC);
    cj_redis_script_init(&script_load, SCRIPT_LOAD_SRC);
    cj_redis_script_init(&script_advance, SCRIPT_ADVANCE_SRC);
    cj_redis_script_init(&script_commit, SCRIPT_COMMIT_SRC);
    cj_redis_script_init(&script_bind, SCRIPT_BIND_SRC);
    cj_redis_script_init(&script_delete, SCRIPT_DELETE_SRC);
    cj_redis_script_init(&script_delete_user, SCRIPT_DELETE_USER_SRC);
    cj_redis_script_init(&script_unlock, SCRIPT_UNLOCK_SRC);
    cj_redis_script_init(&script_is_revoked, SCRIPT_IS_REVOKED_SRC);
    cj_redis_script_init(&script_revoke_user, SCRIPT_REVOKE_USER_SRC);
    cj_redis_script_init(&script_load_batch, SCRIPT_LOAD_BATCH_SRC);
}

/* Arguments of one command; numbers are formatted into `num`. */
struct sess_args {
    int count;
    const char *value[SESS_ARGS_MAX];
    size_t len[SESS_ARGS_MAX];
    char num[SESS_ARGS_MAX][SESS_NUM_TEXT_MAX];
};

static void args_bin(struct sess_args *a, const void *value, size_t len)
{
    if (a->count >= SESS_ARGS_MAX) {
        return; /* callers stay below the limit; checked by args_ok */
    }
    a->value[a->count] = value;
    a->len[a->count] = len;
    a->count++;
}

static void args_str(struct sess_args *a, const char *value)
{
    args_bin(a, value, strlen(value));
}

static void args_i64(struct sess_args *a, int64_t value)
{
    if (a->count >= SESS_ARGS_MAX) {
        return;
    }
    snprintf(a->num[a->count], SESS_NUM_TEXT_MAX, "%" PRId64, value);
    args_str(a, a->num[a->count]);
}

static void args_u64(struct sess_args *a, uint64_t value)
{
    if (a->count >= SESS_ARGS_MAX) {
        return;
    }
    snprintf(a->num[a->count], SESS_NUM_TEXT_MAX, "%" PRIu64, value);
    args_str(a, a->num[a->count]);
}

/* While Redis is down, every command fails, so that event is limited. */
static struct cj_log_limit redis_unavailable_limit = CJ_LOG_LIMIT_INIT;

/*
 * Logs a failed command and frees its reply. The pool has already mapped
 * connection failures to CJ_ERR_UNAVAILABLE and error replies to
 * CJ_ERR_INTERNAL.
 */
static enum cj_status command_failed(enum cj_status st, redisReply *r,
                                     const char *what)
{
    if (st == CJ_ERR_UNAVAILABLE || st == CJ_ERR_TIMEOUT) {
        cj_log_limited(&redis_unavailable_limit, CJ_LOG_WARN,
                       "session.redis_unavailable", NULL,
                       CJ_F_STR("command", what),
                       CJ_F_STR("error", cj_redis_last_error()));
    } else {
        cj_log(CJ_LOG_ERROR, "session.redis_error", NULL,
               CJ_F_STR("command", what),
               CJ_F_STR("error", r != NULL && r->type == REDIS_REPLY_ERROR
                                     ? r->str
                                     : cj_redis_last_error()));
    }
    if (r != NULL) {
        freeReplyObject(r);
    }
    /* A timed-out command may or may not have run: the caller must not
     * read it as a clean refusal, and the client can retry. */
    return st == CJ_ERR_TIMEOUT ? CJ_ERR_UNAVAILABLE : st;
}

/*
 * Runs a script over argc arguments, the first key_count of them keys, and
 * logs a failure. *out is set only on CJ_OK and is then the caller's to free.
 */
static enum cj_status eval_argv(struct cj_redis_pool *pool,
                                struct cj_redis_script *s,
                                const char *command_name, int key_count,
                                int argc, const char **argv,
                                const size_t *argvlen, redisReply **out)
{
    redisReply *r = NULL;
    enum cj_status st;

    *out = NULL;
    pthread_once(&scripts_once, scripts_init);
    st = cj_redis_eval(pool, s, key_count, argc, argv, argvlen, &r);
    if (st != CJ_OK) {
        return command_failed(st, r, command_name);
    }
    *out = r;
    return CJ_OK;
}

/* Runs a script; *out is the caller's to free and set only on CJ_OK. */
static enum cj_status eval(struct cj_redis_pool *pool,
                           struct cj_redis_script *s, const char *what,
                           int key_count, struct sess_args *a, redisReply **out)
{
    return eval_argv(pool, s, what, key_count, a->count, a->value, a->len, out);
}

/* Runs a script whose reply the caller does not need. */
static enum cj_status eval_discard_reply(struct cj_redis_pool *pool,
                                         struct cj_redis_script *s,
                                         const char *command_name,
                                         int key_count, struct sess_args *a)
{
    redisReply *r = NULL;
    enum cj_status st = eval(pool, s, command_name, key_count, a, &r);

    if (r != NULL) {
        freeReplyObject(r);
    }
    return st;
}

/*
 * Runs a script that replies with an integer and stores it in *value. Any
 * other kind of reply is CJ_ERR_INTERNAL, and *value is set only on CJ_OK.
 */
static enum cj_status eval_integer(struct cj_redis_pool *pool,
                                   struct cj_redis_script *s,
                                   const char *command_name, int key_count,
                                   struct sess_args *a, long long *value)
{
    redisReply *r = NULL;
    enum cj_status st = eval(pool, s, command_name, key_count, a, &r);

    if (st != CJ_OK) {
        return st;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        *value = r->integer;
    } else {
        st = CJ_ERR_INTERNAL;
    }
    freeReplyObject(r);
    return st;
}

static enum cj_status command(struct cj_redis_pool *pool, struct sess_args *a,
                              const char *what, redisReply **out)
{
    redisReply *r = NULL;
    enum cj_status st;

    *out = NULL;
    st = cj_redis_command(pool, a->count, a->value, a->len, &r);
    if (st != CJ_OK) {
        return command_failed(st, r, what);
    }
    *out = r;
    return CJ_OK;
}

/* Runs a command whose reply the caller does not need. */
static enum cj_status command_discard_reply(struct cj_redis_pool *pool,
                                            struct sess_args *a,
                                            const char *command_name)
{
    redisReply *r = NULL;
    enum cj_status st = command(pool, a, command_name, &r);

    if (r != NULL) {
        freeReplyObject(r);
    }
    return st;
}

static void key_session(char *out, size_t size, const char *sid)
{
    snprintf(out, size, SESS_KEY_PREFIX "s:%s", sid);
}

static void key_user_index(char *out, size_t size, const char *user_id)
{
    snprintf(out, size, SESS_KEY_PREFIX "u:%s", user_id);
}

static void key_tombstone(char *out, size_t size, const char *sid)
{
    snprintf(out, size, SESS_REVOKE_PREFIX "sid:%s", sid);
}

#define KEY_DUE    SESS_KEY_PREFIX "due"
#define KEY_LOADED CJ_REVOKED_LOADED_KEY

/* Adds the five arguments that LUA_DROP_IF_REVOKED reads. */
static void args_revoked(struct sess_args *a, int64_t tombstone_ms)
{
    args_str(a, SESS_REVOKE_PREFIX "user:");
    args_str(a, KEY_DUE);
    args_str(a, SESS_KEY_PREFIX "u:");
    args_str(a, SESS_REVOKE_PREFIX "sid:");
    args_i64(a, tombstone_ms);
}

bool sess_name_valid(const char *name)
{
    size_t len;

    if (name == NULL) {
        return false;
    }
    len = strlen(name);
    if (len == 0 || len > SESS_NAME_MAX) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch <= 0x20 || ch >= 0x7f) {
            return false;
        }
    }
    return true;
}

enum cj_status sess_store_create(struct cj_redis_pool *pool, const char *sid,
                                 const struct sess_record *rec, int64_t now_ms,
                                 int64_t due_ms)
{
    char key[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};
    redisReply *r = NULL;
    enum cj_status st;

    key_session(key, sizeof(key), sid);
    args_str(&a, key);
    args_str(&a, KEY_DUE);
    args_str(&a, sid);
    args_i64(&a, rec->created_ms);
    args_u64(&a, rec->epoch);
    args_bin(&a, rec->key_wrapped, rec->key_wrapped_len);
    args_i64(&a, rec->idle_ms);
    args_i64(&a, rec->absolute_ms);
    args_i64(&a, now_ms);
    args_i64(&a, due_ms);
    args_i64(&a, SESS_WINDOW_SIZE);
    st = eval(pool, &script_create, "create", 2, &a, &r);
    if (st != CJ_OK) {
        return st;
    }
    st = (r->type == REDIS_REPLY_INTEGER && r->integer == 1) ? CJ_OK
                                                             : CJ_ERR_EXISTS;
    freeReplyObject(r);
    return st;
}

static bool element_i64(const redisReply *e, int64_t *out)
{
    char *end = NULL;
    long long v;

    if (e->type == REDIS_REPLY_INTEGER) {
        *out = e->integer;
        return true;
    }
    if (e->type != REDIS_REPLY_STRING || e->len == 0) {
        return false;
    }
    v = strtoll(e->str, &end, 10);
    if (end != e->str + e->len) {
        return false;
    }
    *out = v;
    return true;
}

static bool element_blob(const redisReply *e, unsigned char *out, size_t size,
                         size_t *len)
{
    if (e->type == REDIS_REPLY_NIL) {
        *len = 0;
        return true;
    }
    if (e->type != REDIS_REPLY_STRING || e->len > size) {
        return false;
    }
    memcpy(out, e->str, e->len);
    *len = e->len;
    return true;
}

static bool element_name(const redisReply *e, char *out, size_t size)
{
    if (e->type != REDIS_REPLY_STRING || e->len >= size) {
        return false;
    }
    memcpy(out, e->str, e->len);
    out[e->len] = '\0';
    return true;
}

/* Fills *out from the reply of the load script. */
static bool parse_record(const redisReply *r, struct sess_record *out)
{
    int64_t epoch = 0;
    int64_t advances = 0;

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 10) {
        return false;
    }
    memset(out, 0, sizeof(*out));
    if (!element_i64(r->element[0], &out->created_ms) ||
        !element_name(r->element[1], out->user_id, sizeof(out->user_id)) ||
        !element_i64(r->element[2], &epoch) || epoch < 0 ||
        !element_blob(r->element[3], out->key_wrapped, sizeof(out->key_wrapped),
                      &out->key_wrapped_len) ||
        out->key_wrapped_len == 0 ||
        !element_blob(r->element[4], out->prev_wrapped,
                      sizeof(out->prev_wrapped), &out->prev_wrapped_len) ||
        !element_i64(r->element[6], &out->idle_ms) ||
        !element_i64(r->element[7], &out->absolute_ms) ||
        !element_i64(r->element[8], &advances) ||
        !element_i64(r->element[9], &out->expires_ms)) {
        return false;
    }
    if (out->prev_wrapped_len > 0 &&
        !element_i64(r->element[5], &out->prev_until_ms)) {
        return false;
    }
    out->epoch = (uint64_t)epoch;
    out->advances = (uint64_t)advances;
    return true;
}

enum cj_status sess_store_load(struct cj_redis_pool *pool, const char *sid,
                               int64_t tombstone_ms, struct sess_record *out)
{
    char key[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};
    redisReply *r = NULL;
    enum cj_status st;

    key_session(key, sizeof(key), sid);
    args_str(&a, key);
    args_str(&a, sid);
    args_revoked(&a, tombstone_ms);
    st = eval(pool, &script_load, "load", 1, &a, &r);
    if (st != CJ_OK) {
        return st;
    }
    if (r->type == REDIS_REPLY_NIL) {
        st = CJ_ERR_NOT_FOUND;
    } else if (!parse_record(r, out)) {
        cj_log(CJ_LOG_ERROR, "session.record_malformed", NULL);
        st = CJ_ERR_INTERNAL;
    }
    freeReplyObject(r);
    return st;
}

enum cj_status sess_store_advance(struct cj_redis_pool *pool, const char *sid,
                                  uint64_t expected_epoch, uint64_t new_epoch,
                                  const unsigned char *key, size_t key_len,
                                  const unsigned char *prev, size_t prev_len,
                                  int64_t prev_until_ms, int64_t due_ms,
                                  bool *advanced)
{
    char skey[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};
    long long reply = 0;
    enum cj_status st;

    *advanced = false;
    key_session(skey, sizeof(skey), sid);
    args_str(&a, skey);
    args_str(&a, KEY_DUE);
    args_str(&a, sid);
    args_u64(&a, expected_epoch);
    args_u64(&a, new_epoch);
    args_bin(&a, key, key_len);
    args_bin(&a, prev_len > 0 ? prev : (const unsigned char *)"", prev_len);
    args_i64(&a, prev_until_ms);
    args_i64(&a, due_ms);
    st = eval_integer(pool, &script_advance, "advance", 2, &a, &reply);
    if (st != CJ_OK) {
        return st;
    }
    if (reply < 0) {
        return CJ_ERR_NOT_FOUND;
    }
    *advanced = reply == 1;
    return CJ_OK;
}

enum cj_status sess_store_commit_sequence(struct cj_redis_pool *pool,
                                          const char *sid, uint64_t sequence,
                                          int64_t now_ms, int64_t tombstone_ms,
                                          struct sess_commit *out)
{
    char key[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};
    redisReply *r = NULL;
    enum cj_status st;
    int64_t epoch = 0;

    if (sequence == 0 || sequence >= SESS_SEQUENCE_MAX) {
        return CJ_ERR_INVALID;
    }
    memset(out, 0, sizeof(*out));
    key_session(key, sizeof(key), sid);
    args_str(&a, key);
    args_str(&a, KEY_LOADED);
    args_u64(&a, sequence);
    args_i64(&a, now_ms);
    args_i64(&a, SESS_WINDOW_SIZE);
    args_str(&a, sid);
    args_revoked(&a, tombstone_ms);
    st = eval(pool, &script_commit, "commit", 2, &a, &r);
    if (st != CJ_OK) {
        return st;
    }
    if (r->type == REDIS_REPLY_INTEGER && r->integer == -3) {
        st = CJ_ERR_PRECONDITION;
    } else if (r->type == REDIS_REPLY_INTEGER) {
        st = r->integer == -2 ? CJ_ERR_REPLAYED : CJ_ERR_NOT_FOUND;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
               !element_name(r->element[1], out->user_id,
                             sizeof(out->user_id)) ||
               !element_i64(r->element[2], &epoch) || epoch < 0 ||
               !element_i64(r->element[3], &out->expires_ms)) {
        st = CJ_ERR_INTERNAL;
    } else {
        out->epoch = (uint64_t)epoch;
    }
    freeReplyObject(r);
    return st;
}

enum cj_status sess_store_bind(struct cj_redis_pool *pool, const char *sid,
                               const char *user_id,
                               const struct sess_bind_params *p,
                               struct sess_record *out, uint32_t *evicted)
{
    char key[SESS_REDIS_KEY_MAX];
    char index[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};
    redisReply *r = NULL;
    int64_t ended = 0;
    enum cj_status st;

    memset(out, 0, sizeof(*out));
    *evicted = 0;
    key_session(key, sizeof(key), sid);
    key_user_index(index, sizeof(index), user_id);
    args_str(&a, key);
    args_str(&a, index);
    args_str(&a, sid);
    args_str(&a, user_id);
    args_i64(&a, p->idle_ms);
    args_i64(&a, p->now_ms);
    args_revoked(&a, p->tombstone_ms);
    args_i64(&a, p->bound_ms);
    args_str(&a, SESS_KEY_PREFIX "s:");
    args_i64(&a, p->max_sessions);
    st = eval(pool, &script_bind, "bind", 2, &a, &r);
    if (st != CJ_OK) {
        return st;
    }
    if (r->type == REDIS_REPLY_INTEGER) {
        st = r->integer == -2 ? CJ_ERR_PRECONDITION : CJ_ERR_NOT_FOUND;
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 4 ||
               !element_i64(r->element[0], &out->created_ms) ||
               !element_i64(r->element[1], &out->expires_ms) ||
               !element_i64(r->element[2], &out->absolute_ms) ||
               !element_i64(r->element[3], &ended) || ended < 0 ||
               ended > UINT32_MAX) {
        st = CJ_ERR_INTERNAL;
    } else {
        snprintf(out->user_id, sizeof(out->user_id), "%s", user_id);
        out->idle_ms = p->idle_ms;
        *evicted = (uint32_t)ended;
    }
    freeReplyObject(r);
    return st;
}

enum cj_status sess_store_delete(struct cj_redis_pool *pool, const char *sid,
                                 int64_t tombstone_ms, bool *deleted)
{
    char key[SESS_REDIS_KEY_MAX];
    char tomb[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};
    long long reply = 0;
    enum cj_status st;

    *deleted = false;
    key_session(key, sizeof(key), sid);
    key_tombstone(tomb, sizeof(tomb), sid);
    args_str(&a, key);
    args_str(&a, KEY_DUE);
    args_str(&a, tomb);
    args_str(&a, sid);
    args_i64(&a, tombstone_ms);
    args_str(&a, SESS_KEY_PREFIX "u:");
    st = eval_integer(pool, &script_delete, "delete", 3, &a, &reply);
    if (st != CJ_OK) {
        return st;
    }
    *deleted = reply > 0;
    return CJ_OK;
}

enum cj_status sess_store_delete_user(struct cj_redis_pool *pool,
                                      const char *user_id, int64_t tombstone_ms,
                                      uint32_t *count)
{
    char index[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};
    long long reply = 0;
    enum cj_status st;

    *count = 0;
    key_user_index(index, sizeof(index), user_id);
    args_str(&a, index);
    args_str(&a, KEY_DUE);
    args_str(&a, user_id);
    args_i64(&a, tombstone_ms);
    args_str(&a, SESS_KEY_PREFIX "s:");
    args_str(&a, SESS_REVOKE_PREFIX "sid:");
    st = eval_integer(pool, &script_delete_user, "delete_user", 2, &a, &reply);
    if (st != CJ_OK) {
        return st;
    }
    if (reply < 0) {
        return CJ_ERR_INTERNAL;
    }
    *count = (uint32_t)reply;
    return CJ_OK;
}

enum cj_status sess_store_due(struct cj_redis_pool *pool, int64_t now_ms,
                              size_t max, char ids[][SESS_ID_LEN + 1],
                              size_t *count)
{
    struct sess_args a = {0};
    redisReply *r = NULL;
    enum cj_status st;
    size_t n = 0;

    *count = 0;
    if (max > SESS_DUE_BATCH_MAX) {
        max = SESS_DUE_BATCH_MAX;
    }
    args_str(&a, "ZRANGE");
    args_str(&a, KEY_DUE);
    args_str(&a, "-inf");
    args_i64(&a, now_ms);
    args_str(&a, "BYSCORE");
    args_str(&a, "LIMIT");
    args_i64(&a, 0);
    args_i64(&a, (int64_t)max);
    st = command(pool, &a, "ZRANGE", &r);
    if (st != CJ_OK) {
        return st;
    }
    if (r->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(r);
        return CJ_ERR_INTERNAL;
    }
    for (size_t i = 0; i < r->elements && n < max; i++) {
        const redisReply *e = r->element[i];
        if (e->type == REDIS_REPLY_STRING && e->len == SESS_ID_LEN) {
            memcpy(ids[n], e->str, SESS_ID_LEN);
            ids[n][SESS_ID_LEN] = '\0';
            n++;
        }
    }
    freeReplyObject(r);
    *count = n;
    return CJ_OK;
}

enum cj_status sess_store_schedule(struct cj_redis_pool *pool, const char *sid,
                                   int64_t due_ms)
{
    struct sess_args a = {0};

    args_str(&a, "ZADD");
    args_str(&a, KEY_DUE);
    args_str(&a, "XX");
    args_i64(&a, due_ms);
    args_str(&a, sid);
    return command_discard_reply(pool, &a, "ZADD");
}

enum cj_status sess_store_unschedule(struct cj_redis_pool *pool,
                                     const char *sid)
{
    struct sess_args a = {0};

    args_str(&a, "ZREM");
    args_str(&a, KEY_DUE);
    args_str(&a, sid);
    return command_discard_reply(pool, &a, "ZREM");
}

enum cj_status sess_store_lock(struct cj_redis_pool *pool, const char *name,
                               const char *token, int64_t ttl_ms,
                               bool *acquired)
{
    char key[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};
    redisReply *r = NULL;
    enum cj_status st;

    *acquired = false;
    snprintf(key, sizeof(key), SESS_KEY_PREFIX "lock:%s", name);
    args_str(&a, "SET");
    args_str(&a, key);
    args_str(&a, token);
    args_str(&a, "NX");
    args_str(&a, "PX");
    args_i64(&a, ttl_ms);
    st = command(pool, &a, "SET NX", &r);
    if (st != CJ_OK) {
        return st;
    }
    *acquired = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    return CJ_OK;
}

enum cj_status sess_store_unlock(struct cj_redis_pool *pool, const char *name,
                                 const char *token)
{
    char key[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};

    snprintf(key, sizeof(key), SESS_KEY_PREFIX "lock:%s", name);
    args_str(&a, key);
    args_str(&a, token);
    return eval_discard_reply(pool, &script_unlock, "unlock", 1, &a);
}

enum cj_status sess_store_revoke_token(struct cj_redis_pool *pool,
                                       const char *token_id,
                                       int64_t expire_at_ms)
{
    char key[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};

    snprintf(key, sizeof(key), SESS_REVOKE_PREFIX "jti:%s", token_id);
    args_str(&a, "SET");
    args_str(&a, key);
    args_str(&a, "1");
    args_str(&a, "PXAT");
    args_i64(&a, expire_at_ms);
    return command_discard_reply(pool, &a, "SET PXAT");
}

enum cj_status sess_store_revoke_user(struct cj_redis_pool *pool,
                                      const char *user_id, int64_t revoked_at,
                                      int64_t expire_at_ms)
{
    char key[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};

    snprintf(key, sizeof(key), SESS_REVOKE_PREFIX "user:%s", user_id);
    args_str(&a, key);
    args_i64(&a, revoked_at);
    args_i64(&a, expire_at_ms);
    return eval_discard_reply(pool, &script_revoke_user, "revoke_user", 1, &a);
}

enum cj_status sess_store_tombstone(struct cj_redis_pool *pool, const char *sid,
                                    int64_t ttl_ms)
{
    char key[SESS_REDIS_KEY_MAX];
    struct sess_args a = {0};

    key_tombstone(key, sizeof(key), sid);
    args_str(&a, "SET");
    args_str(&a, key);
    args_str(&a, "1");
    args_str(&a, "PX");
    args_i64(&a, ttl_ms);
    return command_discard_reply(pool, &a, "SET PX");
}

enum cj_status sess_store_is_revoked(struct cj_redis_pool *pool,
                                     const char *token_id, const char *user_id,
                                     int64_t issued_at, const char *sid,
                                     enum sess_revoked_reason *out)
{
    char jti_key[SESS_REDIS_KEY_MAX];
    char user_key[SESS_REDIS_KEY_MAX];
    char sid_key[SESS_REDIS_KEY_MAX];
    char session_key[SESS_REDIS_KEY_MAX];
    bool has_sid = sid != NULL && sid[0] != '\0';
    struct sess_args a = {0};
    long long reply = 0;
    enum cj_status st;

    *out = SESS_NOT_REVOKED;
    snprintf(jti_key, sizeof(jti_key), SESS_REVOKE_PREFIX "jti:%s", token_id);
    snprintf(user_key, sizeof(user_key), SESS_REVOKE_PREFIX "user:%s", user_id);
    key_tombstone(sid_key, sizeof(sid_key), has_sid ? sid : "");
    key_session(session_key, sizeof(session_key), has_sid ? sid : "");
    args_str(&a, KEY_LOADED);
    args_str(&a, jti_key);
    args_str(&a, user_key);
    args_str(&a, sid_key);
    args_str(&a, session_key);
    args_i64(&a, issued_at);
    args_str(&a, has_sid ? "1" : "0");
    st = eval_integer(pool, &script_is_revoked, "is_revoked", 5, &a, &reply);
    if (st != CJ_OK) {
        return st;
    }
    if (reply < -1 || reply > SESS_REVOKED_SESSION) {
        return CJ_ERR_INTERNAL;
    }
    if (reply == -1) {
        return CJ_ERR_PRECONDITION;
    }
    *out = (enum sess_revoked_reason)reply;
    return CJ_OK;
}

enum cj_status sess_store_cache_loaded(struct cj_redis_pool *pool, bool *loaded)
{
    struct sess_args a = {0};
    redisReply *r = NULL;
    enum cj_status st;

    *loaded = false;
    args_str(&a, "EXISTS");
    args_str(&a, KEY_LOADED);
    st = command(pool, &a, "EXISTS", &r);
    if (st != CJ_OK) {
        return st;
    }
    *loaded = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
    freeReplyObject(r);
    return CJ_OK;
}

enum cj_status sess_store_refresh_loaded(struct cj_redis_pool *pool,
                                         int64_t ttl_ms)
{
    struct sess_args a = {0};

    /* PEXPIRE on a missing key does nothing, so this never creates it. */
    args_str(&a, "PEXPIRE");
    args_str(&a, KEY_LOADED);
    args_i64(&a, ttl_ms);
    return command_discard_reply(pool, &a, "PEXPIRE");
}

enum cj_status sess_store_ping(struct cj_redis_pool *pool)
{
    struct sess_args a = {0};
    redisReply *r = NULL;
    enum cj_status st;

    args_str(&a, "PING");
    st = command(pool, &a, "PING", &r);
    if (st != CJ_OK) {
        return st;
    }
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0) {
        st = CJ_ERR_UNAVAILABLE;
    }
    freeReplyObject(r);
    return st;
}

/* Growable argument list for the load batch, whose size the request sets. */
struct sess_vargs {
    int count;
    int capacity;
    const char **value;
    size_t *len;
    char (*num)[SESS_NUM_TEXT_MAX];
};

static void vargs_str(struct sess_vargs *a, const char *value)
{
    if (a->count < a->capacity) {
        a->value[a->count] = value;
        a->len[a->count] = strlen(value);
        a->count++;
    }
}

static void vargs_i64(struct sess_vargs *a, int64_t value)
{
    if (a->count < a->capacity) {
        snprintf(a->num[a->count], SESS_NUM_TEXT_MAX, "%" PRId64, value);
        vargs_str(a, a->num[a->count]);
    }
}

/* Arguments ahead of the entries in a load batch: the loaded marker key,
 * three counts, two lifetimes, six key prefixes, and the load's record
 * key, step and record lifetime. */
#define LOAD_BATCH_FIXED_ARGS 15
/* Prefix of a full load's record, followed by its load id. */
#define KEY_LOAD_RECORD SESS_REVOKE_PREFIX "load:"

enum cj_status sess_store_load_batch(struct cj_redis_pool *pool,
                                     const struct sess_load_batch *b)
{
    struct sess_vargs a = {0};
    redisReply *r = NULL;
    enum cj_status st = CJ_ERR_NOMEM;
    size_t total = b->token_count + b->user_count + b->session_count;
    char record[sizeof(KEY_LOAD_RECORD) + SESS_NAME_MAX] = "";

    if (total > SESS_LOAD_BATCH_MAX) {
        return CJ_ERR_TOO_LARGE;
    }
    if (b->step != SESS_LOAD_UNNAMED) {
        if (b->load_id == NULL || !sess_name_valid(b->load_id)) {
            return CJ_ERR_INVALID;
        }
        snprintf(record, sizeof(record), KEY_LOAD_RECORD "%s", b->load_id);
    }
    a.capacity = (int)(LOAD_BATCH_FIXED_ARGS + 2 * b->token_count +
                       3 * b->user_count + b->session_count);
    a.value = calloc((size_t)a.capacity, sizeof(*a.value));
    a.len = calloc((size_t)a.capacity, sizeof(*a.len));
    a.num = calloc((size_t)a.capacity, sizeof(*a.num));
    if (a.value == NULL || a.len == NULL || a.num == NULL) {
        goto out;
    }
    vargs_str(&a, KEY_LOADED);
    vargs_i64(&a, (int64_t)b->token_count);
    vargs_i64(&a, (int64_t)b->user_count);
    vargs_i64(&a, (int64_t)b->session_count);
    vargs_i64(&a, b->marker_ttl_ms);
    vargs_i64(&a, b->tombstone_ms);
    vargs_str(&a, SESS_REVOKE_PREFIX "jti:");
    vargs_str(&a, SESS_REVOKE_PREFIX "user:");
    vargs_str(&a, SESS_REVOKE_PREFIX "sid:");
    vargs_str(&a, SESS_KEY_PREFIX "s:");
    vargs_str(&a, KEY_DUE);
    vargs_str(&a, SESS_KEY_PREFIX "u:");
    vargs_str(&a, record);
    vargs_i64(&a, (int64_t)b->step);
    vargs_i64(&a, SESS_LOAD_RECORD_TTL_MS);
    for (size_t i = 0; i < b->token_count; i++) {
        vargs_str(&a, b->tokens[i].token_id);
        vargs_i64(&a, b->tokens[i].expire_at_ms);
    }
    for (size_t i = 0; i < b->user_count; i++) {
        vargs_str(&a, b->users[i].user_id);
        vargs_i64(&a, b->users[i].revoked_at);
        vargs_i64(&a, b->users[i].expire_at_ms);
    }
    for (size_t i = 0; i < b->session_count; i++) {
        vargs_str(&a, b->session_ids[i]);
    }
    st = eval_argv(pool, &script_load_batch, "load_batch", 1, a.count, a.value,
                   a.len, &r);
    if (st == CJ_OK && r->type == REDIS_REPLY_INTEGER && r->integer < 0) {
        st = CJ_ERR_PRECONDITION;
    }
out:
    if (r != NULL) {
        freeReplyObject(r);
    }
    free(a.value);
    free(a.len);
    free(a.num);
    return st;
}

enum cj_status sess_store_time(struct cj_redis_pool *pool, int64_t *now_ms)
{
    struct sess_args a = {0};
    redisReply *r = NULL;
    int64_t seconds = 0;
    int64_t micros = 0;
    enum cj_status st;

    *now_ms = 0;
    args_str(&a, "TIME");
    st = command(pool, &a, "TIME", &r);
    if (st != CJ_OK) {
        return st;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        !element_i64(r->element[0], &seconds) ||
        !element_i64(r->element[1], &micros)) {
        st = CJ_ERR_INTERNAL;
    } else {
        *now_ms = seconds * 1000 + micros / 1000;
    }
    freeReplyObject(r);
    return st;
}
