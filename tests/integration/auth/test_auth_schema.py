"""auth on a database that lacks its migrations. auth starts but stays
NOT_SERVING and logs auth.schema_missing with the missing files and
`cerrojo-migrate up`. Its jobs exit 1 with the same advice. Once the
migrations run it turns SERVING, and a migration record that disappears
later turns it NOT_SERVING again. `cerrojo-migrate status` exits 3 while
files are pending and 0 when none are, and its connect error names
CERROJO_MIGRATE_DSN.

Runs against the Postgres and Redis that scripts/test.sh starts (it exits
77, reported as skipped, without them). Run with /usr/bin/python3
(python3-grpcio).
"""

import json
import os
import subprocess
import time
import unittest

import auth_harness as ah

h = ah.h
# Values of grpc.health.v1.HealthCheckResponse.ServingStatus.
SERVING = 1
NOT_SERVING = 2
# Maximum wait for a health change or a log line, in seconds. auth checks
# every CERROJO_AUTH_CACHE_WATCH_INTERVAL (1 s in the harness); the rest is
# margin for a loaded machine.
CHANGE_WAIT_S = 15
POLL_S = 0.1
# Exit status of `cerrojo-migrate status` with pending migrations.
MIGRATE_PENDING = 3
# The first and the last auth migration in the source tree.
AUTH_MIGRATIONS = sorted(os.listdir(os.path.join(h.SOURCE_DIR, "migrations",
                                                 "auth")))
FIRST_MIGRATION = AUTH_MIGRATIONS[0]
LAST_MIGRATION = AUTH_MIGRATIONS[-1]


def create_empty_database(admin_dsn):
    """Creates a database without any migration; returns its DSN."""
    name = ah.random_name("cj_auth_empty_")
    subprocess.run(["psql", admin_dsn, "-Atq", "-c",
                    "CREATE DATABASE %s" % name], check=True)
    return "%s dbname=%s" % (admin_dsn, name)


def drop_database(admin_dsn, dsn):
    name = dsn.rsplit("dbname=", 1)[1]
    subprocess.run(["psql", admin_dsn, "-Atq", "-c",
                    "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name],
                   check=False, capture_output=True)


def run_migrate(dsn, command):
    """Runs `cerrojo-migrate COMMAND` on dsn; returns the finished process."""
    env = dict(os.environ, CERROJO_ENV_FILE=os.devnull,
               CERROJO_PROFILE="dev", CERROJO_MIGRATE_DSN=dsn,
               CERROJO_MIGRATE_DIR=os.path.join(h.SOURCE_DIR, "migrations"))
    return subprocess.run([os.path.join(h.BIN_DIR, "cerrojo-migrate"),
                           command], env=env, capture_output=True, text=True,
                          timeout=ah.READY_TIMEOUT_S)


def log_events(svc, event):
    return [json.loads(line) for line in svc.log().splitlines()
            if '"event":"%s"' % event in line]


def wait_for_events(svc, event, count):
    """Returns the entries of event once there are at least count."""
    deadline = time.monotonic() + CHANGE_WAIT_S
    entries = log_events(svc, event)
    while len(entries) < count and time.monotonic() < deadline:
        time.sleep(POLL_S)
        entries = log_events(svc, event)
    return entries


class AuthOnUnmigratedDatabase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        admin_dsn = ah.require_env()[0]
        cls.empty_dsn = create_empty_database(admin_dsn)
        cls.stack = ah.Stack({
            "CERROJO_AUTH_DATABASE_URL": cls.empty_dsn + " user=cerrojo_auth",
        })
        # Stack.start waits for a revocation cache that auth cannot load
        # without its tables, so the services start one by one here.
        s = cls.stack
        try:
            s.kms.start()
            s.session.start()
            s.auth.env.update({
                "CERROJO_AUTH_KMS_TARGET": "127.0.0.1:%d" % s.kms.port,
                "CERROJO_AUTH_SESSION_TARGET":
                    "127.0.0.1:%d" % s.session.port,
            })
            s.auth.start()
            cls.chan = s.auth.channel()
        except BaseException:
            s.stop_after_failed_start()
            drop_database(admin_dsn, cls.empty_dsn)
            raise

    @classmethod
    def tearDownClass(cls):
        cls.chan.close()
        try:
            cls.stack.stop()
        finally:
            drop_database(cls.stack.admin_dsn, cls.empty_dsn)

    def test_auth_waits_for_migrations(self):
        s = self.stack
        # The first check runs before the port takes calls.
        self.assertEqual(h.health_check(self.chan).status, NOT_SERVING,
                         s.auth.log()[-3000:])
        missing = wait_for_events(s.auth, "auth.schema_missing", 1)
        self.assertEqual(len(missing), 1, s.auth.log()[-3000:])
        self.assertIn(FIRST_MIGRATION, missing[0]["missing"])
        self.assertIn(LAST_MIGRATION, missing[0]["missing"])
        self.assertIn("cerrojo-migrate up", missing[0]["action"])
        self.assertIn('"event":"auth.started"', s.auth.log())

        for job in ("cleanup", "rewrap-keys"):
            done = s.run_auth_command(job)
            self.assertEqual(done.returncode, 1, done.stderr)
            self.assertIn("cerrojo-migrate up", done.stderr)
            self.assertIn(FIRST_MIGRATION, done.stderr)

        status = run_migrate(self.empty_dsn, "status")
        self.assertEqual(status.returncode, MIGRATE_PENDING, status.stderr)
        self.assertIn("pending", status.stdout)
        up = run_migrate(self.empty_dsn, "up")
        self.assertEqual(up.returncode, 0, up.stderr)
        status = run_migrate(self.empty_dsn, "status")
        self.assertEqual(status.returncode, 0, status.stderr)

        self.assertIsNotNone(
            h.wait_for_health(self.chan, SERVING, CHANGE_WAIT_S),
            s.auth.log()[-3000:])
        self.assertEqual(len(wait_for_events(s.auth, "auth.schema_ready", 1)),
                         1, s.auth.log()[-3000:])

        # A database restored from an older dump lacks the newest record.
        subprocess.run(["psql", self.empty_dsn, "-Atq", "-v",
                        "ON_ERROR_STOP=1", "-c",
                        "DELETE FROM auth.schema_migrations WHERE "
                        "filename = '%s'" % LAST_MIGRATION], check=True)
        self.assertIsNotNone(
            h.wait_for_health(self.chan, NOT_SERVING, CHANGE_WAIT_S),
            s.auth.log()[-3000:])
        missing = wait_for_events(s.auth, "auth.schema_missing", 2)
        self.assertEqual(len(missing), 2, s.auth.log()[-3000:])
        self.assertEqual(missing[1]["missing"], LAST_MIGRATION)

    def test_migrate_connect_error_names_variable(self):
        # A port with nothing listening: the connection is refused.
        dsn = "host=127.0.0.1 port=%d dbname=none user=none " \
              "connect_timeout=2" % h.free_port()
        done = run_migrate(dsn, "status")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("CERROJO_MIGRATE_DSN", done.stderr)


if __name__ == "__main__":
    unittest.main()
