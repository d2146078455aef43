"""Auth's health status while its Postgres pool is busy. Handlers that
hold every pooled connection (here, one waiting on a table lock) do not
turn auth not-serving, because Postgres itself is still reachable."""

import concurrent.futures
import subprocess
import time
import unittest

import auth_harness as ah

# How long the test holds its lock on auth.users. It stays under the
# 5 s statement timeout, so the blocked login keeps the only connection.
LOCK_SECONDS = 4
# auth's wait for a free connection, short so that each clock check
# (every second in the harness) finds the pool busy.
ACQUIRE_TIMEOUT_MS = 300
# Maximum wait for an expected log line, in seconds.
LOG_WAIT_SECONDS = 5


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

    def wait_for_log(self, event):
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while time.monotonic() < deadline:
            if ('"event":"%s"' % event) in self.stack.auth.log():
                return True
            time.sleep(0.1)
        return False

    def test_busy_pool_keeps_auth_serving(self):
        s = self.stack
        _, err, name, password = s.register()
        self.assertIsNone(err)
        locker = subprocess.Popen(
            ["psql", s.dsn, "-Atq", "-v", "ON_ERROR_STOP=1", "-c",
             "BEGIN; LOCK TABLE auth.users IN ACCESS EXCLUSIVE MODE; "
             "SELECT pg_sleep(%d); COMMIT;" % LOCK_SECONDS],
            stdout=subprocess.DEVNULL)
        self.addCleanup(locker.wait)
        time.sleep(0.5)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            login = pool.submit(s.login, name, password)
            self.assertTrue(self.wait_for_log("auth.postgres_pool_busy"),
                            s.auth.log()[-3000:])
            pb2, _ = ah.h.health_modules()
            with s.auth.channel() as chan:
                self.assertEqual(ah.h.health_check(chan).status,
                                 pb2.HealthCheckResponse.SERVING)
            _, err = login.result()
        self.assertIsNone(err, err)
        self.assertEqual(locker.wait(), 0)
        self.assertTrue(self.wait_for_log("auth.postgres_pool_free"),
                        s.auth.log()[-3000:])
        self.assertNotIn('"event":"auth.postgres_unreachable"',
                         s.auth.log())
        self.assertNotIn('"event":"auth.health_changed","serving":false',
                         s.auth.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
