"""Refresh with the grace period on: of concurrent refreshes with one
token, retries within the grace period replace the unseen successor, and
the family ends with exactly one live token."""

import base64
import concurrent.futures
import hashlib
import unittest

import grpc

import auth_harness as ah

GRACE_SECONDS = 30
CONCURRENT_REFRESHES = 20


def token_hash(token):
    """Hex SHA-256 of a refresh token's 32 bytes, as auth stores it."""
    raw = base64.urlsafe_b64decode(token + "=")
    return hashlib.sha256(raw).hexdigest()


class Grace(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack(
            {"CERROJO_AUTH_REFRESH_GRACE_SECONDS": str(GRACE_SECONDS)}).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_concurrent_refreshes_leave_one_live_token(self):
        s = self.stack
        first, err, _, _ = s.register()
        self.assertIsNone(err)
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT_REFRESHES) as ex:
            results = list(ex.map(lambda _: s.refresh(first.refresh_token),
                                  range(CONCURRENT_REFRESHES)))
        codes = [err.code() if err else grpc.StatusCode.OK
                 for _, err in results]
        self.assertEqual(codes.count(grpc.StatusCode.OK),
                         CONCURRENT_REFRESHES, codes)
        rows = s.sql("SELECT count(*) FROM auth.refresh_tokens WHERE "
                     "user_id = '%s' AND used_at IS NULL AND revoked_at IS "
                     "NULL" % first.user_id)
        self.assertEqual(rows, [["1"]])
        [[live_hash]] = s.sql(
            "SELECT encode(token_hash, 'hex') FROM auth.refresh_tokens "
            "WHERE user_id = '%s' AND used_at IS NULL AND revoked_at IS NULL"
            % first.user_id)
        returned = [token_hash(r.refresh_token) for r, _ in results]
        self.assertEqual(returned.count(live_hash), 1)
        # One first use and CONCURRENT_REFRESHES - 1 grace retries, each
        # revoking the successor before it and each audited.
        rows = s.sql("SELECT count(*) FROM auth.refresh_tokens WHERE "
                     "user_id = '%s' AND revoked_reason = 'grace_retry'"
                     % first.user_id)
        self.assertEqual(rows, [[str(CONCURRENT_REFRESHES - 1)]])
        rows = s.sql("SELECT detail->>'grace_retry', count(*) FROM "
                     "auth.audit_events WHERE event = 'refresh' AND "
                     "user_id = '%s' GROUP BY 1 ORDER BY 1" % first.user_id)
        self.assertEqual(rows, [["false", "1"],
                                ["true", str(CONCURRENT_REFRESHES - 1)]])
        # Only the access token issued with the live refresh token stays
        # active: each retry revoked the one issued with its predecessor.
        active = [s.introspect(r.access_token)[0].active for r, _ in results]
        self.assertEqual(active.count(True), 1, active)
        winner = returned.index(live_hash)
        self.assertTrue(active[winner])

    def test_grace_retry_revokes_replaced_access_token(self):
        s = self.stack
        first, err, _, _ = s.register()
        self.assertIsNone(err)
        second, err = s.refresh(first.refresh_token)
        self.assertIsNone(err)
        retry, err = s.refresh(first.refresh_token)
        self.assertIsNone(err)
        info, err = s.introspect(second.access_token)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        info, err = s.introspect(retry.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)

    def test_retry_after_successor_used_is_reuse(self):
        s = self.stack
        first, err, _, _ = s.register()
        self.assertIsNone(err)
        second, err = s.refresh(first.refresh_token)
        self.assertIsNone(err)
        third, err = s.refresh(second.refresh_token)
        self.assertIsNone(err)
        _, err = s.refresh(first.refresh_token)
        self.assertEqual(err.code(), grpc.StatusCode.UNAUTHENTICATED)
        _, err = s.refresh(third.refresh_token)
        self.assertEqual(err.code(), grpc.StatusCode.UNAUTHENTICATED)


if __name__ == "__main__":
    unittest.main(verbosity=2)
