"""Smoke test of cerrojo-bench, run by `make test` (ctest label "bench"):
a second or so of each kind of flow against the end-to-end stack of
tests/e2e, each of which must print a result line with requests and no
errors, then bench/report.py over those results. It checks that the load
generator keeps working; it measures nothing.

Run with /usr/bin/python3 (the harness needs Debian's python3-grpcio).
"""

import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "e2e"))

import e2e_harness as e2e  # noqa: E402

BIN = os.path.join(e2e.h.BIN_DIR, "cerrojo-bench")
# Each smoke run's duration, in seconds, and its connections.
SMOKE_SECONDS = "1"
SMOKE_CONNECTIONS = "2"
RUN_TIMEOUT_S = 120

stack = None
work = None


def setUpModule():
    global stack, work
    e2e.require_env()
    work = tempfile.mkdtemp(prefix="cerrojo-bench-smoke-",
                            dir=e2e.h.work_dir())
    stack = e2e.E2EStack(gateway_env={
        "CERROJO_GATEWAY_BENCH_ROUTE": "true",
    }).start()


def tearDownModule():
    if stack is not None:
        stack.stop()


def parse_result(stdout):
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return dict(item.split("=", 1) for item in line.split()[1:])
    return None


class Smoke(unittest.TestCase):
    results = []

    def run_bench(self, label, flow, *args):
        cmd = [BIN, flow, "--connections", SMOKE_CONNECTIONS, "--seconds",
               SMOKE_SECONDS, "--label", label,
               "--series", os.path.join(work, label + ".series"),
               "--percentiles", os.path.join(work, label + ".pct"),
               "--watch", "auth=%d" % stack.auth.proc.pid] + list(args)
        # Each run gets its own TMPDIR. The run must leave it empty, so no
        # client state or lock file outlives the run.
        run_tmp = tempfile.mkdtemp(prefix="tmp-" + label + "-", dir=work)
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S,
                              env=dict(os.environ, TMPDIR=run_tmp))
        self.assertEqual(os.listdir(run_tmp), [], proc.stderr)
        result = parse_result(proc.stdout)
        self.assertIsNotNone(result, "no RESULT line from %s:\n%s\n%s" % (
            flow, proc.stdout, proc.stderr + stack.logs()))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(result["errors"], "0", proc.stdout + proc.stderr)
        self.assertGreater(int(result["requests"]), 0, proc.stdout)
        self.assertEqual(result["prepared"], SMOKE_CONNECTIONS, proc.stderr)
        self.assertIn("auth_cpu_us_per_req", result)
        Smoke.results.append(proc.stdout)
        return result

    def gateway(self):
        return ["--url", stack.gateway.url]

    def test_1_sealed_flows(self):
        self.run_bench("me-stateful", "me-stateful", *self.gateway())
        self.run_bench("me-stateless", "me-stateless", *self.gateway())
        self.run_bench("refresh.rs256", "refresh", *self.gateway())

    def test_2_plain_and_grpc_flows(self):
        self.run_bench("one-hop", "http", "--path", "/v1/bench/ping",
                       *self.gateway())
        self.run_bench("introspect", "introspect", "--grpc",
                       "127.0.0.1:%d" % stack.auth.port, *self.gateway())
        self.run_bench("grpc-health", "grpc-health", "--grpc",
                       "127.0.0.1:%d" % stack.auth.port)

    def test_3_ceilings(self):
        self.run_bench("x25519", "x25519")
        self.run_bench("sign-eddsa", "sign-eddsa")
        self.run_bench("pg-write", "pg-write", "--pg",
                       os.environ["CERROJO_TEST_PG_ADMIN_DSN"])
        result = self.run_bench("argon2", "argon2", "--requests", "2")
        self.assertEqual(result["requests"], "2")

    def test_4_rejects_non_loopback(self):
        for args in (["http", "--url", "http://192.0.2.1:80", "--path", "/"],
                     ["http", "--url", "http://user@192.0.2.1/", "--path",
                      "/"],
                     ["grpc-health", "--grpc", "192.0.2.1:50051"],
                     ["pg-write", "--pg", "host=192.0.2.1 dbname=x"],
                     ["pg-write", "--pg", "dbname=x"]):
            proc = subprocess.run([BIN] + args, capture_output=True,
                                  text=True, timeout=RUN_TIMEOUT_S)
            self.assertEqual(proc.returncode, 2, args)
            self.assertIn("loopback", proc.stderr)

    def test_5_report(self):
        results = os.path.join(work, "results.txt")
        meta = os.path.join(work, "meta.txt")
        with open(results, "w") as f:
            f.write("".join(Smoke.results))
        with open(meta, "w") as f:
            f.write("nproc=2\nseconds=1\nargon2_memory=19922944\n")
        out = os.path.join(work, "benchmarks.md")
        plots = os.path.join(work, "plots")
        os.makedirs(plots)
        subprocess.run(["/usr/bin/python3", os.path.join(HERE, "report.py"),
                        "--results", results, "--meta", meta, "--data", work,
                        "--out", out, "--plots", plots], check=True,
                       timeout=RUN_TIMEOUT_S)
        with open(out) as f:
            page = f.read()
        self.assertIn("## Targets", page)
        self.assertIn("me-stateful", page)
        self.assertTrue(os.path.exists(os.path.join(plots,
                                                    "me-stateful.png")))


if __name__ == "__main__":
    unittest.main(verbosity=2)
