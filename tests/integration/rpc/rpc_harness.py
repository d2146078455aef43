"""Shared pieces of the gRPC integration tests: development certificates,
Python stubs for health and reflection, starting and stopping the service
binaries on free loopback ports, and a reflection client.

Run with Debian's /usr/bin/python3, which has python3-grpcio. The tests read
CJ_BIN_DIR (build/bin) and CJ_SOURCE_DIR (the repository) from the
environment; ctest sets both.
"""

import atexit
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SOURCE_DIR = os.environ.get(
    "CJ_SOURCE_DIR",
    os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))))
BIN_DIR = os.environ.get("CJ_BIN_DIR", os.path.join(SOURCE_DIR, "build", "bin"))
GRPC_PROTO_DIR = "/usr/share/grpc-proto"

# Generated modules live under this package so that they do not shadow the
# real `grpc` package (health.proto would otherwise become grpc.health...).
STUB_PACKAGE = "cjpb"

START_TIMEOUT_S = 20  # generous: sanitizer builds start slowly
# Maximum starts of a service, each on a new port, when another process
# took its port between free_port() and the service's bind.
START_ATTEMPTS = 3
STOP_TIMEOUT_S = 20
CALL_TIMEOUT_S = 10

# The services, their environment prefixes and their gRPC service names.
SERVICES = {
    "auth": ("CERROJO_AUTH", "cerrojo.v1.Auth"),
    "kms": ("CERROJO_KMS", "cerrojo.v1.Kms"),
    "session": ("CERROJO_SESSION", "cerrojo.v1.Session"),
}
# rpc_testd (rpc_testd.c) serves its own "control" table or a service's
# table with stub handlers; it presents the certificate of that service.
TESTD_PREFIX = "CERROJO_RPC_TESTD"
CONTROL = "control"
CONTROL_SERVICE = "cerrojo.test.Control"
CONTROL_IDENTITY = "platform-service"

# Codes that show a call did not pass the framework's checks.
REJECTED_BY_FRAMEWORK = {grpc.StatusCode.PERMISSION_DENIED,
                         grpc.StatusCode.UNAUTHENTICATED,
                         grpc.StatusCode.DEADLINE_EXCEEDED}

_work_dir = None


def work_dir():
    """Returns a temporary directory removed at exit."""
    global _work_dir
    if _work_dir is None:
        _work_dir = tempfile.mkdtemp(prefix="cerrojo-rpc-test-")
        atexit.register(shutil.rmtree, _work_dir, True)
    return _work_dir


def make_certs():
    """Runs scripts/dev-certs.sh into the work directory; returns its path."""
    certs = os.path.join(work_dir(), "certs")
    subprocess.run([os.path.join(SOURCE_DIR, "scripts", "dev-certs.sh"), certs],
                   check=True, stdout=subprocess.DEVNULL)
    return certs


def load_stubs():
    """Generates the health and reflection stubs and makes them importable."""
    root = os.path.join(work_dir(), "stubs")
    if not os.path.isdir(root):
        proto_root = os.path.join(root, "proto")
        out = os.path.join(root, "gen")
        os.makedirs(out)
        names = ["grpc/health/v1/health.proto",
                 "grpc/reflection/v1alpha/reflection.proto",
                 "grpc/reflection/v1/reflection.proto"]
        for name in names:
            dest = os.path.join(proto_root, STUB_PACKAGE, name)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy(os.path.join(GRPC_PROTO_DIR, name), dest)
        subprocess.run(
            ["protoc", "-I", proto_root, "--python_out", out,
             "--grpc_python_out", out,
             "--plugin=protoc-gen-grpc_python=" + shutil.which("grpc_python_plugin")]
            + [os.path.join(proto_root, STUB_PACKAGE, n) for n in names],
            check=True)
        for dirpath, _, _ in os.walk(os.path.join(out, STUB_PACKAGE)):
            open(os.path.join(dirpath, "__init__.py"), "a").close()
        sys.path.insert(0, out)


# Range of the ports that tests pick, below Linux's default ephemeral range
# (32768 and up). The kernel takes the source port of each outgoing
# connection from that range, so a port picked there can be taken before
# the test binds it.
TEST_PORT_LOW = 20000
TEST_PORT_HIGH = 32000
TEST_PORT_TRIES = 200


