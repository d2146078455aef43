"""cerrojo-session over gRPC with mutual TLS: the access rule of every RPC,
sessions opened by a client written here from the documented key schedule,
the revocation cache, TTLs after 500 concurrent creations, and Redis being
flushed, stopped and restarted. The test starts its own Redis on a free
port, so the shared one is left alone.

Run with /usr/bin/python3 (python3-grpcio, python3-cryptography).
"""

import base64
import concurrent.futures
import os
import secrets
import struct
import subprocess
import sys
import time
import unittest
import urllib.request

import grpc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF, HKDFExpand

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "rpc"))
import rpc_harness as h  # noqa: E402

SERVICE = "cerrojo.v1.Session"
IDENTITIES = ["gateway", "auth", "kms", "session", "platform-service"]
ACCESS = {
    "CreateSession": {"gateway", "auth"}, "OpenRequest": {"gateway"},
    "BindUser": {"auth"}, "DeleteSession": {"auth"},
    "DeleteUserSessions": {"auth"}, "RevokeToken": {"auth"},
    "RevokeUser": {"auth"}, "IsRevoked": {"gateway", "auth"},
    "GetRevocationCacheStatus": {"auth"}, "LoadRevocations": {"auth"},
}
EPOCH_SECONDS = 2
CONCURRENT_CREATES = 500
CREATE_WORKERS = 16
HEALTH_WAIT_S = 10
# How far ahead of session's clock a user revocation time may lie, in
# seconds (SESS_REVOKED_AT_AHEAD_MAX_S in sess_rpc.c).
REVOKED_AT_AHEAD_MAX_S = 300
# CERROJO_SESSION_MAX_PER_USER's default, which this service runs with.
DEFAULT_MAX_PER_USER = 50
# How far before now the first bind time that a limit test passes lies, in
# ms. Its DEFAULT_MAX_PER_USER binds, a second apart, end before now.
BIND_BASE_AGO_MS = 120000

# The stateful key schedule (HKDF-SHA256 labels of the crypto library).
FIRST_LABEL = b"cerrojo epoch key v1"
NEXT_LABEL = b"cerrojo epoch ratchet v1"
C2S_LABEL = b"cerrojo client-to-server key v1"
S2C_LABEL = b"cerrojo server-to-client key v1"
RESPONSE_LABEL = b"cerrojo response key v1"
VERSION = 1


def expand(prk, info):
    return HKDFExpand(hashes.SHA256(), 32, info).derive(prk)


class Client:
    """One stateful session on the client side."""

    def __init__(self, info, secret):
        self.info = info
        self.sid = info.session_id.encode()
        self.secret = secret

    def epoch_key(self, epoch):
        key = HKDF(hashes.SHA256(), 32, self.sid, FIRST_LABEL).derive(
            self.secret)
        for _ in range(epoch):
            key = expand(key, NEXT_LABEL)
        return key

    def aad(self, epoch, seq, method=b"POST", path=b"/v1/me"):
        return (struct.pack(">BH", VERSION, len(self.sid)) + self.sid +
                struct.pack(">IQ", epoch, seq) +
                struct.pack(">H", len(method)) + method +
                struct.pack(">H", len(path)) + path)

    def seal(self, epoch, seq, body):
        """Returns (aad, ciphertext) of a request."""
        c2s = expand(self.epoch_key(epoch), C2S_LABEL)
        plaintext = struct.pack(">QH", int(time.time() * 1000), 0) + body
        nonce = struct.pack(">IQ", epoch, seq)
        aad = self.aad(epoch, seq)
        return aad, AESGCM(c2s).encrypt(nonce, plaintext, aad)

    def current_epoch(self):
        """The epoch by this machine's clock, which the server shares."""
        now = int(time.time() * 1000)
        return (now - self.info.created_at_ms) // (EPOCH_SECONDS * 1000)

    def response_key(self, epoch, seq):
        s2c = expand(self.epoch_key(epoch), S2C_LABEL)
        return expand(s2c, RESPONSE_LABEL + struct.pack(">Q", seq))


def redis_cli(port, *args):
    out = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port)] +
                         list(args), check=True, capture_output=True)
    return out.stdout.decode().strip()


