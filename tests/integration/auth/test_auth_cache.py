"""Session's revocation cache after Redis loses it, and after session
misses a revocation auth recorded. With the watcher too slow to step in,
every Introspect fails closed (UNAVAILABLE) until auth reloads the cache,
here by restarting. Afterwards a token revoked before the flush stays
inactive and a live one is active again. A revocation session did not take
while it was stopped reaches its cache once session is back, and a logout
of all devices that missed the deletion of the user's sessions still ends
them on the stateful channel. A logout whose call to session failed after
the commit succeeds, and one whose database was unreachable gets
UNAVAILABLE."""

import os
import subprocess
import sys
import time
import unittest

import grpc

import auth_harness as ah

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "session"))
from test_sess_rpc import Client  # noqa: E402

# Long enough that the watcher never runs between the flush and the checks.
SLOW_WATCH = "1h"
# How long a revocation may take to reach session's cache once session is
# back: auth retries every second, and its first call reconnects.
RESEND_WAIT_S = 15
# auth's deadline for one call to session, short so that a call to the
# stopped session fails well within the test's own call deadline.
RPC_TIMEOUT_MS = "1000"
# Size of the handshake secret that makes register open a session.
SECRET_SIZE = 32


class CacheReload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack(
            {"CERROJO_AUTH_CACHE_WATCH_INTERVAL": SLOW_WATCH,
             "CERROJO_AUTH_CACHE_RELOAD_INTERVAL": SLOW_WATCH}).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_flush_fails_closed_until_reload(self):
        s = self.stack
        revoked, err, _, _ = s.register()
        self.assertIsNone(err)
        live, err, _, _ = s.register()
        self.assertIsNone(err)
        _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
            refresh_token=revoked.refresh_token), s.caller_for(revoked))
        self.assertIsNone(err, err)

        s.redis("FLUSHALL")
        for tokens in (revoked, live):
            info, err = s.introspect(tokens.access_token)
            self.assertIsNone(info)
            self.assertIsNotNone(err)
            self.assertIn(err.code(), (grpc.StatusCode.UNAVAILABLE,
                                       grpc.StatusCode.DEADLINE_EXCEEDED))

        s.restart_auth()
        s.wait_cache_loaded()
        info, err = s.introspect(revoked.access_token)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        info, err = s.introspect(live.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)


# The full reload interval of the periodic-reload test, in seconds, and
# how long the test waits for it: two intervals and the watch interval.
RELOAD_INTERVAL_S = 3
RELOAD_WAIT_S = 3 * RELOAD_INTERVAL_S
# Attempts to make Redis lose the revocation and see the token active.
LOSS_ATTEMPTS = 5


class PeriodicReload(unittest.TestCase):
    """A revocation that Redis lost after session stored it (a failover to
    a replica that lagged, or writes lost in a crash) while the loaded
    marker stayed: the periodic full reload puts it back."""

    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack({
            "CERROJO_AUTH_CACHE_RELOAD_INTERVAL": "%ds" % RELOAD_INTERVAL_S,
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_lost_revocation_restored(self):
        s = self.stack
        tokens, err, _, _ = s.register()
        self.assertIsNone(err)
        info, err = s.introspect(tokens.access_token)
        self.assertIsNone(err)
        jti = info.jti
        _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token), s.caller_for(tokens))
        self.assertIsNone(err, err)
        info, err = s.introspect(tokens.access_token)
        self.assertFalse(info.active)

        # Redis loses the token's revocation but keeps the loaded marker.
        # A periodic reload that runs between the deletion and the check
        # restores the revocation, so the test deletes it again until a
        # check finds the token active.
        for _ in range(LOSS_ATTEMPTS):
            self.assertEqual(s.redis("DEL", "cerrojo:revoked:jti:" + jti),
                             "1")
            info, err = s.introspect(tokens.access_token)
            self.assertIsNone(err)
            if info.active:
                break
        self.assertTrue(info.active, "the token stayed inactive after its "
                        "revocation was deleted\n" + s.logs())

        deadline = time.monotonic() + RELOAD_WAIT_S
        while time.monotonic() < deadline:
            info, err = s.introspect(tokens.access_token)
            if err is None and not info.active:
                return
            time.sleep(0.2)
        self.fail("the lost revocation was not restored within %d s\n%s"
                  % (RELOAD_WAIT_S, s.logs()))


