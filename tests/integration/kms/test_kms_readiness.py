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

import time
import unittest

# kms_test_stack puts the rpc and auth harnesses on the import path.
import kms_test_stack as ks
import rpc_harness as h  # noqa: E402

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
# Time the outage test keeps the database closed after kms turned
# NOT_SERVING, in seconds: several of kms's 1 s rechecks.
REPEATED_CHECKS_S = 4
# Values of grpc.health.v1.HealthCheckResponse.ServingStatus.
SERVING = 1
NOT_SERVING = 2


class ReadinessAfterPostgresReturns(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.admin_dsn = ks.admin_dsn_or_skip("kms readiness test")
        cls.kms = ks.KmsOnOwnDatabase(cls.admin_dsn, {
            "CERROJO_KMS_RELOAD_INTERVAL": "%ds" % RELOAD_INTERVAL_S,
        })
        cls.svc = cls.kms.svc
        cls.chan = cls.kms.chan
        cls.database = cls.kms.database

    @classmethod
    def tearDownClass(cls):
        cls.kms.stop()

    def close_database(self):
        """Closes kms's database to new connections and ends the open
        ones, as a stopped Postgres would."""
        ks.psql(self.admin_dsn,
             "ALTER DATABASE %s ALLOW_CONNECTIONS false" % self.database)
        self.addCleanup(self.open_database)
        ks.psql(self.admin_dsn,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
             "WHERE datname = '%s'" % self.database)

    def open_database(self):
        ks.psql(self.admin_dsn,
             "ALTER DATABASE %s ALLOW_CONNECTIONS true" % self.database)

    def test_serving_soon_after_postgres_returns(self):
        self.assertIsNotNone(h.wait_for_health(self.chan, SERVING, READY_WAIT_S),
                             self.svc.log()[-4000:])
        self.close_database()
        self.assertIsNotNone(h.wait_for_health(self.chan, NOT_SERVING, OUTAGE_WAIT_S),
                             self.svc.log()[-4000:])
        self.assertTrue(h.log_entries(self.svc, "kms.postgres_unreachable"))
        # The database reopens right after the check that failed, so a
        # kms that waits for its next periodic check stays NOT_SERVING for
        # about RELOAD_INTERVAL_S.
        self.open_database()
        recovery_s = h.wait_for_health(self.chan, SERVING, RELOAD_INTERVAL_S * 2)
        log = self.svc.log()[-4000:]
        self.assertIsNotNone(recovery_s, log)
        self.assertLess(recovery_s, RECOVERY_BOUND_S, log)
        self.assertTrue(h.log_entries(self.svc, "kms.postgres_reachable"),
                        log)

    def test_outage_logs_health_change_once(self):
        self.assertIsNotNone(h.wait_for_health(self.chan, SERVING, READY_WAIT_S),
                             self.svc.log()[-4000:])
        before = len(not_serving_entries(self.svc))
        self.close_database()
        self.assertIsNotNone(h.wait_for_health(self.chan, NOT_SERVING, OUTAGE_WAIT_S),
                             self.svc.log()[-4000:])
        # kms checks every second while NOT_SERVING, and each check sets
        # the same status again.
        time.sleep(REPEATED_CHECKS_S)
        log = self.svc.log()[-4000:]
        self.assertEqual(len(not_serving_entries(self.svc)) - before, 1, log)
        self.open_database()
        self.assertIsNotNone(
            h.wait_for_health(self.chan, SERVING, RELOAD_INTERVAL_S * 2),
            self.svc.log()[-4000:])


def not_serving_entries(svc):
    """The rpc.health_set lines that turned the whole server NOT_SERVING."""
    return [e for e in h.log_entries(svc, "rpc.health_set")
            if e.get("name") == "" and e.get("status") == "NOT_SERVING"]


if __name__ == "__main__":
    unittest.main(verbosity=2)
