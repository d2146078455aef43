"""Cancelled logins: Login calls that the client cancels soon after sending
them get no Argon2 slot once the cancellation is seen, and issue no refresh
token, so a real login right after them succeeds without waiting behind
them. Before auth saw cancellations, every cancelled login ran Argon2 and
wrote its token and audit rows."""

import time
import unittest

import grpc

import auth_harness as ah

ARGON2_SLOTS = 2
# Slow enough that no login finishes before the client cancels it.
CANCEL_ARGON2_MEMORY = "32MiB"
CANCEL_ARGON2_PASSES = "3"
CANCELLED_LOGINS = 20
CANCEL_AFTER_S = 0.03
REAL_LOGIN_TIMEOUT_S = 3
# On a shared 2-core machine the real login took 0.29 s with the check and
# 1.90 s behind the cancelled logins without it.
REAL_LOGIN_MAX_S = 1.2
# Time for the logins that held a slot when they were cancelled to end.
SETTLE_TIMEOUT_S = 10
# At most the logins running when the cancellation arrived may still
# verify, plus the real one; without the check all CANCELLED_LOGINS do.
MAX_VERIFICATIONS = ARGON2_SLOTS + 1 + 2


class CancelledLogin(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack(auth_env={
            "CERROJO_AUTH_ARGON2_CONCURRENCY": str(ARGON2_SLOTS),
            "CERROJO_AUTH_ARGON2_MEMORY": CANCEL_ARGON2_MEMORY,
            "CERROJO_AUTH_ARGON2_PASSES": CANCEL_ARGON2_PASSES,
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def token_rows(self, user_id):
        return int(self.stack.sql(
            "SELECT count(*) FROM auth.refresh_tokens WHERE user_id = '%s'"
            % user_id)[0][0])

    def wait_gate_idle(self):
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.stack.metric("auth_password_in_flight") == 0:
                return
            time.sleep(0.1)
        self.fail("password gate still busy after %d s" % SETTLE_TIMEOUT_S)

    def test_cancelled_logins_skip_argon2_and_tokens(self):
        s = self.stack
        reply, err, username, password = s.register()
        self.assertIsNone(err, err)
        user_id = reply.user_id
        rows_before = self.token_rows(user_id)
        verifications_before = s.metric("auth_password_verifications_total")

        request = s.auth_pb2.LoginRequest(login=username, password=password)
        calls = [s.stub.Login.future(request) for _ in range(CANCELLED_LOGINS)]
        time.sleep(CANCEL_AFTER_S)
        for call in calls:
            call.cancel()
        cancelled = sum(1 for call in calls if call.cancelled())

        started = time.monotonic()
        real, err = s.call("Login", request, timeout_s=REAL_LOGIN_TIMEOUT_S)
        real_login_s = time.monotonic() - started
        self.assertIsNone(err, err)
        self.assertTrue(real.refresh_token)

        self.wait_gate_idle()
        verifications = (s.metric("auth_password_verifications_total")
                         - verifications_before)
        rows = self.token_rows(user_id) - rows_before
        print("cancelled %d of %d; verifications %d, token rows %d, real "
              "login %.2f s" % (cancelled, CANCELLED_LOGINS, verifications,
                                rows, real_login_s))

        self.assertGreater(cancelled, CANCELLED_LOGINS // 2)
        self.assertLessEqual(verifications, MAX_VERIFICATIONS)
        # Only the real login's token: every cancelled login stopped
        # before tokens were issued.
        self.assertEqual(rows, 1)
        self.assertLess(real_login_s, REAL_LOGIN_MAX_S)
        self.assertIn('"reason":"cancelled"', s.auth.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
