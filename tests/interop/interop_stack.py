#!/usr/bin/env python3
"""The whole cerrojo stack for the interop tests: kms, session, auth and the
gateway from build/bin on free loopback ports, over a database of its own in
the Postgres that scripts/test.sh starts and over its Redis. The gRPC
services talk mutual TLS with the development certificates of
scripts/dev-certs.sh (the production-like profile); the gateway speaks plain
HTTP on loopback.

Reuses the integration helpers: rpc_harness (certificates, starting a
service, free ports) and auth_harness (the test database and its
migrations, test settings). Run with /usr/bin/python3 (python3-grpcio).

As a program it starts the stack, runs one command with the stack's
addresses in its environment, stops the stack whatever happened, and exits
with the command's status:

    interop_stack.py COMMAND [ARG]...

The command gets CJ_GATEWAY_URL, CJ_AUTH_ADDR, CJ_KMS_ADDR,
CJ_SESSION_ADDR, CJ_CERTS_DIR (ca.pem and one .pem/.key per identity) and
CJ_GRPC_TLS=1.

Without the test Postgres and Redis (or without a tool a test needs) it
exits 77, which ctest reports as skipped; under CI=true it fails instead.
"""

import base64
import os
import shutil
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")
sys.path.insert(0, os.path.join(INTEGRATION, "rpc"))
sys.path.insert(0, os.path.join(INTEGRATION, "auth"))

import auth_harness as ah  # noqa: E402
import rpc_harness as h  # noqa: E402

SKIP = 77
READY_TIMEOUT_S = 30
# Seconds the command run by main() may take before it is stopped.
COMMAND_TIMEOUT_S = 240
# Per-IP limits high enough that the tests never meet them.
TEST_RATE_PER_MINUTE = "100000"
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


def missing(what):
    """Skips (77) or, under CI=true, fails: something the test needs is
    absent."""
    if os.environ.get("CI") == "true":
        print("interop: %s; failing because CI=true" % what)
        sys.exit(1)
    print("interop: skipped: %s" % what)
    sys.exit(SKIP)


def require_env():
    if not os.environ.get("CERROJO_TEST_PG_ADMIN_DSN") or \
            not os.environ.get("CERROJO_TEST_REDIS_PORT"):
        missing("CERROJO_TEST_PG_ADMIN_DSN and CERROJO_TEST_REDIS_PORT are "
                "not set (run scripts/test.sh)")
    return ah.require_env()


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        missing("%s is not installed" % name)
    return path