# Ports free_port has returned, so that one test never gets the same port
# twice (a service's listen and metrics ports, for one).
_given_ports = set()


def free_port():
    """Returns a random port on 127.0.0.1 that is free now and that this
    process was not given before. Another process may still take it
    before the caller binds it."""
    for _ in range(TEST_PORT_TRIES):
        port = random.randrange(TEST_PORT_LOW, TEST_PORT_HIGH)
        if port in _given_ports:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _given_ports.add(port)
            return port
    raise RuntimeError("no free port found between %d and %d in %d tries" % (
        TEST_PORT_LOW, TEST_PORT_HIGH, TEST_PORT_TRIES))


def kill_at_exit(proc, name):
    """Kills proc when the test process exits, if it still runs then. A
    test that stops its services never needs this, but a set-up that fails
    halfway would otherwise leave them running after the test, on the
    Postgres and Redis that later tests share."""
    def kill_if_running():
        if proc.poll() is None:
            print("%s (pid %d) was still running at exit; killed"
                  % (name, proc.pid), file=sys.stderr)
            proc.kill()
            proc.wait()
    atexit.register(kill_if_running)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def log_entries(svc, event):
    """Returns the JSON log entries of `event` in svc's log."""
    marker = '"event":"%s"' % event
    return [json.loads(line) for line in svc.log().splitlines()
            if marker in line]


def stop_with_blocked_call(test, svc, call, bound_ms):
    """Stops svc while `call` (a future) waits in one of its handlers, and
    checks that svc exits 0 within bound_ms, past its grace, and that the
    call ends with UNAVAILABLE. Returns the tail of svc's log."""
    started = time.monotonic()
    status = svc.stop()
    stop_seconds = time.monotonic() - started
    with test.assertRaises(grpc.RpcError) as caught:
        call.result()
    log = svc.log()[-6000:]
    test.assertEqual(status, 0, log)
    # gRPC cancels the calls left after the grace with UNAVAILABLE, so the
    # client sees that code whichever reply goes out first.
    test.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE,
                     caught.exception.details())
    done = log_entries(svc, "rpc.shutdown_done")
    test.assertEqual(len(done), 1, log)
    test.assertFalse(done[0]["graceful"])
    test.assertLess(done[0]["duration_ms"], bound_ms, log)
    test.assertLess(stop_seconds, bound_ms / 1000, log)
    return log


class OwnRedis:
    """A Redis of one test's own, started by scripts/redis.sh on a free
    port, that the test may pause with SIGSTOP without touching the Redis
    other tests share."""

    def __init__(self, name):
        self.dir = os.path.join(work_dir(), name)
        self.port = free_port()
        self.pid = None

    def _script(self, action):
        subprocess.run([os.path.join(SOURCE_DIR, "scripts", "redis.sh"),
                        action, self.dir, str(self.port)],
                       check=True, stdout=subprocess.DEVNULL)

    def start(self):
        self._script("start")
        with open(os.path.join(self.dir, "redis.pid")) as f:
            self.pid = int(f.read().strip())
        return self

    def pause(self):
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self):
        os.kill(self.pid, signal.SIGCONT)

    def stop(self):
        # SIGCONT first, because a stopped Redis cannot handle SIGTERM.
        self.resume()
        self._script("stop")


def channel(port, certs=None, identity=None, ca="ca"):
    """Opens a channel to 127.0.0.1:port: plaintext without `certs`, else
    TLS trusting `ca` and presenting `identity`'s certificate (none when
    identity is None)."""
    target = "127.0.0.1:%d" % port
    if certs is None:
        return grpc.insecure_channel(target)
    key = read(os.path.join(certs, identity + ".key")) if identity else None
    cert = read(os.path.join(certs, identity + ".pem")) if identity else None
    creds = grpc.ssl_channel_credentials(
        read(os.path.join(certs, ca + ".pem")), key, cert)
    return grpc.secure_channel(target, creds)


class ServiceExited(RuntimeError):
    """A server process stopped before it listened."""


