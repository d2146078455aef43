"""Auth while Postgres is slow or kms or session is stopped. Handlers that
hold every pooled connection (here, one waiting on a table lock) do not
turn auth not-serving, because Postgres itself is still reachable. A
shutdown cancels the statements of handlers that outlive the grace period,
and ends their waits on the login throttle's Redis, instead of waiting for
them. A call that fails because kms or session is
stopped names that service in its message."""

import concurrent.futures
import json
import os
import re
import subprocess
import time
import unittest

import grpc

import auth_harness as ah

# How long the test holds its lock on auth.users. It stays under the
# 5 s statement timeout, so the blocked login keeps the only connection.
LOCK_SECONDS = 4
# auth's wait for a free connection, short so that each clock check
# (every second in the harness) finds the pool busy.
ACQUIRE_TIMEOUT_MS = 300
# Maximum wait for an expected log line, in seconds.
LOG_WAIT_SECONDS = 5
# auth's shutdown grace in the shutdown test, well under the 5 s statement
# timeout that would otherwise end the blocked handler.
GRACE_SECONDS = 1
STATEMENT_TIMEOUT_MS = 5000
# auth's Redis command timeout in the throttle shutdown test, long so that
# a shutdown that waits for it is easy to tell from one that does not.
REDIS_COMMAND_TIMEOUT_MS = 12000
# The client's own deadline for the login in the test where the caller
# gives up before the shutdown starts, in seconds.
GIVEN_UP_CALL_TIMEOUT_S = 1
# auth's deadline for one call to kms or session, short so that a call to
# a stopped service ends soon whether it is refused or times out.
RPC_TIMEOUT_MS = 1000
# Size of the handshake secret that makes login open a session.
SECRET_SIZE = 32
# Maximum wait for psql to take its lock, or for a login to reach the
# statement or Redis command it blocks on, in seconds. Each normally takes
# well under a second, and the margin covers a loaded machine.
BLOCK_WAIT_SECONDS = 20
# application_name of the psql that takes the lock.
LOCKER_NAME = "cj_auth_health_locker"


def wait_for_backend(stack, condition):
    """Returns whether a backend of the stack's database matches the SQL
    `condition` on pg_stat_activity within BLOCK_WAIT_SECONDS."""
    query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = "
             "current_database() AND %s" % condition)
    deadline = time.monotonic() + BLOCK_WAIT_SECONDS
    while time.monotonic() < deadline:
        if stack.sql(query) != [["0"]]:
            return True
        time.sleep(0.05)
    return False


