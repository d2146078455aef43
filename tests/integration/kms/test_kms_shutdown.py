"""cerrojo-kms stopping while a handler waits in Postgres. A second
connection holds a table lock that CreateUserKey's insert waits on. After
the shutdown grace, kms cancels its Postgres statements, so the handler and
the process end soon instead of at the statement timeout, and the client
gets a reply.

Runs against the Postgres that scripts/test.sh starts (it exits 77,
reported as skipped, without CERROJO_TEST_PG_ADMIN_DSN). Run with
/usr/bin/python3 (python3-grpcio).
"""

import concurrent.futures
import os
import subprocess
import time
import unittest

import grpc

# kms_test_stack puts the rpc and auth harnesses on the import path.
import kms_test_stack as ks
import rpc_harness as h  # noqa: E402

GRACE_SECONDS = 1
# kms's Postgres statement timeout, CJ_DB_DEFAULT_STATEMENT_TIMEOUT_MS in
# common/db.h. Without the cancel, the handler and the shutdown would end
# only when it fires.
STATEMENT_TIMEOUT_MS = 5000
# How long the second connection holds its lock unless cancelled, well
# past the statement timeout.
LOCK_SECONDS = 3 * STATEMENT_TIMEOUT_MS // 1000
# application_name of the lock holder, to find and cancel its backend.
LOCKER_NAME = "cj-kms-shutdown-lock"
READY_WAIT_S = 30
# Maximum wait for the handler's insert to wait on the lock.
BLOCK_WAIT_S = 10
POLL_S = 0.1
# The call's own deadline, past the statement timeout, so that only the
# server can end it early.
CALL_DEADLINE_S = 60


class ShutdownCancelsStatements(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.admin_dsn = ks.admin_dsn_or_skip("kms shutdown test")
        cls.kms = ks.KmsOnOwnDatabase(cls.admin_dsn, {
            "CERROJO_KMS_SETTLE": "0",
            "CERROJO_KMS_GRPC_SHUTDOWN_GRACE": "%ds" % GRACE_SECONDS,
        })
        # The stubs exist once KmsOnOwnDatabase has loaded them.
        from cerrojo.v1 import kms_pb2
        cls.kms_pb2 = kms_pb2
        cls.svc = cls.kms.svc
        cls.dsn = cls.kms.dsn
        cls.database = cls.kms.database
        cls.chan = cls.kms.chan
        cls.create = cls.chan.unary_unary(
            "/cerrojo.v1.Kms/CreateUserKey",
            request_serializer=cls.kms_pb2.CreateUserKeyRequest
            .SerializeToString,
            response_deserializer=cls.kms_pb2.CreateUserKeyResponse
            .FromString)

    @classmethod
    def tearDownClass(cls):
        cls.kms.stop()

    def request(self, user_id):
        return self.kms_pb2.CreateUserKeyRequest(user_id=user_id)

    def wait_ready(self):
        """Waits until CreateUserKey succeeds: kms creates its first keys
        at its first start."""
        deadline = time.monotonic() + READY_WAIT_S
        while True:
            try:
                return self.create(self.request("warm-up"),
                                   timeout=h.CALL_TIMEOUT_S)
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(POLL_S)

    def lock_table(self):
        """Starts psql with an exclusive lock on kms.data_key_versions, and
        waits until psql has the lock."""
        env = dict(os.environ, PGAPPNAME=LOCKER_NAME)
        locker = subprocess.Popen(
            ["psql", self.dsn, "-Atq", "-v", "ON_ERROR_STOP=1", "-c",
             "BEGIN; LOCK TABLE kms.data_key_versions IN ACCESS EXCLUSIVE "
             "MODE; SELECT pg_sleep(%d); COMMIT;" % LOCK_SECONDS],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(locker.wait)
        self.addCleanup(ks.psql, self.admin_dsn,
                        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = '%s'" % LOCKER_NAME)
        self.assertTrue(self.wait_for_backends(
            "application_name = '%s' AND wait_event = 'PgSleep'"
            % LOCKER_NAME), "psql did not take the lock")

    def wait_for_backends(self, condition):
        """Returns whether a backend of the test database matches
        `condition` within BLOCK_WAIT_S."""
        query = ("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                 "'%s' AND %s" % (self.database, condition))
        deadline = time.monotonic() + BLOCK_WAIT_S
        while time.monotonic() < deadline:
            if int(ks.psql(self.admin_dsn, query)) > 0:
                return True
            time.sleep(POLL_S)
        return False

    def test_shutdown_cancels_statement_waiting_on_lock(self):
        self.wait_ready()
        self.lock_table()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            call = pool.submit(self.create, self.request("blocked-user"),
                               timeout=CALL_DEADLINE_S)
            self.assertTrue(self.wait_for_backends(
                "usename = 'cerrojo_kms' AND wait_event_type = 'Lock'"),
                "CreateUserKey did not wait on the lock")
            # The grace is 1 s, so half the statement timeout leaves a wide
            # margin on either side.
            log = h.stop_with_blocked_call(self, self.svc, call,
                                           STATEMENT_TIMEOUT_MS / 2)
        # The grace hook cancels first. kms cancels once more at every
        # shutdown, for its background work.
        cancelled = h.log_entries(self.svc, "db.pool_cancelled")
        self.assertTrue(cancelled, log)
        self.assertGreaterEqual(cancelled[0]["cancel_requests"], 1)
        # The handler itself returned after its insert failed.
        self.assertEqual(
            len(h.log_entries(self.svc, "kms.note_data_key_failed")), 1, log)


if __name__ == "__main__":
    unittest.main(verbosity=2)
