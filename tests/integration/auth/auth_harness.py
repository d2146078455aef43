"""The stack that the auth integration tests run against: kms, session and
auth started from build/bin on free loopback ports (plaintext gRPC, dev
profile), over the Postgres and Redis that scripts/test.sh starts and
migrates. Also Python stubs of the cerrojo protos, SQL through psql, Redis
through redis-cli, and the auth metrics.

Run with /usr/bin/python3 (python3-grpcio). Without CERROJO_TEST_PG_ADMIN_DSN
and CERROJO_TEST_REDIS_PORT the tests exit 77, which ctest reports as
skipped.
"""

import base64
import glob
import os
import random
import shutil
import string
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rpc"))

import grpc  # noqa: E402

import rpc_harness as h  # noqa: E402

SKIP = 77
READY_TIMEOUT_S = 30
CALL_TIMEOUT_S = 20
# Argon2 settings small enough for tests; the cost is not what is tested.
TEST_ARGON2_MEMORY = "1MiB"
TEST_ARGON2_PASSES = "1"
# The throttle settings the tests rely on: free attempts per login name
# and client address, per login name from every address, and per address
# across all names.
FREE_ATTEMPTS = 5
ACCOUNT_FREE_ATTEMPTS = 8
ADDRESS_FREE_ATTEMPTS = 12

# Letters without look-alikes among themselves or digits, for random names.
NAME_LETTERS = "abcdefghjkmnpqrstuvwxyz"
# Where Debian's libfaketime package installs the library.
FAKETIME_LIBRARIES = "/usr/lib/*/faketime/libfaketime.so.1"


def require_env():
    """Returns (admin_dsn, redis_host, redis_port) or exits 77."""
    dsn = os.environ.get("CERROJO_TEST_PG_ADMIN_DSN")
    port = os.environ.get("CERROJO_TEST_REDIS_PORT")
    if not dsn or not port:
        print("auth integration tests skipped: CERROJO_TEST_PG_ADMIN_DSN and "
              "CERROJO_TEST_REDIS_PORT are not set (run scripts/test.sh)")
        sys.exit(SKIP)
    return dsn, os.environ.get("CERROJO_TEST_REDIS_HOST", "127.0.0.1"), port


def require_faketime():
    """Exits 77 (skipped) with a message on stderr when libfaketime is not
    installed, or 1 under CI=true, where a skip would hide the gap."""
    if glob.glob(FAKETIME_LIBRARIES):
        return
    print("SKIPPED: libfaketime not found at %s; install the faketime "
          "package (scripts/deps.sh)" % FAKETIME_LIBRARIES, file=sys.stderr)
    sys.exit(1 if os.environ.get("CI") == "true" else SKIP)


def faketime_env(offset):
    """The environment that runs a service with its wall clock moved by
    offset and its monotonic clock left real, so that timers keep their
    length."""
    libraries = sorted(glob.glob(FAKETIME_LIBRARIES))
    if not libraries:
        raise RuntimeError("libfaketime not found at %s; run scripts/deps.sh"
                           % FAKETIME_LIBRARIES)
    preload = os.environ.get("LD_PRELOAD")
    asan = os.environ.get("ASAN_OPTIONS")
    # Under AddressSanitizer libfaketime comes first in the preload list,
    # which ASan accepts only with verify_asan_link_order=0.
    return {
        "FAKETIME": offset,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "LD_PRELOAD": libraries[-1] + (":" + preload if preload else ""),
        "ASAN_OPTIONS": (asan + ":" if asan else "")
        + "verify_asan_link_order=0",
    }


def load_stubs():
    """Generates Python modules of the cerrojo protos; returns them."""
    out = os.path.join(h.work_dir(), "cerrojo-stubs")
    if not os.path.isdir(out):
        os.makedirs(out)
        proto_dir = os.path.join(h.SOURCE_DIR, "proto")
        names = ["cerrojo/v1/%s.proto" % n
                 for n in ("common", "kms", "session", "auth")]
        subprocess.run(
            ["protoc", "-I", proto_dir, "--python_out", out,
             "--grpc_python_out", out,
             "--plugin=protoc-gen-grpc_python=" +
             shutil.which("grpc_python_plugin")]
            + [os.path.join(proto_dir, n) for n in names], check=True)
        for sub in ("cerrojo", "cerrojo/v1"):
            open(os.path.join(out, sub, "__init__.py"), "a").close()
        sys.path.insert(0, out)
    import cerrojo.v1.auth_pb2 as auth_pb2
    import cerrojo.v1.auth_pb2_grpc as auth_grpc
    import cerrojo.v1.common_pb2 as common_pb2
    import cerrojo.v1.session_pb2 as session_pb2
    import cerrojo.v1.session_pb2_grpc as session_grpc
    return auth_pb2, auth_grpc, common_pb2, session_pb2, session_grpc


