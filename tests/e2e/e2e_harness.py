"""The end-to-end stack: kms, session, auth and the gateway started from
build/bin on free loopback ports over the Postgres and Redis that
scripts/test.sh starts, driven through the `cerrojo` command-line client
exactly as a user would drive it.

Run with /usr/bin/python3. Without the test Postgres and Redis the tests
exit 77 (skipped); under CI=true they fail instead.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration", "rpc"))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration", "auth"))

import auth_harness as ah  # noqa: E402
import rpc_harness as h  # noqa: E402

GATEWAY_READY_TIMEOUT_S = 30
# Maximum starts of the gateway, each on new ports, when another process
# took one of its ports between free_port() and the gateway's bind.
GATEWAY_START_ATTEMPTS = 3
CLIENT_TIMEOUT_S = 60


def require_env():
    """Exits 77, or 1 under CI=true, when the test stores are missing."""
    if (os.environ.get("CERROJO_TEST_PG_ADMIN_DSN")
            and os.environ.get("CERROJO_TEST_REDIS_PORT")):
        return
    if os.environ.get("CI") == "true":
        print("e2e: FAILED: CERROJO_TEST_PG_ADMIN_DSN and "
              "CERROJO_TEST_REDIS_PORT are not set under CI=true; run the "
              "tests through scripts/test.sh (make test)")
        sys.exit(1)
    print("\n*** e2e tests SKIPPED: run them through scripts/test.sh "
          "(make test), which starts Postgres and Redis ***\n")
    sys.exit(ah.SKIP)


class GatewayExited(RuntimeError):
    """The gateway process stopped before /healthz returned 200."""


class Gateway:
    """cerrojo-gateway on free ports, pointed at a Stack's services."""

    def __init__(self, stack, extra_env=None):
        self.stack = stack
        self.env = dict(os.environ)
        self.env.update({
            "CERROJO_PROFILE": "dev",
            "CERROJO_ENV_FILE": os.devnull,
            "CERROJO_GRPC_PLAINTEXT": "true",
            "CERROJO_GATEWAY_HOST": "127.0.0.1",
            "CERROJO_REDIS_HOST": stack.redis_host,
            "CERROJO_REDIS_PORT": str(stack.redis_port),
            "CERROJO_REDIS_ADDR": "%s:%s" % (stack.redis_host,
                                             stack.redis_port),
            # The tests send many requests from one address.
            "CERROJO_GATEWAY_RATE_PER_MINUTE": "100000",
            "CERROJO_GATEWAY_RATE_BURST": "10000",
            "CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE": "100000",
            "CERROJO_GATEWAY_HANDSHAKE_RATE_BURST": "10000",
            "CERROJO_GATEWAY_SESSION_RATE_PER_MINUTE": "100000",
            "CERROJO_GATEWAY_SESSION_RATE_BURST": "10000",
            "CERROJO_GATEWAY_REGISTER_RATE_PER_MINUTE": "100000",
            "CERROJO_GATEWAY_REGISTER_RATE_BURST": "10000",
        })
        self.env.update(extra_env or {})
        self.use_ports(h.free_port(), h.free_port())
        self.proc = None

    def use_ports(self, port, admin_port):
        """Sets the gateway's HTTP and admin ports, and its log file."""
        self.port = port
        self.admin_port = admin_port
        self.env["CERROJO_GATEWAY_PORT"] = str(port)
        self.env["CERROJO_GATEWAY_ADMIN_PORT"] = str(admin_port)
        self.log_path = os.path.join(h.work_dir(), "gateway-%d.log" % port)
        self.url = "http://127.0.0.1:%d" % port

    def start(self):
        """Starts the gateway and waits until /healthz returns 200. A
        gateway that exits because one of its ports was taken is started
        again on new ports."""
        # The stack's services may have moved to other ports at start.
        self.env.update({
            "CERROJO_KMS_ADDR": "127.0.0.1:%d" % self.stack.kms.port,
            "CERROJO_SESSION_ADDR": "127.0.0.1:%d" % self.stack.session.port,
            "CERROJO_AUTH_ADDR": "127.0.0.1:%d" % self.stack.auth.port,
        })
        for attempt in range(1, GATEWAY_START_ATTEMPTS + 1):
            try:
                return self.start_once()
            except GatewayExited:
                if (attempt == GATEWAY_START_ATTEMPTS or
                        '"event":"gateway.listen_failed"' not in self.log()):
                    raise
                print("gateway: port %d or %d was taken, starting on other "
                      "ports" % (self.port, self.admin_port), file=sys.stderr)
                self.use_ports(h.free_port(), h.free_port())

    def start_once(self):
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [os.path.join(h.BIN_DIR, "cerrojo-gateway")], env=self.env,
            stdout=log, stderr=log)
        log.close()
        h.kill_at_exit(self.proc, "gateway")
        deadline = time.monotonic() + GATEWAY_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise GatewayExited("gateway exited with %s:\n%s" % (
                    self.proc.returncode, self.log()))
            # Until this gateway logs that it started, another process on
            # the port could be the one that returns /healthz.
            if '"event":"gateway.started"' not in self.log():
                time.sleep(0.1)
                continue
            try:
                urllib.request.urlopen(self.url + "/healthz", timeout=1)
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("gateway not ready within %d s\n%s" % (
            GATEWAY_READY_TIMEOUT_S, self.log()))

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.terminate()
        try:
            return self.proc.wait(h.STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("gateway did not stop after SIGTERM")

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()


class E2EStack(ah.Stack):
    """kms, session, auth and the gateway."""

    def __init__(self, session_env=None, gateway_env=None, auth_env=None):
        super().__init__(auth_env=auth_env)
        self.session.env.update(session_env or {})
        self.gateway = Gateway(self, gateway_env)

    def start(self):
        super().start()
        try:
            self.gateway.start()
        except BaseException:
            self.stop_after_failed_start()
            raise
        return self

    def stop(self):
        try:
            self.gateway.stop()
        finally:
            super().stop()

    def logs(self):
        return super().logs() + "\n--- gateway\n" + self.gateway.log()[-4000:]

    def restart(self, service):
        """Stops and starts one gRPC service on the same port, then waits
        until the gateway reports every dependency ready again."""
        svc = getattr(self, service)
        svc.stop()
        svc.start()
        self.wait_serving(svc)
        self.wait_gateway_ready()

    def wait_serving(self, svc):
        """Waits until a service's own health check says SERVING: session,
        for one, listens before its Redis pool is up."""
        pb2, _ = h.health_modules()
        deadline = time.monotonic() + GATEWAY_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                with svc.channel() as chan:
                    if h.health_check(chan).status == \
                            pb2.HealthCheckResponse.SERVING:
                        return
            except Exception:  # not listening yet, or not serving
                pass
            time.sleep(0.2)
        raise RuntimeError("%s not SERVING within %d s\n%s" % (
            svc.name, GATEWAY_READY_TIMEOUT_S, self.logs()))

    def wait_gateway_ready(self):
        deadline = time.monotonic() + GATEWAY_READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(self.gateway.url + "/readyz",
                                       timeout=2)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gateway not ready again within %d s\n%s" % (
            GATEWAY_READY_TIMEOUT_S, self.logs()))


