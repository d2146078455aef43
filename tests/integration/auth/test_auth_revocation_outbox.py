"""The durable outbox of revocations: auth.revocations.sent_at records that
session stored a row. A row committed but never sent, as when auth is
killed between the commit and the call, reaches session's cache when auth
starts, although session's loaded marker stayed set. A row session
confirmed is not sent again. Migration 0006 applies to a database at the
version before it."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import uuid

import grpc

import auth_harness as ah

# Long enough that the watcher runs only at start and when a failed call
# marks the cache stale.
SLOW_WATCH = "1h"
# How long a resend may take after auth starts or after session is back.
RESEND_WAIT_S = 15
# How long a row younger than the resend grace (10 s) may take to reach
# session after auth starts: well under the grace, so that a start that
# waited for the grace fails.
FRESH_RESEND_WAIT_S = 5
# auth's deadline for one call to session, short so that a call to the
# stopped session fails well within the test's own call deadline.
RPC_TIMEOUT_MS = "1000"
# Size of the handshake secret that makes register open a session.
SECRET_SIZE = 32
# Backdating that puts a row past auth's resend grace (10 s).
PAST_GRACE = "interval '1 minute'"
# The migration that adds sent_at; the upgrade test starts before it.
OUTBOX_MIGRATION = "0006_revocations_sent_at.sql"
LOADED_MARKER = "cerrojo:revoked:loaded"
RESENT_METRIC = "auth_revocations_resent_total"
STALE_METRIC = "auth_revocation_cache_stale"
UNCONFIRMED_METRIC = "auth_revocations_unconfirmed"


def poll(check, wait_s, message):
    """Calls check() until it returns a true value, at most wait_s seconds;
    returns that value or raises AssertionError with message."""
    deadline = time.monotonic() + wait_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.2)


def insert_unsent_token_row(stack, token_id, user_id, age=PAST_GRACE):
    """Inserts a token revocation as a flow commits it, age old (past the
    grace by default) and never sent to session (sent_at NULL). user_id may
    be None."""
    user_value = "NULL"
    if user_id is not None:
        user_value = "'%s'" % user_id
    stack.sql(
        "INSERT INTO auth.revocations (kind, subject, user_id, revoked_at, "
        "expires_at) VALUES ('token', '%s', %s, now() - %s, "
        "now() + interval '15 minutes')" % (token_id, user_value, age))


def row_confirmed(stack, kind, subject):
    rows = stack.sql("SELECT sent_at IS NOT NULL FROM auth.revocations "
                     "WHERE kind = '%s' AND subject = '%s'" % (kind, subject))
    return len(rows) == 1 and rows[0][0] == "t"


class UnsentRowResend(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack({
            "CERROJO_AUTH_CACHE_WATCH_INTERVAL": SLOW_WATCH,
            # The reload runs only in a watch round, and auth rejects a
            # reload interval below the watch interval.
            "CERROJO_AUTH_CACHE_RELOAD_INTERVAL": SLOW_WATCH,
            "CERROJO_AUTH_RPC_TIMEOUT_MS": RPC_TIMEOUT_MS,
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def is_revoked(self, info, user_id):
        reply = self.stack.session_stub.IsRevoked(
            self.stack.session_pb2.IsRevokedRequest(
                token_id=info.jti, user_id=user_id, issued_at=info.iat,
                session_id=info.sid),
            timeout=ah.CALL_TIMEOUT_S)
        return reply.revoked

    def test_unsent_row_resent_at_start(self):
        s = self.stack
        tokens, err, _, _ = s.register()
        self.assertIsNone(err)
        info, err = s.introspect(tokens.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)

        # auth dies after committing the row and before sending it.
        s.auth.stop(signal.SIGKILL)
        insert_unsent_token_row(s, info.jti, tokens.user_id)
        self.assertEqual(s.redis("EXISTS", LOADED_MARKER), "1")
        self.assertFalse(self.is_revoked(info, tokens.user_id))

        s.auth.start()
        poll(lambda: self.is_revoked(info, tokens.user_id), RESEND_WAIT_S,
             "token not revoked after auth started\n" + s.logs())
        poll(lambda: row_confirmed(s, "token", info.jti), RESEND_WAIT_S,
             "resent row not confirmed\n" + s.logs())
        self.assertIn("auth.revocation_resent", s.auth.log())
        self.assertEqual(s.redis("EXISTS", LOADED_MARKER), "1")

    def test_fresh_unsent_row_resent_at_start(self):
        # auth dies a moment after committing the row, and a replica is
        # back within the grace: the row must not wait for the grace and
        # the next check, because the logout that wrote it has returned.
        s = self.stack
        tokens, err, _, _ = s.register()
        self.assertIsNone(err)
        info, err = s.introspect(tokens.access_token)
        self.assertIsNone(err)

        s.auth.stop(signal.SIGKILL)
        insert_unsent_token_row(s, info.jti, tokens.user_id,
                                age="interval '0 seconds'")
        self.assertFalse(self.is_revoked(info, tokens.user_id))
        s.auth.start()
        poll(lambda: self.is_revoked(info, tokens.user_id),
             FRESH_RESEND_WAIT_S,
             "fresh row not revoked soon after auth started\n" + s.logs())
        poll(lambda: row_confirmed(s, "token", info.jti), RESEND_WAIT_S,
             "resent row not confirmed\n" + s.logs())

    def test_failed_send_confirmed_by_reload(self):
        s = self.stack
        tokens, err, _, _ = s.register()
        self.assertIsNone(err)
        caller = s.caller_for(tokens)
        s.session.stop()
        try:
            # The rows are committed, so the logout succeeds, and the
            # user's row stays unconfirmed until session is back.
            _, err = s.call("Logout", s.auth_pb2.LogoutRequest(all=True),
                            caller)
            self.assertIsNone(err, s.logs())
            self.assertFalse(row_confirmed(s, "user", tokens.user_id))
        finally:
            s.session.start()

        # The failed call marked the cache stale, and the reload that
        # follows sends and confirms every row.
        poll(lambda: row_confirmed(s, "user", tokens.user_id), RESEND_WAIT_S,
             "user row not confirmed after session came back\n" + s.logs())
        self.assertIn("auth.revocation_cache_stale", s.auth.log())


class ConfirmedRowNotResent(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        # The default watch interval of the harness (1 s), so that the
        # watcher checks for unconfirmed rows often.
        cls.stack = ah.Stack().start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def rows_of(self, user_id):
        return self.stack.sql(
            "SELECT kind, sent_at IS NOT NULL FROM auth.revocations "
            "WHERE user_id = '%s' ORDER BY kind" % user_id)

    def test_sent_rows_confirmed_and_not_resent(self):
        s = self.stack
        tokens, err, _, _ = s.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token), s.caller_for(tokens))
        self.assertIsNone(err, err)
        all_devices, err, _, _ = s.register()
        self.assertIsNone(err)
        _, err = s.call("Logout", s.auth_pb2.LogoutRequest(all=True),
                        s.caller_for(all_devices))
        self.assertIsNone(err, err)

        # Logout returns after session stored each row and auth confirmed
        # it, so no wait is needed here.
        rows = self.rows_of(tokens.user_id)
        self.assertIn("token", [kind for kind, _ in rows])
        self.assertIn("session", [kind for kind, _ in rows])
        for kind, confirmed in rows:
            self.assertEqual(confirmed, "t", "%s row unconfirmed" % kind)
        self.assertEqual(self.rows_of(all_devices.user_id), [["user", "t"]])

        # Past the grace, only the row session never confirmed is resent.
        s.sql("UPDATE auth.revocations SET revoked_at = revoked_at - %s"
              % PAST_GRACE)
        control = str(uuid.uuid4())
        insert_unsent_token_row(s, control, None)
        poll(lambda: s.metric(RESENT_METRIC) >= 1, RESEND_WAIT_S,
             "unconfirmed row not resent\n" + s.logs())
        self.assertTrue(row_confirmed(s, "token", control))
        self.assertEqual(s.metric(RESENT_METRIC), 1)
        for line in s.auth.log().splitlines():
            if "auth.revocation_resent" in line:
                self.assertIn('"count":1', line)
                self.assertNotIn(control, line)


class UnreachableSession(unittest.TestCase):
    """auth cannot reach session while the gateway and the test can: a
    revocation that session never stored must make IsRevoked fail closed
    instead of returning "not revoked"."""

    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack({
            "CERROJO_AUTH_RPC_TIMEOUT_MS": RPC_TIMEOUT_MS,
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def is_revoked(self, info, user_id):
        return self.stack.session_stub.IsRevoked(
            self.stack.session_pb2.IsRevokedRequest(
                token_id=info.jti, user_id=user_id, issued_at=info.iat,
                session_id=info.sid),
            timeout=ah.CALL_TIMEOUT_S).revoked

    def restart_auth_with_session_target(self, target):
        s = self.stack
        s.auth.stop()
        s.auth.env["CERROJO_AUTH_SESSION_TARGET"] = target
        s.auth.start()

    def test_logout_fails_closed_until_reload(self):
        s = self.stack
        tokens, err, _, _ = s.register()
        self.assertIsNone(err)
        info, err = s.introspect(tokens.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)
        caller = s.caller_for(tokens)
        reachable = s.auth.env["CERROJO_AUTH_SESSION_TARGET"]

        # No process listens on this port, but session itself stays up.
        self.restart_auth_with_session_target(
            "127.0.0.1:%d" % ah.h.free_port())
        try:
            self.assertFalse(self.is_revoked(info, tokens.user_id))
            _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
                refresh_token=tokens.refresh_token), caller)
            self.assertIsNone(err, s.logs())
            self.assertFalse(row_confirmed(s, "token", info.jti))

            with self.assertRaises(grpc.RpcError) as failed:
                self.is_revoked(info, tokens.user_id)
            self.assertEqual(failed.exception.code(),
                             grpc.StatusCode.FAILED_PRECONDITION)
            self.assertEqual(s.redis("EXISTS", LOADED_MARKER), "0")
            self.assertIn("auth.revocation_cache_invalidated", s.auth.log())
            self.assertEqual(s.metric(STALE_METRIC), 1)
            # The watcher counts the rows on its next round (every second
            # while the cache is stale).
            poll(lambda: s.metric(UNCONFIRMED_METRIC) >= 1, RESEND_WAIT_S,
                 "unconfirmed rows not counted\n" + s.logs())
            # The watcher's failed reloads keep the marker deleted.
            time.sleep(2)
            self.assertEqual(s.redis("EXISTS", LOADED_MARKER), "0")
        finally:
            self.restart_auth_with_session_target(reachable)

        s.wait_cache_loaded()
        self.assertTrue(self.is_revoked(info, tokens.user_id))
        poll(lambda: row_confirmed(s, "token", info.jti), RESEND_WAIT_S,
             "row not confirmed after auth reached session\n" + s.logs())
        poll(lambda: s.metric(STALE_METRIC) == 0, RESEND_WAIT_S,
             "cache still reported stale after the reload\n" + s.logs())
        poll(lambda: s.metric(UNCONFIRMED_METRIC) == 0, RESEND_WAIT_S,
             "rows still reported unconfirmed after the reload\n" + s.logs())


# Access-token lifetimes of a stack whose session is configured apart
# from auth: session's copy of the setting is shorter than auth's.
SESSION_TOKEN_LIFETIME_S = 60
AUTH_TOKEN_LIFETIME_S = 15 * 60
# Time the test itself may take before it reads an entry's TTL.
TTL_MARGIN_S = 60


class ShortSessionLifetime(unittest.TestCase):
    """session's CERROJO_AUTH_ACCESS_TOKEN_LIFETIME shorter than auth's: a
    user's revocation must stay cached as long as auth's tokens live."""

    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack(
            {"CERROJO_AUTH_ACCESS_TOKEN_LIFETIME":
                str(AUTH_TOKEN_LIFETIME_S)},
            session_env={"CERROJO_AUTH_ACCESS_TOKEN_LIFETIME":
                         str(SESSION_TOKEN_LIFETIME_S)}).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def user_entry_ttl_s(self, user_id):
        return int(self.stack.redis(
            "PTTL", "cerrojo:revoked:user:" + user_id)) / 1000

    def test_user_entry_outlives_session_setting(self):
        s = self.stack
        tokens, err, _, _ = s.register()
        self.assertIsNone(err)
        _, err = s.call("Logout", s.auth_pb2.LogoutRequest(all=True),
                        s.caller_for(tokens))
        self.assertIsNone(err, s.logs())
        # RevokeUser from the logout.
        self.assertGreater(self.user_entry_ttl_s(tokens.user_id),
                           AUTH_TOKEN_LIFETIME_S - TTL_MARGIN_S)

        # A full load after Redis lost the cache.
        s.redis("FLUSHALL")
        s.wait_cache_loaded()
        self.assertGreater(self.user_entry_ttl_s(tokens.user_id),
                           AUTH_TOKEN_LIFETIME_S - TTL_MARGIN_S)


class OutboxMigration(unittest.TestCase):
    """Migration 0006 on a database migrated up to 0005, with rows."""

    def setUp(self):
        self.admin_dsn = ah.require_env()[0]
        self.name = ah.random_name("cj_outbox_mig_")
        self.dsn = "%s dbname=%s" % (self.admin_dsn, self.name)
        self.dir = tempfile.mkdtemp(prefix="cj-outbox-migrations-")
        subprocess.run(["psql", self.admin_dsn, "-Atq", "-c",
                        "CREATE DATABASE %s" % self.name], check=True)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)
        subprocess.run(["psql", self.admin_dsn, "-Atq", "-c",
                        "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.name],
                       check=False, capture_output=True)

    def migrate(self, migrations_dir):
        env = dict(os.environ, CERROJO_ENV_FILE=os.devnull,
                   CERROJO_PROFILE="dev", CERROJO_MIGRATE_DSN=self.dsn,
                   CERROJO_MIGRATE_DIR=migrations_dir)
        res = subprocess.run(
            [os.path.join(ah.h.BIN_DIR, "cerrojo-migrate"), "up"], env=env,
            capture_output=True, text=True)
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)

    def sql(self, query):
        out = subprocess.run(["psql", self.dsn, "-At", "-v", "ON_ERROR_STOP=1",
                              "-c", query], check=True, capture_output=True,
                             text=True).stdout
        return [line.split("|") for line in out.splitlines() if line]

    def copy_previous_version(self):
        """Copies the migrations that come before the outbox migration."""
        source = os.path.join(ah.h.SOURCE_DIR, "migrations")
        for schema in sorted(os.listdir(source)):
            os.makedirs(os.path.join(self.dir, schema))
            for name in sorted(os.listdir(os.path.join(source, schema))):
                if schema == "auth" and name >= OUTBOX_MIGRATION:
                    continue
                shutil.copy(os.path.join(source, schema, name),
                            os.path.join(self.dir, schema, name))

    def test_upgrade_leaves_rows_unconfirmed(self):
        self.copy_previous_version()
        self.migrate(self.dir)
        self.sql("INSERT INTO auth.revocations (kind, subject, expires_at) "
                 "VALUES ('token', 'before-upgrade', now() + interval '1 h')")

        self.migrate(os.path.join(ah.h.SOURCE_DIR, "migrations"))
        self.assertEqual(
            self.sql("SELECT sent_at IS NULL FROM auth.revocations "
                     "WHERE subject = 'before-upgrade'"), [["t"]])
        self.assertEqual(
            self.sql("SELECT indexdef LIKE '%%WHERE (sent_at IS NULL)%%' "
                     "FROM pg_indexes WHERE schemaname = 'auth' "
                     "AND indexname = 'revocations_unsent_idx'"), [["t"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