class Service:
    """One server process on a free port: the service binary `name` ("kms",
    "session" or "auth"), or with testd=True rpc_testd serving that
    service's method table with stub handlers. The name "control" always
    means rpc_testd's own table."""

    def __init__(self, name, certs=None, extra_env=None, testd=False):
        self.name = name
        self.real = not testd and name != CONTROL
        if name == CONTROL:
            self.grpc_name = CONTROL_SERVICE
            cert_name = CONTROL_IDENTITY
        else:
            self.grpc_name = SERVICES[name][1]
            cert_name = name
        self.prefix = SERVICES[name][0] if self.real else TESTD_PREFIX
        self.certs = certs
        self.started_once = False

        self.env = dict(os.environ)
        self.env.update({
            "CERROJO_PROFILE": "dev",
            "CERROJO_ENV_FILE": os.devnull,
            TESTD_PREFIX + "_TABLE": name,
        })
        if certs is None:
            self.env["CERROJO_GRPC_PLAINTEXT"] = "true"
        else:
            self.env.update({
                "CERROJO_GRPC_PLAINTEXT": "false",
                "CERROJO_TLS_CA": os.path.join(certs, "ca.pem"),
                self.prefix + "_TLS_CERT": os.path.join(certs, cert_name + ".pem"),
                self.prefix + "_TLS_KEY": os.path.join(certs, cert_name + ".key"),
            })
        self.env.update(extra_env or {})
        self.use_port(free_port())
        self.proc = None

    def use_port(self, port):
        """Sets the port the service listens on, and its log file."""
        self.port = port
        self.env[self.prefix + "_LISTEN"] = "127.0.0.1:%d" % port
        self.log_path = os.path.join(work_dir(),
                                     "%s-%d.log" % (self.name, port))

    def binary(self):
        if self.real:
            return os.path.join(BIN_DIR, "cerrojo-" + self.name)
        return os.path.join(BIN_DIR, "rpc_testd")

    def start(self):
        """Starts the process and waits until it listens; raises
        ServiceExited when it stops first. A first start that finds its
        port taken by another process is retried on a new port. A restart
        keeps its port, because callers already use it."""
        attempts = 1 if self.started_once else START_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                self.start_once()
                break
            except ServiceExited:
                if (attempt == attempts or
                        '"event":"rpc.bind_failed"' not in self.log()):
                    raise
                print("%s: port %d was taken, starting on another port"
                      % (self.name, self.port), file=sys.stderr)
                self.use_port(free_port())
        self.started_once = True
        return self

    def start_once(self):
        log = open(self.log_path, "wb")
        # The work directory as cwd keeps dev-profile files that binaries
        # generate (var/...) out of the source tree.
        self.proc = subprocess.Popen([self.binary(), "serve"], env=self.env,
                                     stdout=log, stderr=log, cwd=work_dir())
        log.close()
        kill_at_exit(self.proc, self.name)
        self.wait_ready()

    def logs_listening(self):
        """Returns whether the process logs rpc.listening, which the gRPC
        server writes at info level once it has bound its port."""
        level = self.env.get("CERROJO_LOG_LEVEL", "info")
        return level in ("debug", "info")

    def listening_logged(self):
        marker = '"port":%d,' % self.port
        return any('"event":"rpc.listening"' in line and marker in line
                   for line in self.log().splitlines())

    def wait_ready(self):
        """Waits until the process has logged that it listens, and the port
        accepts connections. A connection alone could reach another process
        that took the port, before this one fails to bind it."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceExited("%s exited with %s at start:\n%s" % (
                    self.name, self.proc.returncode, self.log()))
            if self.logs_listening() and not self.listening_logged():
                time.sleep(0.05)
                continue
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("%s did not listen within %d s" % (
            self.name, START_TIMEOUT_S))

    def channel(self, identity=None, ca="ca"):
        return channel(self.port, self.certs, identity, ca)

    def stop(self, sig=signal.SIGTERM):
        """Signals the process and waits; returns its exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("%s did not stop within %d s after signal %d" %
                               (self.name, STOP_TIMEOUT_S, sig))

    def log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()


def reflection_stub(chan, version="v1alpha"):
    load_stubs()
    mod = __import__("%s.grpc.reflection.%s.reflection_pb2_grpc" %
                     (STUB_PACKAGE, version), fromlist=["x"])
    return mod.ServerReflectionStub(chan)


