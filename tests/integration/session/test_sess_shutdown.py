"""cerrojo-session stopping while a handler waits on a Redis that no longer
replies. The test starts its own Redis with scripts/redis.sh and pauses it
with SIGSTOP, so a CreateSession call waits for its reply. After the
shutdown grace, session closes its Redis pool, the waiting command fails at
once, and the process exits long before the command timeout.

Run with /usr/bin/python3 (python3-grpcio).
"""

import base64
import concurrent.futures
import os
import secrets
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "rpc"))
import rpc_harness as h  # noqa: E402

SERVICE = "cerrojo.v1.Session"
GRACE_SECONDS = 1
# Long, so that a shutdown that waits for the command timeout is easy to
# tell from one that ends soon after the grace.
COMMAND_TIMEOUT_MS = 12000
# Time for CreateSession to reach its Redis command before the shutdown.
BLOCK_WAIT_S = 1.0
HEALTH_WAIT_S = 20
# The call's own deadline, past the command timeout, so that only the
# server can end it early.
CALL_DEADLINE_S = 60


class ShutdownWithRedisStopped(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        h.load_stubs()
        cls.certs = h.make_certs()
        cls.own_redis = h.OwnRedis("redis-shutdown").start()
        cls.svc = h.Service("session", certs=cls.certs, extra_env={
            "CERROJO_REDIS_HOST": "127.0.0.1",
            "CERROJO_REDIS_PORT": str(cls.own_redis.port),
            "CERROJO_SESSION_KEY":
                base64.b64encode(secrets.token_bytes(32)).decode(),
            "CERROJO_SESSION_METRICS_PORT": "0",
            "CERROJO_SESSION_GRPC_SHUTDOWN_GRACE": "%ds" % GRACE_SECONDS,
            "CERROJO_SESSION_REDIS_COMMAND_TIMEOUT_MS":
                str(COMMAND_TIMEOUT_MS),
        }).start()
        cls.chan = cls.svc.channel("gateway")

    @classmethod
    def tearDownClass(cls):
        cls.chan.close()
        try:
            cls.svc.stop()
        finally:
            cls.own_redis.stop()

    def wait_serving(self):
        serving = h.health_modules()[0].HealthCheckResponse.SERVING
        if h.wait_for_health(self.chan, serving, HEALTH_WAIT_S) is None:
            self.fail("session not SERVING after %d s:\n%s"
                      % (HEALTH_WAIT_S, self.svc.log()))

    def test_shutdown_ends_command_waiting_on_redis(self):
        self.wait_serving()
        desc = h.service_from_reflection(self.chan, SERVICE)
        create, req_cls = h.unary(self.chan, desc, "CreateSession")
        request = req_cls(client_secret=secrets.token_bytes(32))
        create(request, timeout=h.CALL_TIMEOUT_S)

        self.own_redis.pause()
        self.addCleanup(self.own_redis.resume)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(create, request, timeout=CALL_DEADLINE_S)
            time.sleep(BLOCK_WAIT_S)
            self.assertFalse(call.done(), "CreateSession did not wait on "
                             "the stopped Redis")
            # Without the pool close, the handler and the shutdown would
            # wait for the command timeout.
            log = h.stop_with_blocked_call(self, self.svc, call,
                                           COMMAND_TIMEOUT_MS / 2)
        self.assertEqual(len(h.log_entries(self.svc, "redis.pool_closed")), 1,
                         log)
        # The first failed command is logged: the handler's, or the
        # worker's when it also waited on Redis.
        failures = h.log_entries(self.svc, "session.redis_unavailable")
        self.assertTrue(failures, log)
        self.assertIn("closed for shutdown", failures[0]["error"])
        self.assertNotIn("command timed out", log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
