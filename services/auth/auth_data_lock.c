/* In-process locks on one data class of one user, taken before a PutData
 * borrows a Postgres connection. */
#include "auth_data_lock.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"

/* The lock on one class of one user, and the PUTs waiting for it. */
struct auth_data_lock_entry {
    struct auth_data_lock_entry *next;
    char user_id[AUTH_UUID_TEXT_SIZE];
    enum auth_data_class cls;
    bool held;
    unsigned waiters;
    pthread_cond_t released; /* monotonic; signalled when held turns false */
};

enum cj_status auth_data_locks_init(struct auth_data_locks *locks)
{
    locks->entries = NULL;
    locks->entry_count = 0;
    locks->waiting = 0;
    locks->waiting_max = 0;
    locks->waiting_gauge = NULL;
    if (pthread_mutex_init(&locks->mutex, NULL) != 0) {
        return CJ_ERR_INTERNAL;
    }
    return CJ_OK;
}

void auth_data_locks_destroy(struct auth_data_locks *locks)
{
    pthread_mutex_destroy(&locks->mutex);
}

/* Finds the entry of a key. Call with the mutex held. */
static struct auth_data_lock_entry *
entry_find(const struct auth_data_locks *locks, const char *user_id,
           enum auth_data_class cls)
{
    struct auth_data_lock_entry *e;

    for (e = locks->entries; e != NULL; e = e->next) {
        if (e->cls == cls && strcmp(e->user_id, user_id) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Adds a held entry for a key. Call with the mutex held. */
static enum cj_status entry_add_held(struct auth_data_locks *locks,
                                     const char *user_id,
                                     enum auth_data_class cls,
                                     struct auth_data_lock_entry **out)
{
    struct auth_data_lock_entry *e = calloc(1, sizeof(*e));

    if (e == NULL) {
        return CJ_ERR_NOMEM;
    }
    if (cj_cond_init_monotonic(&e->released) != CJ_OK) {
        free(e);
        return CJ_ERR_INTERNAL;
    }
    memcpy(e->user_id, user_id, strlen(user_id) + 1);
    e->cls = cls;
    e->held = true;
    e->next = locks->entries;
    locks->entries = e;
    locks->entry_count++;
    *out = e;
    return CJ_OK;
}

/* Unlinks and frees an entry. Call with the mutex held. */
static void entry_remove(struct auth_data_locks *locks,
                         struct auth_data_lock_entry *entry)
{
    struct auth_data_lock_entry **link = &locks->entries;

    while (*link != NULL && *link != entry) {
        link = &(*link)->next;
    }
    if (*link == entry) {
        *link = entry->next;
        locks->entry_count--;
    }
    pthread_cond_destroy(&entry->released);
    free(entry);
}

/*
 * Waits up to budget_ms for a held entry to be released. Call with the
 * mutex locked. On CJ_OK the caller owns the entry. A waiter that finds
 * the entry released takes it even when its time ran out at that moment,
 * so an entry with waiters always gets an owner that frees it later.
 */
static enum cj_status entry_wait(struct auth_data_locks *locks,
                                 struct auth_data_lock_entry *entry,
                                 int64_t budget_ms)
{
    struct timespec until;
    int err = 0;

    cj_deadline_after_ms(CLOCK_MONOTONIC, budget_ms, &until);
    entry->waiters++;
    locks->waiting++;
    cj_gauge_set(locks->waiting_gauge, (double)locks->waiting);
    while (entry->held && err != ETIMEDOUT) {
        err = pthread_cond_timedwait(&entry->released, &locks->mutex, &until);
    }
    entry->waiters--;
    locks->waiting--;
    cj_gauge_set(locks->waiting_gauge, (double)locks->waiting);
    if (entry->held) {
        return CJ_ERR_UNAVAILABLE;
    }
    entry->held = true;
    return CJ_OK;
}

enum cj_status auth_data_lock_enter(struct auth_data_locks *locks,
                                    const char *user_id,
                                    enum auth_data_class cls, int64_t wait_ms,
                                    struct auth_data_lock_entry **out,
                                    const char **shed_reason)
{
    struct auth_data_lock_entry *entry;
    int64_t budget_ms;
    enum cj_status rc = CJ_OK;

    *out = NULL;
    *shed_reason = NULL;
    if (strlen(user_id) >= AUTH_UUID_TEXT_SIZE) {
        return CJ_ERR_INVALID;
    }
    if (wait_ms > AUTH_DATA_LOCK_WAIT_MAX_MS) {
        wait_ms = AUTH_DATA_LOCK_WAIT_MAX_MS;
    }
    budget_ms = wait_ms - AUTH_DATA_LOCK_REPLY_MARGIN_MS;
    pthread_mutex_lock(&locks->mutex);
    entry = entry_find(locks, user_id, cls);
    if (entry == NULL) {
        rc = entry_add_held(locks, user_id, cls, out);
        goto out;
    }
    if (entry->held &&
        (entry->waiters >= AUTH_DATA_LOCK_WAITERS_MAX ||
         (locks->waiting_max > 0 && locks->waiting >= locks->waiting_max))) {
        *shed_reason = AUTH_DATA_LOCK_SHED_BUSY;
        rc = CJ_ERR_UNAVAILABLE;
        goto out;
    }
    if (entry->held && budget_ms <= 0) {
        *shed_reason = AUTH_DATA_LOCK_SHED_DEADLINE;
        rc = CJ_ERR_UNAVAILABLE;
        goto out;
    }
    if (entry->held) {
        rc = entry_wait(locks, entry, budget_ms);
    } else {
        entry->held = true;
    }
    if (rc == CJ_OK) {
        *out = entry;
    } else {
        *shed_reason = AUTH_DATA_LOCK_SHED_DEADLINE;
    }
out:
    pthread_mutex_unlock(&locks->mutex);
    return rc;
}

void auth_data_lock_leave(struct auth_data_locks *locks,
                          struct auth_data_lock_entry *entry)
{
    if (entry == NULL) {
        return;
    }
    pthread_mutex_lock(&locks->mutex);
    entry->held = false;
    if (entry->waiters > 0) {
        pthread_cond_signal(&entry->released);
    } else {
        entry_remove(locks, entry);
    }
    pthread_mutex_unlock(&locks->mutex);
}

void auth_data_locks_read(struct auth_data_locks *locks, unsigned *entries,
                          unsigned *waiting)
{
    pthread_mutex_lock(&locks->mutex);
    *entries = locks->entry_count;
    *waiting = locks->waiting;
    pthread_mutex_unlock(&locks->mutex);
}
