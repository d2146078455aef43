"""Login flood: while many logins run at once, Introspect keeps responding
within a deadline well above its normal latency, no more Argon2 operations
run at once than CERROJO_AUTH_ARGON2_CONCURRENCY allows, and every login
that got past the password gate cost exactly one verification. Asserts
behaviour only, never throughput."""

import threading
import time
import unittest

import grpc

import auth_harness as ah

ARGON2_SLOTS = 2
# Enough Argon2 memory and passes that verifications overlap in the flood.
FLOOD_ARGON2_MEMORY = "8MiB"
FLOOD_ARGON2_PASSES = "2"
FLOOD_THREADS = 32
FLOOD_SECONDS = 4
FLOOD_MAX_LOGINS_PER_THREAD = 60
LOGIN_TIMEOUT_S = 5
INTROSPECT_THREADS = 2
INTROSPECT_TIMEOUT_S = 2
INTROSPECT_MAX_CALLS_PER_THREAD = 400
# Login codes expected during the flood: a rejected or failed
# attempt, never an internal error.
FLOOD_CODES = {grpc.StatusCode.UNAUTHENTICATED,
               grpc.StatusCode.UNAVAILABLE,
               grpc.StatusCode.DEADLINE_EXCEEDED}


class Flood(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack(auth_env={
            "CERROJO_AUTH_ARGON2_CONCURRENCY": str(ARGON2_SLOTS),
            "CERROJO_AUTH_ARGON2_MEMORY": FLOOD_ARGON2_MEMORY,
            "CERROJO_AUTH_ARGON2_PASSES": FLOOD_ARGON2_PASSES,
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def flood_login(self, stop, results, lock):
        s = self.stack
        for _ in range(FLOOD_MAX_LOGINS_PER_THREAD):
            if stop.is_set():
                return
            # An unknown login each time: one dummy verification per
            # admitted attempt, and no account streak to throttle.
            req = s.auth_pb2.LoginRequest(login=ah.random_name("nobody"),
                                          password="not-the-password")
            try:
                s.stub.Login(req, timeout=LOGIN_TIMEOUT_S)
                code = grpc.StatusCode.OK
            except grpc.RpcError as e:
                code = e.code()
            with lock:
                results[code] = results.get(code, 0) + 1

    def introspect_loop(self, token, stop, results, lock):
        s = self.stack
        req = s.auth_pb2.IntrospectRequest(token=token)
        for _ in range(INTROSPECT_MAX_CALLS_PER_THREAD):
            if stop.is_set():
                return
            try:
                reply = s.stub.Introspect(req, timeout=INTROSPECT_TIMEOUT_S)
                key = "active" if reply.active else "inactive"
            except grpc.RpcError as e:
                key = e.code()
            with lock:
                results[key] = results.get(key, 0) + 1

    def test_introspect_flows_and_argon2_stays_bounded_in_flood(self):
        s = self.stack
        reply, err, _, _ = s.register()
        self.assertIsNone(err, err)
        token = reply.access_token
        verifications_before = s.metric("auth_password_verifications_total")

        stop = threading.Event()
        lock = threading.Lock()
        logins = {}
        introspects = {}
        threads = [threading.Thread(target=self.flood_login,
                                    args=(stop, logins, lock))
                   for _ in range(FLOOD_THREADS)]
        threads += [threading.Thread(target=self.introspect_loop,
                                     args=(token, stop, introspects, lock))
                    for _ in range(INTROSPECT_THREADS)]
        for t in threads:
            t.start()
        time.sleep(FLOOD_SECONDS)
        stop.set()
        for t in threads:
            t.join()

        print("logins by code: %s" % logins)
        print("introspect results: %s" % introspects)
        print("refused by the gate: %d" %
              s.metric("auth_password_gate_refused_total"))

        # Introspect kept answering: every call came back active in time.
        self.assertGreater(introspects.get("active", 0), 0, introspects)
        self.assertEqual(set(introspects), {"active"}, introspects)

        self.assertTrue(set(logins) <= FLOOD_CODES, logins)
        rejected = logins.get(grpc.StatusCode.UNAUTHENTICATED, 0)
        self.assertGreater(rejected, 0, logins)

        # Argon2 ran, and never more at once than the configured slots.
        peak = s.metric("auth_password_in_flight_max")
        self.assertGreaterEqual(peak, 1)
        self.assertLessEqual(peak, ARGON2_SLOTS)
        self.assertEqual(s.metric("auth_password_in_flight"), 0)

        # One verification per login that passed the gate; refused logins
        # ran none. The metric is read after every reply came back.
        verifications = (s.metric("auth_password_verifications_total") -
                         verifications_before)
        self.assertEqual(verifications, rejected)


# A line of one Argon2 slot and its waiters, and more logins at once than
# it holds. Each hash is meant to take long enough that the line drains
# far slower than the logins arrive.
LINE_ARGON2_SLOTS = 1
LINE_ARGON2_MEMORY = "32MiB"
LINE_ARGON2_PASSES = "3"
LINE_LOGINS = 48
LINE_LOGIN_TIMEOUT_S = 60
RETRY_AFTER_KEY = "retry-after-seconds"
RETRY_AFTER_MAX_S = 60


class FullLine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack(auth_env={
            "CERROJO_AUTH_ARGON2_CONCURRENCY": str(LINE_ARGON2_SLOTS),
            "CERROJO_AUTH_ARGON2_MEMORY": LINE_ARGON2_MEMORY,
            "CERROJO_AUTH_ARGON2_PASSES": LINE_ARGON2_PASSES,
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def login_once(self, start, results, lock):
        s = self.stack
        req = s.auth_pb2.LoginRequest(login=ah.random_name("nobody"),
                                      password="not-the-password")
        start.wait()
        try:
            s.stub.Login(req, timeout=LINE_LOGIN_TIMEOUT_S)
            outcome = (grpc.StatusCode.OK, None)
        except grpc.RpcError as e:
            trailers = dict(e.trailing_metadata() or ())
            outcome = (e.code(), trailers.get(RETRY_AFTER_KEY))
        with lock:
            results.append(outcome)

    def test_full_line_rejects_with_retry_after(self):
        start = threading.Barrier(LINE_LOGINS)
        lock = threading.Lock()
        results = []
        threads = [threading.Thread(target=self.login_once,
                                    args=(start, results, lock))
                   for _ in range(LINE_LOGINS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        codes = [c for c, _ in results]
        print("logins by code: %s" %
              {c: codes.count(c) for c in set(codes)})
        self.assertEqual(len(results), LINE_LOGINS)
        # A login either found room in the line and was served, or was
        # rejected at once; none timed out waiting.
        self.assertTrue(set(codes) <= {grpc.StatusCode.UNAUTHENTICATED,
                                       grpc.StatusCode.UNAVAILABLE}, codes)
        self.assertGreater(codes.count(grpc.StatusCode.UNAUTHENTICATED), 1)
        rejected = [r for c, r in results
                    if c == grpc.StatusCode.UNAVAILABLE]
        self.assertGreater(len(rejected), 0, codes)
        for retry_after in rejected:
            self.assertIsNotNone(retry_after)
            self.assertTrue(retry_after.isdigit(), retry_after)
            self.assertGreaterEqual(int(retry_after), 1)
            self.assertLessEqual(int(retry_after), RETRY_AFTER_MAX_S)
        # Every rejection was the gate's, and none was a timed-out wait.
        self.assertEqual(
            self.stack.metric("auth_password_gate_refused_total"),
            len(rejected))


if __name__ == "__main__":
    unittest.main(verbosity=2)
