"""Starts one cerrojo-kms on a database of its own, for the Python kms
tests that run against the Postgres scripts/test.sh starts. Run with
/usr/bin/python3 (python3-grpcio).
"""

import base64
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "auth"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rpc"))

import auth_harness as ah  # noqa: E402
import rpc_harness as h  # noqa: E402

# ctest reports this exit code as a skipped test.
SKIP = 77


def psql(dsn, query, env=None):
    """Runs SQL and returns its output as text."""
    return subprocess.run(["psql", dsn, "-Atq", "-v", "ON_ERROR_STOP=1",
                           "-c", query], check=True, capture_output=True,
                          text=True, env=env).stdout.strip()


def admin_dsn_or_skip(test_name):
    """Returns the Postgres admin DSN, or exits with SKIP when
    CERROJO_TEST_PG_ADMIN_DSN is not set."""
    admin_dsn = os.environ.get("CERROJO_TEST_PG_ADMIN_DSN")
    if not admin_dsn:
        print("%s skipped: CERROJO_TEST_PG_ADMIN_DSN is not set (run "
              "scripts/test.sh)" % test_name)
        sys.exit(SKIP)
    return admin_dsn


class KmsOnOwnDatabase:
    """One kms process with a new migrated database and root key."""

    def __init__(self, admin_dsn, extra_env):
        ah.load_stubs()
        self.admin_dsn = admin_dsn
        self.dsn = ah.Stack.create_database(admin_dsn)
        self.database = self.dsn.rsplit("dbname=", 1)[1]
        env = {
            "CERROJO_LOG_LEVEL": "info",
            "CERROJO_KMS_DATABASE_URL": self.dsn + " user=cerrojo_kms",
            "CERROJO_KMS_ROOT_KEY":
                base64.b64encode(os.urandom(32)).decode(),
            "CERROJO_KMS_VAR_DIR": os.path.join(h.work_dir(), "kms"),
            "CERROJO_KMS_METRICS_PORT": "0",
        }
        env.update(extra_env)
        try:
            self.svc = h.Service("kms", certs=h.make_certs(),
                                 extra_env=env).start()
        except BaseException:
            self.drop_database()
            raise
        self.chan = self.svc.channel("auth")

    def drop_database(self):
        psql(self.admin_dsn,
             "DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.database)

    def stop(self):
        """Stops kms and drops its database."""
        self.chan.close()
        try:
            self.svc.stop()
        finally:
            self.drop_database()
