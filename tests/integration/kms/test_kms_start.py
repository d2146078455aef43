"""Starts of cerrojo-kms that must fail. On a database that lacks its
migrations, the start and a key command exit 1 with a message naming
`cerrojo-migrate up`, and the log has kms.schema_missing with the missing
files, not kms.root_key_mismatch, because the root key is not at fault. A
metrics port that another process still uses after the 15 s wait ends the
start with exit 1 and a message naming CERROJO_KMS_METRICS_PORT.

Runs against the Postgres that scripts/test.sh starts (it exits 77,
reported as skipped, without CERROJO_TEST_PG_ADMIN_DSN). Run with
/usr/bin/python3 (python3-grpcio).
"""

import base64
import json
import os
import socket
import subprocess
import time
import unittest

# kms_test_stack puts the rpc and auth harnesses on the import path.
import kms_test_stack as ks
import auth_harness as ah  # noqa: E402
import rpc_harness as h  # noqa: E402

# Maximum run time of one kms process, in seconds: the metrics port wait
# (15 s) plus margin for a loaded machine.
RUN_TIMEOUT_S = 60
# kms's wait for a metrics port that another process uses, in seconds.
METRICS_BIND_WAIT_S = 15
FIRST_MIGRATION = sorted(os.listdir(os.path.join(h.SOURCE_DIR, "migrations",
                                                 "kms")))[0]


def kms_service(dsn):
    """A kms Service on dsn, with a new root key and a free metrics port."""
    return h.Service("kms", extra_env={
        "CERROJO_LOG_LEVEL": "info",
        "CERROJO_KMS_DATABASE_URL": dsn + " user=cerrojo_kms",
        "CERROJO_KMS_ROOT_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CERROJO_KMS_VAR_DIR": os.path.join(h.work_dir(), "kms"),
        "CERROJO_KMS_METRICS_PORT": "0",
    })


def run_kms(svc, *args):
    """Runs the kms binary with svc's environment until it exits."""
    return subprocess.run([svc.binary()] + list(args), env=svc.env,
                          cwd=h.work_dir(), capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)


class KmsOnUnmigratedDatabase(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.admin_dsn = ks.admin_dsn_or_skip("kms schema test")
        cls.database = ah.random_name("cj_kms_empty_")
        ks.psql(cls.admin_dsn, "CREATE DATABASE %s" % cls.database)
        cls.svc = kms_service("%s dbname=%s" % (cls.admin_dsn, cls.database))

    @classmethod
    def tearDownClass(cls):
        ks.psql(cls.admin_dsn,
                "DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.database)

    def run_kms(self, *args):
        return run_kms(self.svc, *args)

    def check_rejected(self, done):
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("cerrojo-migrate up", done.stderr)
        self.assertIn(FIRST_MIGRATION, done.stderr)
        self.assertNotIn("kms.root_key_mismatch", done.stderr)
        events = [json.loads(line) for line in done.stderr.splitlines()
                  if '"event":"kms.schema_missing"' in line]
        self.assertEqual(len(events), 1, done.stderr)
        self.assertIn(FIRST_MIGRATION, events[0]["missing"])

    def test_serve_exits_naming_migrate(self):
        self.check_rejected(self.run_kms("serve"))

    def test_rotate_exits_naming_migrate(self):
        self.check_rejected(self.run_kms("rotate", "hpke"))


class KmsWithMetricsPortTaken(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.admin_dsn = ks.admin_dsn_or_skip("kms start test")
        cls.dsn = ah.Stack.create_database(cls.admin_dsn)

    @classmethod
    def tearDownClass(cls):
        ks.psql(cls.admin_dsn, "DROP DATABASE IF EXISTS %s WITH (FORCE)" %
                cls.dsn.rsplit("dbname=", 1)[1])

    def test_taken_metrics_port_fails_start(self):
        with socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen(1)
            port = holder.getsockname()[1]
            svc = kms_service(self.dsn)
            svc.env["CERROJO_KMS_METRICS_PORT"] = str(port)
            started = time.monotonic()
            done = run_kms(svc, "serve")
            elapsed_s = time.monotonic() - started
        # The wait lets a process being replaced release the port.
        self.assertGreaterEqual(elapsed_s, METRICS_BIND_WAIT_S)
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertIn("CERROJO_KMS_METRICS_PORT", done.stderr)
        self.assertIn(str(port), done.stderr)
        self.assertIn('"event":"metrics.port_still_busy"', done.stderr)
        self.assertNotIn('"event":"kms.started"', done.stderr)


if __name__ == "__main__":
    unittest.main()