def lock_users(test, stack, seconds):
    """Starts psql with an exclusive lock on auth.users for `seconds`, and
    waits until psql has the lock, so that the test's login blocks."""
    env = dict(os.environ, PGAPPNAME=LOCKER_NAME)
    locker = subprocess.Popen(
        ["psql", stack.dsn, "-Atq", "-v", "ON_ERROR_STOP=1", "-c",
         "BEGIN; LOCK TABLE auth.users IN ACCESS EXCLUSIVE MODE; "
         "SELECT pg_sleep(%d); COMMIT;" % seconds],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    test.addCleanup(locker.wait)
    # A test that is done with the lock need not wait for psql's sleep.
    test.addCleanup(stack.sql, "SELECT pg_cancel_backend(pid) FROM "
                    "pg_stat_activity WHERE application_name = '%s'"
                    % LOCKER_NAME)
    # psql sleeps only after LOCK TABLE returned.
    test.assertTrue(wait_for_backend(
        stack, "application_name = '%s' AND wait_event = 'PgSleep'"
        % LOCKER_NAME), "psql did not take the lock on auth.users")
    return locker


def wait_for_metric(stack, name, value):
    """Returns whether auth's metric `name` reaches `value` within
    BLOCK_WAIT_SECONDS."""
    deadline = time.monotonic() + BLOCK_WAIT_SECONDS
    while time.monotonic() < deadline:
        if stack.metric(name) == value:
            return True
        time.sleep(0.05)
    return False


def wait_for_log(svc, event):
    """Returns whether `event` appears in svc's log within LOG_WAIT_SECONDS."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while time.monotonic() < deadline:
        if ('"event":"%s"' % event) in svc.log():
            return True
        time.sleep(0.1)
    return False


def log_entry(svc, event):
    """Returns the first log entry of `event` in svc's log, or None."""
    for line in svc.log().splitlines():
        if ('"event":"%s"' % event) in line:
            return json.loads(line)
    return None


class PoolBusy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack({
            "CERROJO_AUTH_DB_POOL_SIZE": "1",
            "CERROJO_AUTH_DB_ACQUIRE_TIMEOUT_MS": str(ACQUIRE_TIMEOUT_MS),
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_busy_pool_keeps_auth_serving(self):
        s = self.stack
        _, err, name, password = s.register()
        self.assertIsNone(err)
        _, err, other, other_password = s.register()
        self.assertIsNone(err)
        locker = lock_users(self, s, LOCK_SECONDS)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            login = pool.submit(s.login, name, password)
            self.assertTrue(wait_for_log(s.auth, "auth.postgres_pool_busy"),
                            s.auth.log()[-3000:])
            pb2, _ = ah.h.health_modules()
            with s.auth.channel() as chan:
                self.assertEqual(ah.h.health_check(chan).status,
                                 pb2.HealthCheckResponse.SERVING)
            # A call that finds no free connection names the store.
            _, err = s.login(other, other_password)
            self.assertIsNotNone(err)
            self.assertIn("database (Postgres) is busy", err.details())
            _, err = login.result()
        self.assertIsNone(err, err)
        self.assertEqual(locker.wait(), 0)
        self.assertTrue(wait_for_log(s.auth, "auth.postgres_pool_free"),
                        s.auth.log()[-3000:])
        self.assertNotIn('"event":"auth.postgres_unreachable"',
                         s.auth.log())
        self.assertNotIn('"event":"auth.health_changed","serving":false',
                         s.auth.log())


class ShutdownCancelsStatements(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack({
            "CERROJO_AUTH_GRPC_SHUTDOWN_GRACE": "%ds" % GRACE_SECONDS,
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_shutdown_cancels_blocked_statement(self):
        s = self.stack
        _, err, name, password = s.register()
        self.assertIsNone(err)
        lock_users(self, s, 3 * STATEMENT_TIMEOUT_MS // 1000)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            login = pool.submit(s.login_or_raise, name, password)
            self.assertTrue(wait_for_backend(
                s, "usename = 'cerrojo_auth' AND wait_event_type = 'Lock'"),
                "the login did not wait on the lock\n" + s.auth.log()[-3000:])
            # Without the cancel, the handler would end at its statement
            # timeout and the shutdown with it.
            log = ah.h.stop_with_blocked_call(self, s.auth, login,
                                              STATEMENT_TIMEOUT_MS)
        self.assertIsNotNone(log_entry(s.auth, "db.pool_cancelled"), log)


class ThrottleRedisOfItsOwn(unittest.TestCase):
    """A stack whose auth keeps its login throttle in a Redis of the
    class's own, which a test may pause, with a short grace and a long
    Redis command timeout. Subclasses name the Redis in REDIS_NAME."""

    REDIS_NAME = None

    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.own_redis = ah.h.OwnRedis(cls.REDIS_NAME).start()
        cls.stack = ah.Stack({
            "CERROJO_AUTH_GRPC_SHUTDOWN_GRACE": "%ds" % GRACE_SECONDS,
            "CERROJO_AUTH_REDIS_PORT": str(cls.own_redis.port),
            "CERROJO_AUTH_REDIS_COMMAND_TIMEOUT_MS":
                str(REDIS_COMMAND_TIMEOUT_MS),
        }).start()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.stack.stop()
        finally:
            cls.own_redis.stop()


class ShutdownClosesThrottleRedis(ThrottleRedisOfItsOwn):
    REDIS_NAME = "auth-throttle-redis"

    def test_shutdown_ends_login_waiting_on_redis(self):
        s = self.stack
        _, err, name, password = s.register()
        self.assertIsNone(err)
        self.own_redis.pause()
        self.addCleanup(self.own_redis.resume)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            login = pool.submit(s.login_or_raise, name, password)
            # The login takes its password slot right before the throttle's
            # Redis command, and keeps it while that command waits.
            self.assertTrue(
                wait_for_metric(s, "auth_password_in_flight", 1),
                "the login did not reach the throttle\n"
                + s.auth.log()[-3000:])
            self.assertFalse(login.done())
            # Without the close, the handler would end at its command
            # timeout and the shutdown with it.
            log = ah.h.stop_with_blocked_call(self, s.auth, login,
                                              REDIS_COMMAND_TIMEOUT_MS / 2)
        self.assertIsNotNone(log_entry(s.auth, "redis.pool_closed"), log)


class ShutdownAfterCallerGaveUp(ThrottleRedisOfItsOwn):
    """The caller's deadline passes before the shutdown while the handler
    still waits on Redis. NOTE: grpcio keeps the connection open here, so
    auth's gRPC shutdown still waits out the grace. The case where gRPC
    reports the calls done at once is covered in the rpc_server unit
    tests."""

    REDIS_NAME = "auth-given-up-redis"

    def test_shutdown_ends_handler_after_grace(self):
        s = self.stack
        _, err, name, password = s.register()
        self.assertIsNone(err)
        self.own_redis.pause()
        self.addCleanup(self.own_redis.resume)
        # The client gives up before the shutdown, as the gateway does when
        # it replies with 503.
        with s.auth.channel() as chan:
            stub = s.auth_grpc.AuthStub(chan)
            with self.assertRaises(grpc.RpcError) as caught:
                stub.Login(s.auth_pb2.LoginRequest(login=name,
                                                   password=password),
                           timeout=GIVEN_UP_CALL_TIMEOUT_S)
        self.assertEqual(caught.exception.code(),
                         grpc.StatusCode.DEADLINE_EXCEEDED,
                         caught.exception.details())

        started = time.monotonic()
        status = s.auth.stop()
        stop_seconds = time.monotonic() - started
        log = s.auth.log()[-6000:]
        self.assertEqual(status, 0, log)
        # Without the hook, auth would exit only when the Redis command
        # timed out.
        bound_seconds = REDIS_COMMAND_TIMEOUT_MS / 2000
        self.assertLess(stop_seconds, bound_seconds, log)
        self.assertGreaterEqual(stop_seconds, GRACE_SECONDS, log)
        self.assertEqual(len(ah.h.log_entries(s.auth,
                                              "rpc.shutdown_ending_work")),
                         1, log)
        self.assertIsNotNone(log_entry(s.auth, "redis.pool_closed"), log)
        done = ah.h.log_entries(s.auth, "rpc.shutdown_done")
        self.assertEqual(len(done), 1, log)
        self.assertFalse(done[0]["graceful"], log)
        self.assertLess(done[0]["duration_ms"], bound_seconds * 1000, log)


class BackendStopped(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack({
            "CERROJO_AUTH_RPC_TIMEOUT_MS": str(RPC_TIMEOUT_MS),
        }).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def assert_names_service(self, err, service, secrets):
        """Checks that err names `service` and contains none of `secrets`."""
        self.assertIsNotNone(err)
        self.assertIn(err.code(), (grpc.StatusCode.UNAVAILABLE,
                                   grpc.StatusCode.DEADLINE_EXCEEDED))
        self.assertRegex(err.details(),
                         "^the %s (is unavailable|timed out); retry later$"
                         % re.escape(service))
        for secret in secrets:
            self.assertNotIn(secret, err.details())

    def test_stopped_kms_named_in_error(self):
        s = self.stack
        _, err, name, password = s.register()
        self.assertIsNone(err)
        s.kms.stop()
        try:
            # Register fails at CreateUserKey, login at SignToken.
            _, err, _, other_password = s.register()
            self.assert_names_service(err, "key service (kms)",
                                      [other_password])
            _, err = s.login(name, password)
            self.assert_names_service(err, "key service (kms)", [password])
        finally:
            s.kms.start()

    def test_stopped_session_named_in_error(self):
        s = self.stack
        tokens, err, name, password = s.register()
        self.assertIsNone(err)
        caller = s.caller_for(tokens)
        stateful, err, _, _ = s.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        s.session.stop()
        try:
            # Login fails at CreateSession, Introspect at IsRevoked and the
            # refresh of a stateful family at BindUser. Logout commits
            # before its RevokeToken, so it succeeds and logs the failure.
            _, err = s.login(name, password, secret=os.urandom(SECRET_SIZE))
            self.assert_names_service(err, "session service", [password])
            _, err = s.introspect(tokens.access_token)
            self.assert_names_service(err, "session service",
                                      [tokens.access_token])
            _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
                refresh_token=tokens.refresh_token), caller)
            self.assertIsNone(err, s.logs())
            self.assertIn('"event":"auth.logout_session_update_failed"',
                          s.auth.log())
            _, err = s.refresh(stateful.refresh_token)
            self.assert_names_service(err, "session service",
                                      [stateful.refresh_token])
        finally:
            s.session.start()
            s.wait_cache_loaded()


if __name__ == "__main__":
    unittest.main(verbosity=2)