class Gateway:
    """cerrojo-gateway on free ports, calling the three services."""

    def __init__(self, env):
        self.port = h.free_port()
        self.admin_port = h.free_port()
        self.env = dict(os.environ)
        self.env.update(env)
        self.env.update({
            "CERROJO_PROFILE": "dev",
            "CERROJO_ENV_FILE": os.devnull,
            "CERROJO_GATEWAY_HOST": "127.0.0.1",
            "CERROJO_GATEWAY_PORT": str(self.port),
            "CERROJO_GATEWAY_ADMIN_PORT": str(self.admin_port),
            "CERROJO_GATEWAY_RATE_PER_MINUTE": TEST_RATE_PER_MINUTE,
            "CERROJO_GATEWAY_RATE_BURST": TEST_RATE_PER_MINUTE,
            "CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE": TEST_RATE_PER_MINUTE,
            "CERROJO_GATEWAY_HANDSHAKE_RATE_BURST": TEST_RATE_PER_MINUTE,
            "CERROJO_GATEWAY_OPENAPI_FILE": os.path.join(
                h.SOURCE_DIR, "docs", "api", "openapi.json"),
        })
        self.log_path = os.path.join(h.work_dir(),
                                     "gateway-%d.log" % self.port)
        self.proc = None
        self.url = "http://127.0.0.1:%d" % self.port

    def start(self):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [os.path.join(h.BIN_DIR, "cerrojo-gateway")], env=self.env,
            stdout=log, stderr=log)
        log.close()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("gateway exited with %s at start:\n%s" %
                                   (self.proc.returncode, self.log()))
            try:
                with urllib.request.urlopen(self.url + "/readyz",
                                            timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gateway not ready within %d s:\n%s" %
                           (READY_TIMEOUT_S, self.log()[-4000:]))

    def stop(self):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(h.STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("gateway did not stop within %d s" %
                               h.STOP_TIMEOUT_S)

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()


class InteropStack:
    """kms, session, auth and gateway; mutual TLS between them when tls."""

    def __init__(self, tls=True):
        admin_dsn, redis_host, redis_port = require_env()
        self.admin_dsn = admin_dsn
        self.dsn = ah.Stack.create_database(admin_dsn)
        self.certs = h.make_certs() if tls else None
        common = {
            "CERROJO_LOG_LEVEL": "info",
            "CERROJO_REDIS_HOST": redis_host,
            "CERROJO_REDIS_PORT": redis_port,
        }
        kms_env = dict(common)
        kms_env.update({
            "CERROJO_KMS_DATABASE_URL": self.dsn + " user=cerrojo_kms",
            "CERROJO_KMS_ROOT_KEY":
                base64.b64encode(os.urandom(32)).decode(),
            "CERROJO_KMS_VAR_DIR": os.path.join(h.work_dir(), "kms"),
            "CERROJO_KMS_SETTLE": "0",
            "CERROJO_KMS_METRICS_PORT": str(h.free_port()),
        })
        session_env = dict(common)
        session_env["CERROJO_SESSION_METRICS_PORT"] = str(h.free_port())
        self.kms = h.Service("kms", certs=self.certs, extra_env=kms_env)
        self.session = h.Service("session", certs=self.certs,
                                 extra_env=session_env)
        auth_env = dict(common)
        auth_env.update({
            "CERROJO_AUTH_DATABASE_URL": self.dsn + " user=cerrojo_auth",
            "CERROJO_AUTH_REDIS_HOST": redis_host,
            "CERROJO_AUTH_REDIS_PORT": redis_port,
            "CERROJO_AUTH_KMS_TARGET": "127.0.0.1:%d" % self.kms.port,
            "CERROJO_AUTH_SESSION_TARGET":
                "127.0.0.1:%d" % self.session.port,
            "CERROJO_AUTH_METRICS_PORT": str(h.free_port()),
            "CERROJO_AUTH_ARGON2_MEMORY": ah.TEST_ARGON2_MEMORY,
            "CERROJO_AUTH_ARGON2_PASSES": ah.TEST_ARGON2_PASSES,
            "CERROJO_AUTH_CACHE_WATCH_INTERVAL": "1",
        })
        self.auth = h.Service("auth", certs=self.certs, extra_env=auth_env)
        gw_env = {
            "CERROJO_KMS_ADDR": "127.0.0.1:%d" % self.kms.port,
            "CERROJO_SESSION_ADDR": "127.0.0.1:%d" % self.session.port,
            "CERROJO_AUTH_ADDR": "127.0.0.1:%d" % self.auth.port,
            "CERROJO_REDIS_ADDR": "%s:%s" % (redis_host, redis_port),
        }
        if self.certs is None:
            gw_env["CERROJO_GRPC_PLAINTEXT"] = "true"
        else:
            gw_env.update({
                "CERROJO_GRPC_PLAINTEXT": "false",
                "CERROJO_TLS_CA": os.path.join(self.certs, "ca.pem"),
                "CERROJO_GATEWAY_TLS_CERT":
                    os.path.join(self.certs, "gateway.pem"),
                "CERROJO_GATEWAY_TLS_KEY":
                    os.path.join(self.certs, "gateway.key"),
            })
        self.gateway = Gateway(gw_env)

    def start(self):
        try:
            self.kms.start()
            self.session.start()
            self.auth.start()
            self.gateway.start()
        except Exception:
            self.stop()
            raise
        return self

    def services(self):
        return (self.gateway, self.auth, self.session, self.kms)

    def stop(self):
        """Stops everything and drops the database; raises when a service
        did not exit cleanly or a sanitizer reported anything."""
        problems = []
        for svc in self.services():
            name = getattr(svc, "name", "gateway")
            try:
                status = svc.stop()
            except Exception as e:  # keep stopping the others
                problems.append("%s: %s" % (name, e))
                continue
            if status not in (0, None):
                problems.append("%s exited with %s" % (name, status))
            if svc.proc is not None:
                log = svc.log()
                if any(m in log for m in SANITIZER_MARKERS):
                    problems.append("%s: sanitizer report:\n%s" %
                                    (name, log[-6000:]))
        subprocess.run(["psql", self.admin_dsn, "-Atq", "-c",
                        "DROP DATABASE IF EXISTS %s WITH (FORCE)" %
                        self.dsn.rsplit("dbname=", 1)[1]],
                       check=False, capture_output=True)
        if problems:
            raise RuntimeError("\n".join(problems))

    def logs(self):
        parts = []
        for svc in self.services():
            if svc.proc is not None:
                parts.append("--- %s\n%s" % (getattr(svc, "name", "gateway"),
                                             svc.log()[-4000:]))
        return "\n".join(parts)

    def environ(self):
        """The variables main() passes to its command."""
        env = {
            "CJ_GATEWAY_URL": self.gateway.url,
            "CJ_AUTH_ADDR": "127.0.0.1:%d" % self.auth.port,
            "CJ_KMS_ADDR": "127.0.0.1:%d" % self.kms.port,
            "CJ_SESSION_ADDR": "127.0.0.1:%d" % self.session.port,
            "CJ_GRPC_TLS": "1" if self.certs else "0",
        }
        if self.certs:
            env["CJ_CERTS_DIR"] = self.certs
        return env


def main(argv):
    if len(argv) < 2:
        print("usage: interop_stack.py COMMAND [ARG]...", file=sys.stderr)
        return 2
    if argv[1].endswith("run-node-test.sh"):
        require_tool("node")
        require_tool("npm")
    stack = InteropStack().start()
    rc = 1
    try:
        env = dict(os.environ)
        env.update(stack.environ())
        try:
            rc = subprocess.run(argv[1:], env=env,
                                timeout=COMMAND_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            print("interop: %s ran longer than %d s" %
                  (argv[1], COMMAND_TIMEOUT_S))
            rc = 1
        if rc != 0:
            print(stack.logs())
    finally:
        try:
            stack.stop()
        except RuntimeError as e:
            print("interop: stack did not stop cleanly: %s" % e)
            rc = rc or 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