class SessionRpc(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        h.load_stubs()
        cls.certs = h.make_certs()
        cls.redis_dir = os.path.join(h.work_dir(), "redis")
        cls.redis_port = h.free_port()
        cls.metrics_port = h.free_port()
        cls.redis("start")
        key = base64.b64encode(secrets.token_bytes(32)).decode()
        cls.svc = h.Service("session", certs=cls.certs, extra_env={
            "CERROJO_REDIS_HOST": "127.0.0.1",
            "CERROJO_REDIS_PORT": str(cls.redis_port),
            "CERROJO_SESSION_KEY": key,
            "CERROJO_SESSION_EPOCH_SECONDS": str(EPOCH_SECONDS),
            "CERROJO_SESSION_GRACE_SECONDS": "1",
            "CERROJO_CLOCK_LEEWAY_SECONDS": "1",
            "CERROJO_SESSION_METRICS_PORT": str(cls.metrics_port),
        }).start()
        cls.channels = {i: cls.svc.channel(i) for i in IDENTITIES}
        cls.desc = h.service_from_reflection(cls.channels["gateway"], SERVICE)

    @classmethod
    def tearDownClass(cls):
        for chan in cls.channels.values():
            chan.close()
        status = cls.svc.stop()
        cls.redis("stop")
        assert status == 0, "session exited with %s:\n%s" % (status,
                                                             cls.svc.log())

    @classmethod
    def redis(cls, action):
        subprocess.run([os.path.join(h.SOURCE_DIR, "scripts", "redis.sh"),
                        action, cls.redis_dir, str(cls.redis_port)],
                       check=True, stdout=subprocess.DEVNULL)

    def rpc(self, identity, method, **fields):
        """Calls method as identity; returns the response."""
        fn, req_cls = h.unary(self.channels[identity], self.desc, method)
        return fn(req_cls(**fields), timeout=h.CALL_TIMEOUT_S)

    def code(self, identity, method, **fields):
        """Calls method as identity; returns (code, details)."""
        fn, req_cls = h.unary(self.channels[identity], self.desc, method)
        return h.call_code(fn, req_cls(**fields))

    def create(self, identity="gateway"):
        secret = secrets.token_bytes(32)
        info = self.rpc(identity, "CreateSession", client_secret=secret)
        return Client(info, secret)

    def open(self, client, epoch, seq, body=b"hello"):
        aad, ct = client.seal(epoch, seq, body)
        return self.rpc("gateway", "OpenRequest",
                        session_id=client.info.session_id, epoch=epoch,
                        sequence=seq, aad=aad, ciphertext=ct)

    def open_code(self, client, epoch, seq, tamper=False):
        aad, ct = client.seal(epoch, seq, b"hello")
        if tamper:
            ct = bytes([ct[0] ^ 1]) + ct[1:]
        return self.code("gateway", "OpenRequest",
                         session_id=client.info.session_id, epoch=epoch,
                         sequence=seq, aad=aad, ciphertext=ct)[0]

    def mark_loaded(self):
        self.rpc("auth", "LoadRevocations", complete=True)

    def wait_health(self, expected):
        deadline = time.monotonic() + HEALTH_WAIT_S
        status = None
        while time.monotonic() < deadline:
            try:
                status = h.health_check(self.channels["gateway"]).status
            except grpc.RpcError:
                status = None
            if status == expected:
                return
            time.sleep(0.2)
        self.fail("health stayed %s, expected %s" % (status, expected))

    def test_access_rule_of_every_method(self):
        for method, allowed in ACCESS.items():
            for identity in IDENTITIES:
                with self.subTest(method=method, identity=identity):
                    code, _ = self.code(identity, method)
                    if identity in allowed:
                        self.assertNotEqual(
                            code, grpc.StatusCode.PERMISSION_DENIED)
                    else:
                        self.assertEqual(
                            code, grpc.StatusCode.PERMISSION_DENIED)

    def test_create_session_returns_info(self):
        before = int(time.time() * 1000)
        for identity in ("gateway", "auth"):
            info = self.create(identity).info
            self.assertEqual(len(info.session_id), 22)
            self.assertGreaterEqual(info.created_at_ms, before - 1000)
            self.assertGreaterEqual(info.server_time_ms, info.created_at_ms)
            self.assertEqual(info.epoch_seconds, EPOCH_SECONDS)
            self.assertEqual(info.grace_seconds, 1)
            self.assertEqual(info.idle_expires_at_ms - info.created_at_ms,
                             300 * 1000)
            self.assertEqual(info.absolute_expires_at_ms - info.created_at_ms,
                             12 * 3600 * 1000)

    def test_create_session_rejects_short_secret(self):
        code, details = self.code("gateway", "CreateSession",
                                  client_secret=b"short")
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("client_secret", details)

    def test_create_session_rejects_zero_secret(self):
        code, details = self.code("gateway", "CreateSession",
                                  client_secret=bytes(32))
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("all bytes are zero", details)

    def test_open_request_round_trip(self):
        client = self.create()
        epoch = client.current_epoch()
        resp = self.open(client, epoch, 1, b"hello")
        self.assertEqual(resp.plaintext[10:], b"hello")
        self.assertEqual(resp.user_id, "")
        self.assertEqual(resp.response_key, client.response_key(epoch, 1))
        self.assertEqual(self.open_code(client, epoch, 1),
                         grpc.StatusCode.ABORTED)

    def test_forged_envelope_leaves_window(self):
        client = self.create()
        epoch = client.current_epoch()
        self.assertEqual(
            self.open_code(client, epoch, 2 ** 53 - 1, tamper=True),
            grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.open_code(client, epoch, 1), grpc.StatusCode.OK)
        self.assertEqual(self.open_code(client, epoch, 2), grpc.StatusCode.OK)

    def test_open_request_unknown_session(self):
        client = self.create()
        client.info.session_id = "A" * 22
        client.sid = client.info.session_id.encode()
        self.assertEqual(self.open_code(client, 0, 1),
                         grpc.StatusCode.NOT_FOUND)

    def test_bind_and_delete_user_sessions(self):
        # OpenRequest admits a bound session only with the cache loaded.
        self.mark_loaded()
        user_a = "user-a-" + secrets.token_hex(6)
        user_b = "user-b-" + secrets.token_hex(6)
        sessions_a = [self.create() for _ in range(3)]
        session_b = self.create()
        for c in sessions_a:
            resp = self.rpc("auth", "BindUser", session_id=c.info.session_id,
                            user_id=user_a)
            self.assertGreater(resp.session.idle_expires_at_ms,
                               c.info.idle_expires_at_ms)
        self.rpc("auth", "BindUser", session_id=session_b.info.session_id,
                 user_id=user_b)
        code, details = self.code("auth", "BindUser",
                                  session_id=sessions_a[0].info.session_id,
                                  user_id=user_b)
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)

        resp = self.rpc("auth", "DeleteUserSessions", user_id=user_a)
        self.assertEqual(resp.deleted_count, 3)
        for c in sessions_a:
            self.assertEqual(self.open_code(c, 0, 1),
                             grpc.StatusCode.NOT_FOUND)
        resp = self.open(session_b, session_b.current_epoch(), 1)
        self.assertEqual(resp.user_id, user_b)

    def test_bind_past_limit_reports_evicted(self):
        user = "user-limit-" + secrets.token_hex(6)
        sessions = [self.create() for _ in range(DEFAULT_MAX_PER_USER + 1)]
        # Bind times a second apart, so that sessions[0] is the oldest.
        base_ms = int(time.time() * 1000) - BIND_BASE_AGO_MS
        for i, c in enumerate(sessions[:DEFAULT_MAX_PER_USER]):
            resp = self.rpc("auth", "BindUser", session_id=c.info.session_id,
                            user_id=user, bound_at_ms=base_ms + i * 1000)
            self.assertEqual(resp.evicted_sessions, 0)
        resp = self.rpc("auth", "BindUser",
                        session_id=sessions[-1].info.session_id, user_id=user)
        self.assertEqual(resp.evicted_sessions, 1)
        self.assertEqual(self.open_code(sessions[0], 0, 1),
                         grpc.StatusCode.NOT_FOUND)
        # Binding a listed session again ends nothing more.
        resp = self.rpc("auth", "BindUser",
                        session_id=sessions[-1].info.session_id, user_id=user)
        self.assertEqual(resp.evicted_sessions, 0)

    def test_is_revoked_reports_each_reason(self):
        self.mark_loaded()
        now = int(time.time())
        user = "user-r-" + secrets.token_hex(6)
        jti = "jti-" + secrets.token_hex(6)
        client = self.create()

        def check(token_id, user_id, issued_at, sid=""):
            r = self.rpc("gateway", "IsRevoked", token_id=token_id,
                         user_id=user_id, issued_at=issued_at, session_id=sid)
            return r.revoked, r.reason

        self.assertEqual(check(jti, user, now, client.info.session_id),
                         (False, ""))
        self.rpc("auth", "RevokeToken", token_id=jti, expires_at=now + 900)
        self.assertEqual(check(jti, user, now), (True, "token"))
        self.rpc("auth", "RevokeUser", user_id=user, revoked_at=now)
        self.assertEqual(check("other", user, now - 10), (True, "user"))
        self.assertEqual(check("other", user, now + 10), (False, ""))
        resp = self.rpc("auth", "DeleteSession",
                        session_id=client.info.session_id)
        self.assertTrue(resp.deleted)
        self.assertEqual(check("other", "someone", now,
                               client.info.session_id), (True, "session"))
        resp = self.rpc("auth", "DeleteSession",
                        session_id=client.info.session_id)
        self.assertFalse(resp.deleted)

        # A session that expired or was lost with Redis leaves no
        # tombstone, and its tokens count as revoked all the same.
        vanished = self.create()
        redis_cli(self.redis_port, "DEL",
                  "cerrojo:sess:s:" + vanished.info.session_id)
        self.assertEqual(check("other", "someone", now,
                               vanished.info.session_id),
                         (True, "session"))

    def test_loaded_session_revocation_deletes_session(self):
        self.mark_loaded()
        client = self.create()
        self.assertEqual(self.open_code(client, client.current_epoch(), 1),
                         grpc.StatusCode.OK)
        self.rpc("auth", "LoadRevocations",
                 session_ids=[client.info.session_id], complete=False)
        self.assertEqual(self.open_code(client, client.current_epoch(), 2),
                         grpc.StatusCode.NOT_FOUND)

    def open_metric(self, result):
        """Returns cerrojo_session_open_requests_total{result=RESULT}."""
        url = "http://127.0.0.1:%d/metrics" % self.metrics_port
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        prefix = ('cerrojo_session_open_requests_total{result="%s"} '
                  % result)
        for line in text.splitlines():
            if line.startswith(prefix):
                return float(line[len(prefix):])
        return 0.0

    def test_open_bound_fails_closed_until_loaded(self):
        self.mark_loaded()
        user = "user-open-" + secrets.token_hex(6)
        bound = self.create()
        unbound = self.create()
        self.rpc("auth", "BindUser", session_id=bound.info.session_id,
                 user_id=user)
        self.assertEqual(self.open_code(bound, bound.current_epoch(), 1),
                         grpc.StatusCode.OK)

        # Auth deletes the marker when it cannot deliver a revocation.
        rejected = self.open_metric("cache_not_loaded")
        redis_cli(self.redis_port, "DEL", "cerrojo:revoked:loaded")
        aad, ct = bound.seal(bound.current_epoch(), 2, b"hello")
        code, details = self.code("gateway", "OpenRequest",
                                  session_id=bound.info.session_id,
                                  epoch=bound.current_epoch(), sequence=2,
                                  aad=aad, ciphertext=ct)
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("revocation cache not loaded", details)
        self.assertEqual(self.open_metric("cache_not_loaded"),
                         rejected + 1)
        # A handshake before login carries no user, so it still opens.
        resp = self.open(unbound, unbound.current_epoch(), 1)
        self.assertEqual(resp.user_id, "")

        # The rejected request left the replay window as it was, so its
        # sequence number opens once the marker is back.
        self.mark_loaded()
        resp = self.open(bound, bound.current_epoch(), 2)
        self.assertEqual(resp.user_id, user)
        self.assertEqual(resp.plaintext[10:], b"hello")

    def test_revocation_times_out_of_range_rejected(self):
        now = int(time.time())
        user = "user-t-" + secrets.token_hex(6)
        for name, fields in (
                ("expires_at", {"token_id": "jti-" + secrets.token_hex(6),
                                "expires_at": 2 ** 63 - 1}),
                ("expires_at", {"token_id": "jti-" + secrets.token_hex(6),
                                "expires_at": 253402300800})):
            code, details = self.code("auth", "RevokeToken", **fields)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(name, details)
        for revoked_at in (2 ** 63 - 1, now + 3600):
            code, details = self.code("auth", "RevokeUser", user_id=user,
                                      revoked_at=revoked_at)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("revoked_at", details)
            self.assertIn("at most %d s ahead" % REVOKED_AT_AHEAD_MAX_S,
                          details)
        # A few seconds of skew between auth and session is accepted.
        self.rpc("auth", "RevokeUser", user_id=user, revoked_at=now + 5)
        for entry_expires_at_ms in (-1, 253402300800000):
            code, details = self.code(
                "auth", "RevokeUser", user_id=user, revoked_at=now,
                entry_expires_at_ms=entry_expires_at_ms)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("entry_expires_at_ms", details)
            code, details = self.code(
                "auth", "LoadRevocations", users=[{
                    "user_id": user, "revoked_at": now,
                    "entry_expires_at_ms": entry_expires_at_ms}])
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("entry_expires_at_ms", details)

    def test_bind_time_out_of_range_rejected(self):
        now_ms = int(time.time() * 1000)
        user = "user-b-" + secrets.token_hex(6)
        client = self.create()
        for bound_at_ms in (-1, 2 ** 63 - 1, now_ms + 3600 * 1000):
            code, details = self.code("auth", "BindUser",
                                      session_id=client.info.session_id,
                                      user_id=user, bound_at_ms=bound_at_ms)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("bound_at_ms", details)
            self.assertIn("at most %d s ahead" % REVOKED_AT_AHEAD_MAX_S,
                          details)
        # A few seconds of skew between auth and session is accepted.
        resp = self.rpc("auth", "BindUser", session_id=client.info.session_id,
                        user_id=user, bound_at_ms=now_ms + 5000)
        self.assertGreater(resp.session.idle_expires_at_ms,
                           client.info.idle_expires_at_ms)

    def test_concurrent_creates_leave_ttls(self):
        with concurrent.futures.ThreadPoolExecutor(CREATE_WORKERS) as pool:
            results = list(pool.map(lambda _: self.create(),
                                    range(CONCURRENT_CREATES)))
        self.assertEqual(len({c.info.session_id for c in results}),
                         CONCURRENT_CREATES)
        keys = []
        for pattern in ("cerrojo:sess:*", "cerrojo:revoked:*"):
            out = redis_cli(self.redis_port, "--scan", "--pattern", pattern)
            keys += [k for k in out.splitlines() if k]
        self.assertGreaterEqual(len(keys), CONCURRENT_CREATES)
        for key in keys:
            ttl = int(redis_cli(self.redis_port, "PTTL", key))
            # -2 means the key expired between the scan and the check.
            self.assertTrue(ttl > 0 or ttl == -2, "%s has TTL %d" % (key, ttl))

    def test_zz_flush_unloads_revocation_cache(self):
        jti = "jti-" + secrets.token_hex(6)
        now = int(time.time())
        self.mark_loaded()
        redis_cli(self.redis_port, "FLUSHALL")
        status = self.rpc("auth", "GetRevocationCacheStatus")
        self.assertFalse(status.loaded)
        code, details = self.code("gateway", "IsRevoked", token_id=jti,
                                  user_id="u", issued_at=now)
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("revocation cache not loaded", details)

        tokens = [{"token_id": jti, "expires_at": now + 600}]
        self.rpc("auth", "LoadRevocations", tokens=tokens, complete=False)
        code, _ = self.code("gateway", "IsRevoked", token_id=jti,
                            user_id="u", issued_at=now)
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
        self.rpc("auth", "LoadRevocations", complete=True)
        self.assertTrue(self.rpc("auth", "GetRevocationCacheStatus").loaded)
        r = self.rpc("gateway", "IsRevoked", token_id=jti, user_id="u",
                     issued_at=now)
        self.assertEqual((r.revoked, r.reason), (True, "token"))

    def test_zz_load_after_flush_rejected(self):
        jti = "jti-" + secrets.token_hex(6)
        now = int(time.time())
        tokens = [{"token_id": jti, "expires_at": now + 600}]
        code, details = self.code("auth", "LoadRevocations", begin=True)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("begin needs a load_id", details)

        self.rpc("auth", "LoadRevocations", load_id="load-x", begin=True,
                 tokens=tokens)
        redis_cli(self.redis_port, "FLUSHALL")
        code, details = self.code("auth", "LoadRevocations",
                                  load_id="load-x", complete=True)
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("revocation load interrupted", details)
        self.assertFalse(self.rpc("auth", "GetRevocationCacheStatus").loaded)

        self.rpc("auth", "LoadRevocations", load_id="load-y", begin=True)
        self.rpc("auth", "LoadRevocations", load_id="load-y", tokens=tokens,
                 complete=True)
        self.assertTrue(self.rpc("auth", "GetRevocationCacheStatus").loaded)
        r = self.rpc("gateway", "IsRevoked", token_id=jti, user_id="u",
                     issued_at=now)
        self.assertEqual((r.revoked, r.reason), (True, "token"))

    def test_zz_redis_down_is_unavailable_then_recovers(self):
        serving = h.health_modules()[0].HealthCheckResponse.SERVING
        not_serving = h.health_modules()[0].HealthCheckResponse.NOT_SERVING
        client = self.create()
        self.redis("stop")
        try:
            code, details = self.code("gateway", "CreateSession",
                                      client_secret=secrets.token_bytes(32))
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
            self.assertIn("unavailable", details)
            self.assertEqual(self.open_code(client, 0, 1),
                             grpc.StatusCode.UNAVAILABLE)
            code, _ = self.code("auth", "GetRevocationCacheStatus")
            self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
            self.wait_health(not_serving)
        finally:
            self.redis("start")
        self.wait_health(serving)
        self.assertEqual(self.open_code(client, client.current_epoch(), 1),
                         grpc.StatusCode.OK)
        self.create()



