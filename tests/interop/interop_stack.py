#!/usr/bin/env python3
"""The whole cerrojo stack for the interop tests: tests/e2e's stack (kms,
session, auth and the gateway from build/bin on free loopback ports, over a
database of its own in the Postgres that scripts/test.sh starts and over
its Redis), switched to mutual TLS between the services with the
development certificates of scripts/dev-certs.sh, as in stage and prod.
The gateway speaks plain HTTP on loopback.

Run with /usr/bin/python3 (python3-grpcio). As a program it starts the
stack, runs one command with the stack's addresses in its environment,
stops the stack whatever happened, and exits with the command's status:

    interop_stack.py [--session-env NAME=VALUE]... COMMAND [ARG]...

--session-env sets a variable of cerrojo-session (CERROJO_SESSION_*), such
as a short epoch length.
The command gets CJ_GATEWAY_URL, CJ_AUTH_ADDR, CJ_KMS_ADDR,
CJ_SESSION_ADDR, CJ_CERTS_DIR (ca.pem and one .pem/.key per identity) and
CJ_GRPC_TLS=1.

Without the test Postgres and Redis, or without Node for a Node test, it
exits 77, which ctest reports as skipped. Under CI=true it fails instead.
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

import e2e_harness as e2e  # noqa: E402

ah = e2e.ah
h = e2e.h

# Seconds the command run by main() may take before it is stopped.
COMMAND_TIMEOUT_S = 240
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
# The identity each service's test channel presents under mutual TLS:
# the start-up check reads session's revocation-cache status, which only
# auth may call.
CHANNEL_IDENTITY = {"kms": "platform-service", "session": "auth",
                    "auth": "platform-service"}


def missing(what):
    """Exits 77 (skipped), or 1 under CI=true: a test dependency is
    missing."""
    if os.environ.get("CI") == "true":
        print("interop: %s; failing because CI=true" % what)
        sys.exit(1)
    print("interop: skipped: %s" % what)
    sys.exit(ah.SKIP)


def require_env():
    e2e.require_env()


def require_tool(name):
    path = shutil.which(name)
    if path is None:
        missing("%s is not installed" % name)
    return path


def tls_env(prefix, certs, identity):
    """The variables that switch one program to mutual TLS."""
    return {
        "CERROJO_GRPC_PLAINTEXT": "false",
        "CERROJO_TLS_CA": os.path.join(certs, "ca.pem"),
        prefix + "_TLS_CERT": os.path.join(certs, identity + ".pem"),
        prefix + "_TLS_KEY": os.path.join(certs, identity + ".key"),
    }


class InteropStack(e2e.E2EStack):
    """The e2e stack; mutual TLS between the programs when tls is true."""

    def __init__(self, tls=True, session_env=None):
        require_env()
        super().__init__(session_env=session_env)
        # The gateway runs from the test's folder, not the repository.
        self.gateway.env["CERROJO_GATEWAY_OPENAPI_FILE"] = os.path.join(
            h.SOURCE_DIR, "docs", "api", "openapi.json")
        self.certs = h.make_certs() if tls else None
        if self.certs is None:
            return
        for svc in (self.kms, self.session, self.auth):
            svc.env.update(tls_env(svc.prefix, self.certs, svc.name))
            svc.certs = self.certs
            svc.channel = self.channel_factory(svc)
        self.gateway.env.update(
            tls_env("CERROJO_GATEWAY", self.certs, "gateway"))

    def channel_factory(self, svc):
        def channel(identity=CHANNEL_IDENTITY[svc.name], ca="ca"):
            return h.channel(svc.port, self.certs, identity, ca)
        return channel

    def start(self):
        try:
            super().start()
            self.wait_gateway_ready()
        except Exception:
            self.stop()
            raise
        return self

    def stop(self):
        """Stops everything and drops the database. Raises when a program
        did not exit cleanly or a sanitizer reported anything."""
        problems = []
        try:
            super().stop()
        except Exception as e:  # still check every program below
            problems.append(str(e))
        for name in ("gateway", "auth", "session", "kms"):
            svc = getattr(self, name)
            if svc.proc is None:
                continue
            if svc.proc.returncode not in (0, None):
                problems.append("%s exited with %s" % (name,
                                                       svc.proc.returncode))
            log = svc.log()
            if any(m in log for m in SANITIZER_MARKERS):
                problems.append("%s: sanitizer report:\n%s" %
                                (name, log[-6000:]))
        if problems:
            raise RuntimeError("\n".join(problems))

    def environ(self):
        """Returns the variables main() passes to its command."""
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
    args = argv[1:]
    session_env = {}
    while len(args) >= 2 and args[0] == "--session-env":
        name, sep, value = args[1].partition("=")
        if not sep or not name.startswith("CERROJO_SESSION_"):
            print("interop: --session-env takes CERROJO_SESSION_NAME=VALUE, "
                  "got %r" % args[1], file=sys.stderr)
            return 2
        session_env[name] = value
        args = args[2:]
    if not args:
        print("usage: interop_stack.py [--session-env NAME=VALUE]... "
              "COMMAND [ARG]...", file=sys.stderr)
        return 2
    if args[0].endswith("run-node-test.sh"):
        require_tool("node")
        require_tool("npm")
    stack = InteropStack(session_env=session_env).start()
    rc = 1
    try:
        env = dict(os.environ)
        env.update(stack.environ())
        try:
            rc = subprocess.run(args, env=env,
                                timeout=COMMAND_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            print("interop: %s ran longer than %d s" %
                  (args[0], COMMAND_TIMEOUT_S))
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