def reflection_messages(version="v1alpha"):
    load_stubs()
    return __import__("%s.grpc.reflection.%s.reflection_pb2" %
                      (STUB_PACKAGE, version), fromlist=["x"])


def reflect(chan, requests, version="v1alpha"):
    """Sends reflection requests on one stream; returns the responses."""
    stub = reflection_stub(chan, version)
    return list(stub.ServerReflectionInfo(iter(requests),
                                          timeout=CALL_TIMEOUT_S))


def health_modules():
    load_stubs()
    pb2 = __import__(STUB_PACKAGE + ".grpc.health.v1.health_pb2",
                     fromlist=["x"])
    grpc_mod = __import__(STUB_PACKAGE + ".grpc.health.v1.health_pb2_grpc",
                          fromlist=["x"])
    return pb2, grpc_mod


def health_check(chan, service=""):
    pb2, grpc_mod = health_modules()
    stub = grpc_mod.HealthStub(chan)
    return stub.Check(pb2.HealthCheckRequest(service=service),
                      timeout=CALL_TIMEOUT_S)


def wait_for_health(chan, status, seconds, poll_s=0.1):
    """Returns the seconds until the service's overall health is `status`,
    or None when it is not within `seconds`. A failed call counts as no
    status."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if health_check(chan).status == status:
                return time.monotonic() - started
        except grpc.RpcError:
            pass
        time.sleep(poll_s)
    return None


def message_class(desc):
    """Returns the Python class of a message descriptor (protobuf 3 and 4)."""
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(desc)
    return message_factory.MessageFactory(desc.file.pool).GetPrototype(desc)


def service_from_reflection(chan, service_name, version="v1alpha"):
    """Rebuilds a service's descriptors from reflection alone, as grpcurl
    does: file_containing_symbol, then each file after its dependencies."""
    msgs = reflection_messages(version)
    [resp] = reflect(chan, [msgs.ServerReflectionRequest(
        file_containing_symbol=service_name)], version)
    if resp.HasField("error_response"):
        raise LookupError(resp.error_response.error_message)
    files = {}
    for blob in resp.file_descriptor_response.file_descriptor_proto:
        fd = descriptor_pb2.FileDescriptorProto.FromString(blob)
        files[fd.name] = fd
    pool = descriptor_pool.DescriptorPool()
    added = set()

    def add(name):
        if name in added:
            return
        for dep in files[name].dependency:
            add(dep)  # KeyError here means a dependency was not sent
        pool.Add(files[name])
        added.add(name)

    for name in files:
        add(name)
    return pool.FindServiceByName(service_name)


def unary(chan, service_desc, method_name):
    """Returns a callable for a method of a reflected service, with the
    request class."""
    method = service_desc.FindMethodByName(method_name)
    req_cls = message_class(method.input_type)
    resp_cls = message_class(method.output_type)
    call = chan.unary_unary("/%s/%s" % (service_desc.full_name, method.name),
                            request_serializer=req_cls.SerializeToString,
                            response_deserializer=resp_cls.FromString)
    return call, req_cls


def call_code(fn, request, metadata=None):
    """Calls fn; returns (code, details)."""
    try:
        fn(request, timeout=CALL_TIMEOUT_S, metadata=metadata)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


def _testd_request(event, detail):
    # Hand-encoded cerrojo.v1.RecordAuditRequest: field 1 event, field 2
    # detail_json, both strings; keeps the tests free of cerrojo stubs.
    def field(number, text):
        data = text.encode()
        return bytes([number << 3 | 2, len(data)]) + data
    return field(1, event) + field(2, detail)


def stub_message(service_name, method):
    """Returns the error message of rpc_testd's stub handlers."""
    return "/%s/%s reached the test stub" % (service_name, method)


def testd_call(chan, method, event, detail, metadata=None):
    """Calls an rpc_testd method; returns (code, details)."""
    fn = chan.unary_unary("/%s/%s" % (CONTROL_SERVICE, method))
    return call_code(fn, _testd_request(event, detail), metadata)


def passed_framework(code, details):
    """True when a call got past access, context and deadline checks."""
    return code not in REJECTED_BY_FRAMEWORK and not details.startswith(
        "caller '")