class CacheResend(unittest.TestCase):
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

    def introspect_when_up(self, token):
        """Introspects until session replies again, and returns the reply."""
        deadline = time.monotonic() + RESEND_WAIT_S
        while True:
            info, err = self.stack.introspect(token)
            if err is None or time.monotonic() > deadline:
                self.assertIsNone(err, self.stack.logs())
                return info
            time.sleep(0.2)

    def logout_while_session_stopped(self, tokens, caller):
        """Logs out while session is stopped. The records commit before the
        call to session, so the logout has taken effect and must succeed."""
        s = self.stack
        s.session.stop()
        try:
            _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
                refresh_token=tokens.refresh_token), caller)
            self.assertIsNone(err, s.logs())
        finally:
            s.session.start()
        self.assertIn("auth.logout_session_update_failed", s.auth.log())

    def database_name(self):
        return self.stack.dsn.rsplit("dbname=", 1)[1]

    def close_database(self):
        """Makes auth's database unreachable, as when Postgres goes down.
        New connections are rejected and auth's open ones are ended."""
        name = self.database_name()
        admin = self.stack.admin_dsn
        subprocess.run(["psql", admin, "-Atq", "-c",
                        "ALTER DATABASE %s ALLOW_CONNECTIONS false" % name],
                       check=True, capture_output=True)
        subprocess.run(["psql", admin, "-Atq", "-c",
                        "SELECT pg_terminate_backend(pid) FROM "
                        "pg_stat_activity WHERE datname = '%s' AND "
                        "usename = 'cerrojo_auth'" % name],
                       check=True, capture_output=True)

    def open_database(self):
        subprocess.run(["psql", self.stack.admin_dsn, "-Atq", "-c",
                        "ALTER DATABASE %s ALLOW_CONNECTIONS true"
                        % self.database_name()],
                       check=True, capture_output=True)

    def test_logout_before_commit_unavailable(self):
        s = self.stack
        tokens, err, _, _ = s.register()
        self.assertIsNone(err)
        self.close_database()
        try:
            _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
                refresh_token=tokens.refresh_token), s.caller_for(tokens))
        finally:
            self.open_database()
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), grpc.StatusCode.UNAVAILABLE, s.logs())

        # Nothing was committed, so the tokens still work and a retry
        # succeeds.
        self.assertTrue(self.introspect_when_up(tokens.access_token).active)
        _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token), s.caller_for(tokens))
        self.assertIsNone(err, s.logs())

    def test_missed_revocation_resent(self):
        s = self.stack
        tokens, err, _, _ = s.register()
        self.assertIsNone(err)
        self.logout_while_session_stopped(tokens, s.caller_for(tokens))

        # The logout is recorded, so the access token must turn inactive
        # even though session's cache stayed loaded across its restart.
        deadline = time.monotonic() + RESEND_WAIT_S
        while self.introspect_when_up(tokens.access_token).active:
            self.assertLess(time.monotonic(), deadline,
                            "revoked token still active\n" + s.logs())
            time.sleep(0.2)
        self.assertIn("auth.revocation_cache_stale", s.auth.log())

    def test_missed_session_end_resent(self):
        s = self.stack
        tokens, err, _, _ = s.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        caller = s.caller_for(tokens)
        key = "cerrojo:sess:s:" + caller["session-id"]
        self.assertEqual(s.redis("EXISTS", key), "1")
        self.logout_while_session_stopped(tokens, caller)

        # The deletion failed with the call, so the resent revocation must
        # end the session itself, not only its access tokens.
        deadline = time.monotonic() + RESEND_WAIT_S
        while s.redis("EXISTS", key) != "0":
            self.assertLess(time.monotonic(), deadline,
                            "session still stored\n" + s.logs())
            time.sleep(0.2)
        self.assertFalse(self.introspect_when_up(tokens.access_token).active)

    def open_request(self, client, seq):
        """Sends one sealed request on the client's session; returns the
        reply or the grpc.RpcError."""
        s = self.stack
        info = client.info
        epoch = ((int(time.time() * 1000) - info.created_at_ms) //
                 (info.epoch_seconds * 1000))
        aad, ct = client.seal(epoch, seq, b"hello")
        try:
            return s.session_stub.OpenRequest(
                s.session_pb2.OpenRequestRequest(
                    session_id=info.session_id, epoch=epoch, sequence=seq,
                    aad=aad, ciphertext=ct),
                timeout=ah.CALL_TIMEOUT_S)
        except grpc.RpcError as e:
            return e

    def test_missed_logout_all_ends_sessions(self):
        s = self.stack
        secret = os.urandom(SECRET_SIZE)
        first, err, username, password = s.register(secret=secret)
        self.assertIsNone(err)
        second_secret = os.urandom(SECRET_SIZE)
        second, err = s.login(username, password, secret=second_secret)
        self.assertIsNone(err)
        clients = [Client(first.session, secret),
                   Client(second.session, second_secret)]
        for client in clients:
            reply = self.open_request(client, 1)
            self.assertNotIsInstance(reply, grpc.RpcError, reply)
            self.assertEqual(reply.user_id, first.user_id)
        caller = s.caller_for(first)

        s.session.stop()
        try:
            # Committed before the call to session, so it has taken effect.
            _, err = s.call("Logout", s.auth_pb2.LogoutRequest(all=True),
                            caller)
            self.assertIsNone(err, s.logs())
        finally:
            s.session.start()

        # Only the user's revocation time reaches session again, so the
        # sessions must end by their bind time.
        user_key = "cerrojo:revoked:user:" + first.user_id
        deadline = time.monotonic() + RESEND_WAIT_S
        while s.redis("EXISTS", user_key) != "1":
            self.assertLess(time.monotonic(), deadline,
                            "user revocation not resent\n" + s.logs())
            time.sleep(0.2)
        for client in clients:
            reply = self.open_request(client, 2)
            self.assertIsInstance(reply, grpc.RpcError)
            self.assertEqual(reply.code(), grpc.StatusCode.NOT_FOUND)
            self.assertEqual(
                s.redis("EXISTS", "cerrojo:sess:s:" + client.info.session_id),
                "0")

    def test_missed_reuse_session_end_resent(self):
        s = self.stack
        tokens, err, _, _ = s.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        key = "cerrojo:sess:s:" + s.caller_for(tokens)["session-id"]
        _, err = s.refresh(tokens.refresh_token)
        self.assertIsNone(err)
        s.session.stop()
        try:
            # A used token is reuse whether or not session is reachable.
            _, err = s.refresh(tokens.refresh_token)
            self.assertIsNotNone(err)
        finally:
            s.session.start()

        deadline = time.monotonic() + RESEND_WAIT_S
        while s.redis("EXISTS", key) != "0":
            self.assertLess(time.monotonic(), deadline,
                            "session still stored\n" + s.logs())
            time.sleep(0.2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
