"""Graceful shutdown and the `healthcheck` subcommand: SIGTERM during a
stream of calls answers every call and leaves no process; health watches
end with NOT_SERVING; `healthcheck` exits 0 only against a running server."""

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
ALLOWED_DURING_SHUTDOWN = {grpc.StatusCode.UNIMPLEMENTED,  # the stub's answer
                           grpc.StatusCode.UNAVAILABLE,
                           grpc.StatusCode.CANCELLED}


class Shutdown(unittest.TestCase):

    def test_sigterm_during_calls_answers_every_call(self):
        svc = h.Service("kms").start()
        results = []
        lock = threading.Lock()
        stop = threading.Event()
        started = threading.Semaphore(0)

        def client():
            with svc.channel() as chan:
                fn = chan.unary_unary("/cerrojo.v1.Kms/SignToken")
                for i in range(MAX_CALLS_PER_THREAD):
                    code, _ = h.call_code(fn, b"")
                    with lock:
                        results.append(code)
                    started.release()
                    if stop.is_set() and code != grpc.StatusCode.UNIMPLEMENTED:
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

    def test_health_watch_ends_at_shutdown(self):
        pb2, grpc_mod = h.health_modules()
        svc = h.Service("session").start()
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

    def test_healthcheck_command_follows_server(self):
        certs = h.make_certs()
        for name in h.SERVICES:
            with self.subTest(service=name):
                svc = h.Service(name, certs=certs).start()
                check = subprocess.run([svc.binary(), "healthcheck"],
                                       env=svc.env, capture_output=True,
                                       timeout=h.CALL_TIMEOUT_S * 2)
                self.assertEqual(check.returncode, 0, check.stderr)
                self.assertEqual(svc.stop(), 0, svc.log())
                check = subprocess.run([svc.binary(), "healthcheck"],
                                       env=svc.env, capture_output=True,
                                       timeout=h.CALL_TIMEOUT_S * 2)
                self.assertNotEqual(check.returncode, 0)
                self.assertIn(b"healthcheck", check.stderr)

    def test_healthcheck_command_with_wrong_certificate_fails(self):
        certs = h.make_certs()
        svc = h.Service("kms", certs=certs).start()
        try:
            env = dict(svc.env)
            env["CERROJO_KMS_TLS_CERT"] = os.path.join(certs, "other.pem")
            env["CERROJO_KMS_TLS_KEY"] = os.path.join(certs, "other.key")
            check = subprocess.run([svc.binary(), "healthcheck"], env=env,
                                   capture_output=True,
                                   timeout=h.CALL_TIMEOUT_S * 2)
            self.assertNotEqual(check.returncode, 0)
        finally:
            self.assertEqual(svc.stop(), 0, svc.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