class LifetimeSettings(unittest.TestCase):
    def start_with(self, **settings):
        """Runs cerrojo-session with settings; returns (status, stderr)."""
        env = dict(os.environ, CERROJO_ENV_FILE="/dev/null",
                   CERROJO_PROFILE="dev", CERROJO_GRPC_PLAINTEXT="true",
                   CERROJO_SESSION_LISTEN="127.0.0.1:%d" % h.free_port())
        env.update(settings)
        proc = subprocess.run([os.path.join(h.BIN_DIR, "cerrojo-session")],
                              env=env, capture_output=True, text=True,
                              timeout=h.CALL_TIMEOUT_S)
        return proc.returncode, proc.stderr

    def test_grace_as_long_as_epoch_refused(self):
        status, err = self.start_with(CERROJO_SESSION_EPOCH_SECONDS="10",
                                      CERROJO_SESSION_GRACE_SECONDS="10")
        self.assertEqual(status, 2, err)
        self.assertIn("CERROJO_SESSION_GRACE_SECONDS (10 s) must be shorter",
                      err)

    def test_unknown_command_named_without_settings(self):
        env = {"PATH": os.environ.get("PATH", ""),
               "CERROJO_ENV_FILE": "/dev/null"}
        proc = subprocess.run(
            [os.path.join(h.BIN_DIR, "cerrojo-session"), "--bogus"], env=env,
            capture_output=True, text=True, timeout=h.CALL_TIMEOUT_S)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("unknown command '--bogus'", proc.stderr)
        self.assertNotIn("CERROJO_TLS_CA", proc.stderr.splitlines()[0])

    def test_help_after_command_prints_usage(self):
        env = {"PATH": os.environ.get("PATH", ""),
               "CERROJO_ENV_FILE": "/dev/null"}
        for args in (("serve", "--help"), ("healthcheck", "-h"),
                     ("--print-config", "--help")):
            with self.subTest(args=args):
                proc = subprocess.run(
                    [os.path.join(h.BIN_DIR, "cerrojo-session")] + list(args),
                    env=env, capture_output=True, text=True,
                    timeout=h.CALL_TIMEOUT_S)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertIn("usage: cerrojo-session", proc.stdout)

    def test_epoch_as_long_as_session_refused(self):
        status, err = self.start_with(CERROJO_SESSION_EPOCH_SECONDS="1h",
                                      CERROJO_SESSION_ABSOLUTE_SECONDS="1h")
        self.assertEqual(status, 2, err)
        self.assertIn("CERROJO_SESSION_EPOCH_SECONDS (3600 s) must be "
                      "shorter", err)

    def test_max_per_user_out_of_range_rejected(self):
        for value in ("-1", "10001", "many"):
            with self.subTest(value=value):
                status, err = self.start_with(
                    CERROJO_SESSION_MAX_PER_USER=value)
                self.assertEqual(status, 2, err)
                self.assertIn("CERROJO_SESSION_MAX_PER_USER: expected an "
                              "integer from 0 to 10000, got '%s'" % value,
                              err)


if __name__ == "__main__":
    unittest.main(verbosity=2)