class Client:
    """One `cerrojo` user with a state file of its own."""

    def __init__(self, stack, state=None):
        self.stack = stack
        self.dir = tempfile.mkdtemp(prefix="cerrojo-e2e-", dir=h.work_dir())
        self.state = state or os.path.join(self.dir, "state.json")
        self.password_file = os.path.join(self.dir, "password")

    def set_password(self, password):
        with open(self.password_file, "w") as f:
            f.write(password + "\n")

    def argv(self, *args):
        """The command line of cerrojo --json ARGS on this state file."""
        return [os.path.join(h.BIN_DIR, "cerrojo"), "--url",
                self.stack.gateway.url, "--state", self.state,
                "--json"] + list(args)

    def run(self, *args, stdin=None):
        """Runs cerrojo --json ARGS; returns (exit status, result, stderr)."""
        proc = subprocess.run(
            self.argv(*args), input=stdin, capture_output=True, text=True,
            timeout=CLIENT_TIMEOUT_S)
        result = None
        if proc.returncode == 0 and proc.stdout.strip():
            result = json.loads(proc.stdout)["result"]
        return proc.returncode, result, proc.stderr

    def ok(self, *args, stdin=None):
        """Runs a command that must succeed; returns its result."""
        status, result, err = self.run(*args, stdin=stdin)
        if status != 0:
            raise AssertionError("cerrojo %s failed (%d): %s\n%s" % (
                " ".join(args), status, err, self.stack.logs()))
        return result

    def saved_state(self):
        with open(self.state) as f:
            return json.load(f)

    def copy_state(self):
        """A second client holding a copy of this one's state file."""
        other = Client(self.stack)
        with open(self.state) as src, open(other.state, "w") as dst:
            dst.write(src.read())
        os.chmod(other.state, 0o600)
        return other