def random_name(prefix="u"):
    return prefix + "".join(random.choice(NAME_LETTERS) for _ in range(12))


# Random passwords drawn at most before one passes cracklib.
PASSWORD_DRAWS = 8
CRACKLIB_CHECK = "/usr/sbin/cracklib-check"


def cracklib_accepts(password):
    """Returns whether cracklib-check accepts the password. Without the
    tool it returns True, and the service decides."""
    if not os.path.exists(CRACKLIB_CHECK):
        return True
    out = subprocess.run([CRACKLIB_CHECK], input=password + "\n",
                         capture_output=True, text=True, check=False).stdout
    return out.rstrip().endswith(": OK")


def strong_password():
    """A password cracklib accepts: long, mixed, random. cracklib rejects
    about one such draw in 3,000 as "too simplistic/systematic" (runs such
    as "uvVW"), and a test module registers many users, so each draw
    is checked before use."""
    alphabet = string.ascii_letters + string.digits
    for _ in range(PASSWORD_DRAWS):
        password = ("Pw-" + "".join(random.choice(alphabet) for _ in range(20))
                    + "!9")
        if cracklib_accepts(password):
            break
    return password


class Stack:
    """kms, session and auth running on free ports."""

    def __init__(self, auth_env=None, kms_env_overrides=None,
                 session_env=None):
        admin_dsn, self.redis_host, self.redis_port = require_env()
        self.admin_dsn = admin_dsn
        self.dsn = self.create_database(admin_dsn)

        root_key = base64.b64encode(os.urandom(32)).decode()
        common = {
            "CERROJO_LOG_LEVEL": "info",
            "CERROJO_REDIS_HOST": self.redis_host,
            "CERROJO_REDIS_PORT": self.redis_port,
            "CERROJO_SESSION_METRICS_PORT": str(h.free_port()),
            "CERROJO_KMS_METRICS_PORT": str(h.free_port()),
        }

        kms_env = dict(common)
        kms_env.update({
            "CERROJO_KMS_DATABASE_URL": self.dsn + " user=cerrojo_kms",
            "CERROJO_KMS_ROOT_KEY": root_key,
            "CERROJO_KMS_VAR_DIR": os.path.join(h.work_dir(), "kms"),
            "CERROJO_KMS_SETTLE": "0",
            "CERROJO_KMS_RELOAD_INTERVAL": "1",
        })
        kms_env.update(kms_env_overrides or {})
        self.kms = h.Service("kms", extra_env=kms_env)
        self.kms.binary = lambda: os.environ.get(
            "CJ_KMS_BIN", os.path.join(h.BIN_DIR, "cerrojo-kms"))
        self.session = h.Service("session",
                                 extra_env=dict(common, **(session_env or {})))
        self.session.binary = lambda: os.environ.get(
            "CJ_SESSION_BIN", os.path.join(h.BIN_DIR, "cerrojo-session"))

        env = dict(common)
        env.update({
            "CERROJO_AUTH_DATABASE_URL": self.dsn + " user=cerrojo_auth",
            "CERROJO_AUTH_REDIS_HOST": self.redis_host,
            "CERROJO_AUTH_REDIS_PORT": self.redis_port,
            "CERROJO_AUTH_KMS_TARGET": "127.0.0.1:%d" % self.kms.port,
            "CERROJO_AUTH_SESSION_TARGET": "127.0.0.1:%d" % self.session.port,
            # Port 0: auth binds a free port and logs it, so no other
            # process on the machine can take it between choice and bind.
            "CERROJO_AUTH_METRICS_PORT": "0",
            "CERROJO_AUTH_ARGON2_MEMORY": TEST_ARGON2_MEMORY,
            "CERROJO_AUTH_ARGON2_PASSES": TEST_ARGON2_PASSES,
            "CERROJO_AUTH_LOGIN_FREE_ATTEMPTS": str(FREE_ATTEMPTS),
            "CERROJO_AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS":
                str(ACCOUNT_FREE_ATTEMPTS),
            "CERROJO_AUTH_LOGIN_ADDRESS_FREE_ATTEMPTS":
                str(ADDRESS_FREE_ATTEMPTS),
            "CERROJO_AUTH_CACHE_WATCH_INTERVAL": "1",
            "CERROJO_AUTH_GRPC_WORKERS": "8",
        })
        env.update(auth_env or {})
        self.auth = h.Service("auth", extra_env=env)

        (self.auth_pb2, auth_grpc, self.common_pb2, self.session_pb2,
         session_grpc) = load_stubs()
        self.auth_grpc = auth_grpc
        self.session_grpc = session_grpc
        self.channels = []
        self.auth_replicas = []

    @staticmethod
    def create_database(admin_dsn):
        """Creates and migrates a database of this stack's own, so that its
        kms root key and its rows meet no other test's; returns its DSN."""
        name = random_name("cj_auth_it_")
        subprocess.run(["psql", admin_dsn, "-Atq", "-c",
                        "CREATE DATABASE %s" % name], check=True)
        dsn = "%s dbname=%s" % (admin_dsn, name)
        env = dict(os.environ, CERROJO_ENV_FILE=os.devnull,
                   CERROJO_PROFILE="dev", CERROJO_MIGRATE_DSN=dsn,
                   CERROJO_MIGRATE_DIR=os.path.join(h.SOURCE_DIR,
                                                    "migrations"))
        subprocess.run([os.path.join(h.BIN_DIR, "cerrojo-migrate"), "up"],
                       env=env, check=True, capture_output=True)
        return dsn

    def drop_database(self):
        name = self.dsn.rsplit("dbname=", 1)[1]
        subprocess.run(["psql", self.admin_dsn, "-Atq", "-c",
                        "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name],
                       check=False, capture_output=True)

    def start(self):
        """Starts kms, session and auth. When one of them fails, stops
        those already running and raises. The caller then has no Stack to
        stop, and a process left running would keep using the shared
        Redis, where its revocation watcher sets the loaded marker from
        its own database."""
        try:
            self.kms.start()
            self.session.start()
            # kms or session may have moved to another port at start.
            self.auth.env.update({
                "CERROJO_AUTH_KMS_TARGET": "127.0.0.1:%d" % self.kms.port,
                "CERROJO_AUTH_SESSION_TARGET":
                    "127.0.0.1:%d" % self.session.port,
            })
            self.auth.start()
            chan = self.auth.channel()
            self.channels.append(chan)
            self.stub = self.auth_grpc.AuthStub(chan)
            schan = self.session.channel()
            self.channels.append(schan)
            self.session_stub = self.session_grpc.SessionStub(schan)
            self.wait_cache_loaded()
        except BaseException:
            self.stop_after_failed_start()
            raise
        return self

    def stop_after_failed_start(self):
        """Stops what a failed start left running, reporting but not
        raising its own errors, so that the start's error is the one
        raised."""
        try:
            self.stop()
        except Exception as e:
            print("stopping after a failed start: %s" % e)

    def start_auth_replica(self, extra_env=None):
        """Starts another auth over the same Postgres, Redis, kms and
        session, with extra_env on top of the first auth's environment.
        Returns its stub for call(); stop() stops it too."""
        env = dict(self.auth.env)
        env.update(extra_env or {})
        replica = h.Service("auth", extra_env=env)
        replica.start()
        self.auth_replicas.append(replica)
        chan = replica.channel()
        self.channels.append(chan)
        return self.auth_grpc.AuthStub(chan)

    def stop(self):
        """Stops every service; raises when an auth did not exit cleanly (a
        sanitizer report at exit makes its status non-zero)."""
        for chan in self.channels:
            chan.close()
        statuses = []
        for svc in self.auth_replicas + [self.auth, self.session, self.kms]:
            try:
                statuses.append((svc, svc.stop()))
            except Exception as e:  # keep stopping the others
                print("stopping %s: %s" % (svc.name, e))
        self.drop_database()
        for svc, status in statuses:
            if svc.name == "auth" and status not in (0, None):
                raise RuntimeError("auth on port %d exited with %s\n%s" % (
                    svc.port, status, svc.log()[-6000:]))

    def logs(self):
        return "\n".join("--- %s\n%s" % (s.name, s.log()[-4000:])
                         for s in (self.kms, self.session, self.auth))

    def wait_cache_loaded(self):
        """Waits until auth has loaded session's revocation cache."""
        req = self.session_pb2.GetRevocationCacheStatusRequest()
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if self.session_stub.GetRevocationCacheStatus(
                        req, timeout=CALL_TIMEOUT_S).loaded:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise RuntimeError("revocation cache not loaded in time\n" +
                           self.logs())

    # --- calls ---------------------------------------------------------

    def call(self, method, request, caller=None, timeout_s=CALL_TIMEOUT_S,
             stub=None):
        """Calls an Auth method on stub (default: the first auth); returns
        (reply, None) or (None, RpcError)."""
        caller = dict(caller or {})
        caller.setdefault("request-id", "it-" + random_name(""))
        md = []
        for key, value in caller.items():
            md.append(("cerrojo-" + key, str(value)))
        try:
            return getattr(stub or self.stub, method)(
                request, timeout=timeout_s, metadata=md), None
        except grpc.RpcError as e:
            return None, e

    def register(self, username=None, email=None, password=None,
                 secret=b"", stub=None):
        username = username or random_name()
        email = email or username + "@example.com"
        password = password or strong_password()
        reply, err = self.call("Register", self.auth_pb2.RegisterRequest(
            username=username, email=email, password=password,
            client_secret=secret), stub=stub)
        return reply, err, username, password

    def login(self, login, password, secret=b"", caller=None, stub=None):
        return self.call("Login", self.auth_pb2.LoginRequest(
            login=login, password=password, client_secret=secret), caller,
            stub=stub)

    def login_or_raise(self, login, password):
        """Logs in; returns the reply or raises the call's grpc.RpcError."""
        reply, err = self.login(login, password)
        if err is not None:
            raise err
        return reply

    def refresh(self, token, timeout_s=CALL_TIMEOUT_S):
        return self.call("Refresh",
                         self.auth_pb2.RefreshRequest(refresh_token=token),
                         timeout_s=timeout_s)

    def introspect(self, token):
        return self.call("Introspect",
                         self.auth_pb2.IntrospectRequest(token=token))

    def caller_for(self, tokens, channel="stateless"):
        """The caller context the gateway would send for a token set."""
        info = self.introspect(tokens.access_token)[0]
        ctx = {"user-id": tokens.user_id, "channel": channel,
               "client-ip": "198.51.100.7", "user-agent": "itest/1.0"}
        if info is not None and info.active:
            ctx["token-id"] = info.jti
            ctx["token-expires-at"] = info.exp
            if info.sid:
                ctx["session-id"] = info.sid
        return ctx

    # --- stores and metrics -------------------------------------------

    def sql(self, query):
        """Runs SQL as the admin role; returns rows of '|'-separated text."""
        out = subprocess.run(["psql", self.dsn, "-At", "-v", "ON_ERROR_STOP=1",
                              "-c", query], check=True, capture_output=True,
                             text=True).stdout
        return [line.split("|") for line in out.splitlines() if line]

    def sql_error(self, query):
        """Runs SQL expected to fail; returns its stderr."""
        res = subprocess.run(["psql", self.dsn, "-At", "-v",
                              "ON_ERROR_STOP=1", "-c", query],
                             capture_output=True, text=True)
        return res.returncode, res.stderr

    def redis(self, *args):
        return subprocess.run(["redis-cli", "-h", self.redis_host, "-p",
                               self.redis_port] + list(args), check=True,
                              capture_output=True, text=True).stdout.strip()

    def metrics_port(self):
        """Returns the metrics port auth logged at its latest start."""
        started = h.log_entries(self.auth, "metrics.listening")
        if not started:
            raise RuntimeError("auth logged no metrics.listening\n"
                               + self.auth.log()[-4000:])
        return started[-1]["port"]

    def metric(self, name):
        """Sum of every series of a metric family on auth's metrics port."""
        text = urllib.request.urlopen(
            "http://127.0.0.1:%d/metrics" % self.metrics_port(),
            timeout=CALL_TIMEOUT_S).read().decode()
        total = 0.0
        for line in text.splitlines():
            if line.startswith(name + " ") or line.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def run_kms_command(self, *args):
        """Runs `cerrojo-kms ARGS` with kms's environment."""
        return subprocess.run([self.kms.binary()] + list(args),
                              env=self.kms.env, capture_output=True,
                              text=True, timeout=READY_TIMEOUT_S)

    def restart_auth(self):
        """Stops and starts auth on the same port, as after a crash."""
        self.auth.stop()
        self.auth.start()

    def run_auth_command(self, *args):
        """Runs `cerrojo-auth ARGS` with auth's environment."""
        return subprocess.run([self.auth.binary()] + list(args),
                              env=self.auth.env,
                              capture_output=True, text=True,
                              timeout=READY_TIMEOUT_S)
