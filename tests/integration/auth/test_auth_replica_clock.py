"""Two auth replicas over one Postgres, Redis, kms and session, the second
with its host clock 3 s ahead (libfaketime, preloaded as
tests/deploy/clock_check.sh does). Both replicas stamp times on Postgres's
clock, so the skewed one issues tokens and refresh rows within a second of
Postgres's clock, and a logout of all devices through either replica
revokes the tokens issued before it, whichever replica issued them, and
none issued after its reply."""

import math
import os
import unittest

import auth_harness as ah

# The skewed replica's clock offset, in libfaketime's syntax and in ms. It
# stays under the default CERROJO_AUTH_CLOCK_MAX_OFFSET, so the replica
# keeps serving.
REPLICA_CLOCK_OFFSET = "+3s"
REPLICA_CLOCK_OFFSET_MS = 3000
# Allowed error of the replica's measured offset, in ms.
OFFSET_TOLERANCE_MS = 500
# Allowed distance, in s, of a stamped time outside Postgres's clock read
# before and after the call: the error of the replica's measured offset.
# The 3 s skew, less the call's time, must stay above it.
STAMP_ERROR_S = 0.5
SECRET_SIZE = 32

stack = None
skewed = None


def setUpModule():
    global stack, skewed
    ah.require_env()
    ah.require_faketime()
    stack = ah.Stack().start()
    try:
        skewed = stack.start_auth_replica(
            ah.faketime_env(REPLICA_CLOCK_OFFSET))
    except BaseException:
        stack.stop_after_failed_start()
        raise


def tearDownModule():
    if stack is not None:
        stack.stop()


def postgres_now_s():
    """Returns Postgres's clock in seconds since the Unix epoch."""
    rows = stack.sql("SELECT extract(epoch FROM clock_timestamp())")
    return float(rows[0][0])


def session_key(sid):
    return "cerrojo:sess:s:" + sid


class SkewedReplica(unittest.TestCase):
    def assert_stamped_between(self, stamp_s, before_s, after_s):
        """Asserts that a time was stamped on Postgres's clock between
        before_s and after_s. A whole-second stamp (iat) may be up to a
        second before before_s."""
        if isinstance(stamp_s, int):
            before_s = math.floor(before_s)
        self.assertGreaterEqual(stamp_s, before_s - STAMP_ERROR_S)
        self.assertLessEqual(stamp_s, after_s + STAMP_ERROR_S)

    def logout_all(self, tokens, stub=None):
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(all=True),
                            stack.caller_for(tokens), stub=stub)
        self.assertIsNone(err, err)

    def test_replica_measures_its_skew(self):
        # Without the skew the other tests would pass with any clock.
        replica = stack.auth_replicas[0]
        warnings = ah.h.log_entries(replica, "auth.clock_offset")
        self.assertTrue(warnings, replica.log()[-4000:])
        offset_ms = warnings[0]["offset_ms"]
        self.assertGreater(offset_ms,
                           -REPLICA_CLOCK_OFFSET_MS - OFFSET_TOLERANCE_MS)
        self.assertLess(offset_ms,
                        -REPLICA_CLOCK_OFFSET_MS + OFFSET_TOLERANCE_MS)

    def test_token_iat_follows_postgres_clock(self):
        before_s = postgres_now_s()
        tokens, err, _, _ = stack.register(stub=skewed)
        after_s = postgres_now_s()
        self.assertIsNone(err, err)

        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err, err)
        self.assertTrue(info.active)
        self.assert_stamped_between(info.iat, before_s, after_s)
        issued = stack.sql(
            "SELECT extract(epoch FROM issued_at) FROM auth.refresh_tokens "
            "WHERE id = '%s'" % info.jti)
        self.assert_stamped_between(float(issued[0][0]), before_s, after_s)

    def test_revocation_time_follows_postgres_clock(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)

        before_s = postgres_now_s()
        self.logout_all(tokens, stub=skewed)
        after_s = postgres_now_s()
        revoked = stack.sql(
            "SELECT extract(epoch FROM revoked_at) FROM auth.revocations "
            "WHERE kind = 'user' AND subject = '%s'" % tokens.user_id)
        self.assert_stamped_between(float(revoked[0][0]), before_s, after_s)

    def test_logout_all_revokes_skewed_replica_token(self):
        tokens, err, _, _ = stack.register(stub=skewed)
        self.assertIsNone(err, err)
        info, _ = stack.introspect(tokens.access_token)
        self.assertTrue(info.active)

        self.logout_all(tokens)
        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err, err)
        self.assertFalse(info.active)

    def test_login_after_skewed_logout_all_is_valid(self):
        tokens, err, name, password = stack.register()
        self.assertIsNone(err, err)

        self.logout_all(tokens, stub=skewed)
        again, err = stack.login(name, password,
                                 secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        info, err = stack.introspect(again.access_token)
        self.assertIsNone(err, err)
        self.assertTrue(info.active)
        sid = again.session.session_id
        self.assertNotEqual(sid, "")
        self.assertEqual(stack.redis("EXISTS", session_key(sid)), "1")


if __name__ == "__main__":
    unittest.main(verbosity=2)
