/*
 * Shared by the integration tests: reads the coordinates of the Postgres and
 * Redis that scripts/test.sh started. A test run outside it is skipped with
 * a loud message, except under CI=true, where a missing variable fails.
 */
#ifndef CJ_ITEST_H
#define CJ_ITEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ctest counts this exit status as "skipped" (SKIP_RETURN_CODE). */
#define ITEST_SKIPPED 77

/*
 * Returns the value of `name`, or ends the program: exit 1 under CI=true,
 * ITEST_SKIPPED otherwise. Call from main, before the tests run.
 */
static inline const char *itest_require_env(const char *test, const char *name)
{
    const char *v = getenv(name);
    if (v != NULL && v[0] != '\0') {
        return v;
    }
    const char *ci = getenv("CI");
    if (ci != NULL && strcmp(ci, "true") == 0) {
        fprintf(stderr,
                "%s: FAILED: %s is not set under CI=true; run the tests "
                "through scripts/test.sh (make test)\n",
                test, name);
        exit(1);
    }
    fprintf(
        stderr,
        "\n*** %s: SKIPPED: %s is not set. Integration tests need the "
        "Postgres and Redis that scripts/test.sh (make test) starts. ***\n\n",
        test, name);
    exit(ITEST_SKIPPED);
}

#endif
