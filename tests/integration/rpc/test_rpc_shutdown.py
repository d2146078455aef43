"""Graceful shutdown and the `healthcheck` subcommand, on rpc_testd's
control table: after SIGTERM during a stream of calls every call gets a
response and no process is left, a call in flight finishes, health watches end with
NOT_SERVING, and `healthcheck` exits 0 only against a running, serving
server. test_rpc_binaries.py checks the same on the real binaries where
they can start."""

import os
import subprocess
import threading
import time
import unittest

import grpc

import rpc_harness as h

CLIENT_THREADS = 6
MAX_CALLS_PER_THREAD = 2000  # bounds the load even if the signal is late
CALLS_BEFORE_SIGNAL = 200
# Codes a call may end with when the server stops under it.
ALLOWED_DURING_SHUTDOWN = {grpc.StatusCode.OK,
                           grpc.StatusCode.UNAVAILABLE,
                           grpc.StatusCode.CANCELLED}
HOLD_MS = "1500"  # a call kept in flight across the signal


class Shutdown(unittest.TestCase):

    def test_sigterm_during_calls_answers_every_call(self):
        svc = h.Service(h.CONTROL).start()
        results = []
        lock = threading.Lock()
        stop = threading.Event()
        started = threading.Semaphore(0)

        def client():
            with svc.channel() as chan:
                for i in range(MAX_CALLS_PER_THREAD):
                    code, _ = h.testd_call(chan, "Hold", "x", "0")
                    with lock:
                        results.append(code)
                    started.release()
                    if stop.is_set() and code != grpc.StatusCode.OK:
                        break  # the server is gone for this client

        threads = [threading.Thread(target=client)
                   for _ in range(CLIENT_THREADS)]
        for t in threads:
            t.start()
        for _ in range(CALLS_BEFORE_SIGNAL):
            started.acquire()
        stop.set()
        status = svc.stop()
        for t in threads:
            t.join()

        self.assertEqual(status, 0, svc.log())
        self.assertIsNotNone(svc.proc.poll())
        self.assertGreaterEqual(len(results), CALLS_BEFORE_SIGNAL)
        codes = set(results)
        self.assertTrue(codes <= ALLOWED_DURING_SHUTDOWN, codes)
        self.assertNotIn(grpc.StatusCode.DEADLINE_EXCEEDED, codes)
        self.assertIn('"event":"rpc.shutdown_done"', svc.log())

    def test_call_in_flight_finishes_after_sigterm(self):
        svc = h.Service(h.CONTROL).start()
        outcome = {}

        def held_call():
            with svc.channel() as chan:
                outcome["code"] = h.testd_call(chan, "Hold", "x", HOLD_MS)

        t = threading.Thread(target=held_call)
        t.start()
        deadline = time.monotonic() + h.CALL_TIMEOUT_S
        while ('"testd.hold_started"' not in svc.log()
               and time.monotonic() < deadline):
            time.sleep(0.01)
        self.assertIn('"testd.hold_started"', svc.log())
        status = svc.stop()
        t.join()
        self.assertEqual(outcome["code"], (grpc.StatusCode.OK, ""))
        self.assertEqual(status, 0, svc.log())
        self.assertIn('"graceful":true', svc.log())

    def test_health_watch_ends_at_shutdown(self):
        pb2, grpc_mod = h.health_modules()
        svc = h.Service(h.CONTROL).start()
        chan = svc.channel()
        stream = grpc_mod.HealthStub(chan).Watch(
            pb2.HealthCheckRequest(service=""), timeout=h.CALL_TIMEOUT_S)
        self.assertEqual(next(stream).status, pb2.HealthCheckResponse.SERVING)
        svc.proc.send_signal(15)
        self.assertEqual(next(stream).status,
                         pb2.HealthCheckResponse.NOT_SERVING)
        with self.assertRaises(grpc.RpcError) as ctx:
            next(stream)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)
        chan.close()
        self.assertEqual(svc.stop(), 0, svc.log())

    def healthcheck(self, svc, env=None):
        return subprocess.run([svc.binary(), "healthcheck"],
                              env=env or svc.env, capture_output=True,
                              timeout=h.CALL_TIMEOUT_S * 2)

    def test_healthcheck_command_follows_health(self):
        certs = h.make_certs()
        svc = h.Service(h.CONTROL, certs=certs).start()
        try:
            check = self.healthcheck(svc)
            self.assertEqual(check.returncode, 0, check.stderr)
            with svc.channel("platform-service") as chan:
                self.assertEqual(h.testd_call(chan, "SetHealth", "NOT_SERVING",
                                              "")[0], grpc.StatusCode.OK)
            check = self.healthcheck(svc)
            self.assertEqual(check.returncode, 1)
            self.assertIn(b"not serving", check.stderr)
        finally:
            self.assertEqual(svc.stop(), 0, svc.log())
        check = self.healthcheck(svc)
        self.assertNotEqual(check.returncode, 0)
        self.assertIn(b"unavailable", check.stderr)

    def test_healthcheck_command_with_wrong_certificate_fails(self):
        certs = h.make_certs()
        svc = h.Service(h.CONTROL, certs=certs).start()
        try:
            env = dict(svc.env)
            env["CERROJO_RPC_TESTD_TLS_CERT"] = os.path.join(certs, "other.pem")
            env["CERROJO_RPC_TESTD_TLS_KEY"] = os.path.join(certs, "other.key")
            check = self.healthcheck(svc, env)
            self.assertNotEqual(check.returncode, 0)
        finally:
            self.assertEqual(svc.stop(), 0, svc.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
