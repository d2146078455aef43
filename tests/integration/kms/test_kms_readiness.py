"""cerrojo-kms readiness when Postgres goes away and comes back. The test
takes Postgres away from kms alone: it closes kms's database to new
connections and ends kms's sessions, so the Postgres that other tests share
keeps running. Once a clock check has turned kms NOT_SERVING, kms checks
every second, so it is SERVING again soon after the database reopens,
instead of at its next periodic check.

Runs against the Postgres that scripts/test.sh starts (it exits 77,
reported as skipped, without CERROJO_TEST_PG_ADMIN_DSN). Run with
/usr/bin/python3 (python3-grpcio).
"""

import base64
import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "auth"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rpc"))

import grpc  # noqa: E402

import auth_harness as ah  # noqa: E402
import rpc_harness as h  # noqa: E402

SKIP = 77
# kms's interval between periodic checks while it is SERVING, in seconds.
# Without the faster recheck, readiness would return only at the next
# periodic check, this long after the check that failed.
RELOAD_INTERVAL_S = 10
# Maximum time from the database reopening to SERVING: the 1 s recheck
# plus margin for a slow test machine, well under RELOAD_INTERVAL_S.
RECOVERY_BOUND_S = 3
# Maximum wait for kms to notice the outage: one periodic check plus
# margin.
OUTAGE_WAIT_S = RELOAD_INTERVAL_S + 10
READY_WAIT_S = 30
POLL_S = 0.1
# Values of grpc.health.v1.HealthCheckResponse.ServingStatus.
SERVING = 1
NOT_SERVING = 2


def psql(dsn, query):
    """Runs SQL and returns its output as text."""
    return subprocess.run(["psql", dsn, "-Atq", "-v", "ON_ERROR_STOP=1",
                           "-c", query], check=True, capture_output=True,
                          text=True).stdout.strip()


class ReadinessAfterPostgresReturns(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.admin_dsn = os.environ.get("CERROJO_TEST_PG_ADMIN_DSN")
        if not cls.admin_dsn:
            print("kms readiness test skipped: CERROJO_TEST_PG_ADMIN_DSN is "
                  "not set (run scripts/test.sh)")
            sys.exit(SKIP)
        ah.load_stubs()
        dsn = ah.Stack.create_database(cls.admin_dsn)
        cls.database = dsn.rsplit("dbname=", 1)[1]
        cls.svc = h.Service("kms", certs=h.make_certs(), extra_env={
            "CERROJO_LOG_LEVEL": "info",
            "CERROJO_KMS_DATABASE_URL": dsn + " user=cerrojo_kms",
            "CERROJO_KMS_ROOT_KEY":
                base64.b64encode(os.urandom(32)).decode(),
            "CERROJO_KMS_VAR_DIR": os.path.join(h.work_dir(), "kms"),
            "CERROJO_KMS_METRICS_PORT": "0",
            "CERROJO_KMS_RELOAD_INTERVAL": "%ds" % RELOAD_INTERVAL_S,
        }).start()
        cls.chan = cls.svc.channel("auth")

    @classmethod
    def tearDownClass(cls):
        cls.chan.close()
        try:
            cls.svc.stop()
        finally:
            psql(cls.admin_dsn,
                 "DROP DATABASE IF EXISTS %s WITH (FORCE)" % cls.database)

    def health(self):
        """Returns kms's overall health status, or None when the call
        fails."""
        try:
            return h.health_check(self.chan).status
        except grpc.RpcError:
            return None

    def wait_for_health(self, status, seconds):
        """Returns the seconds until kms reports `status`, or None when it
        does not within `seconds`."""
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            if self.health() == status:
                return time.monotonic() - started
            time.sleep(POLL_S)
        return None

    def close_database(self):
        """Closes kms's database to new connections and ends the open
        ones, as a stopped Postgres would."""
        psql(self.admin_dsn,
             "ALTER DATABASE %s ALLOW_CONNECTIONS false" % self.database)
        self.addCleanup(self.open_database)
        psql(self.admin_dsn,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = '%s'" % self.database)

    def open_database(self):
        psql(self.admin_dsn,
             "ALTER DATABASE %s ALLOW_CONNECTIONS true" % self.database)

    def test_serving_soon_after_postgres_returns(self):
        self.assertIsNotNone(self.wait_for_health(SERVING, READY_WAIT_S),
                             self.svc.log()[-4000:])
        self.close_database()
        self.assertIsNotNone(self.wait_for_health(NOT_SERVING, OUTAGE_WAIT_S),
                             self.svc.log()[-4000:])
        self.assertTrue(h.log_entries(self.svc, "kms.postgres_unreachable"))
        # The database reopens right after the check that failed, so a
        # kms that waits for its next periodic check stays NOT_SERVING for
        # about RELOAD_INTERVAL_S.
        self.open_database()
        recovery_s = self.wait_for_health(SERVING, RELOAD_INTERVAL_S * 2)
        log = self.svc.log()[-4000:]
        self.assertIsNotNone(recovery_s, log)
        self.assertLess(recovery_s, RECOVERY_BOUND_S, log)
        self.assertTrue(h.log_entries(self.svc, "kms.postgres_reachable"),
                        log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
