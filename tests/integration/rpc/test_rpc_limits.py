"""What one peer can hold or cause on a gRPC server: streams per connection,
connections that never finish the TLS handshake, and log lines from denied
calls and from gRPC core. Each test starts its own rpc_testd with mutual
TLS and kms's method table.

Python's grpcio hides HTTP/2 streams and Debian 12 has no `h2` module for
/usr/bin/python3, so the stream test writes the few HTTP/2 frames it needs
itself (RFC 9113), with header blocks of HPACK literals (RFC 7541)."""

import json
import os
import socket
import ssl
import struct
import subprocess
import time
import unittest

import grpc

import rpc_harness as h

# CJ_RPC_MAX_CONCURRENT_STREAMS and CJ_RPC_HANDSHAKE_TIMEOUT_MS of
# common/rpc_internal.h, and CJ_RPC_LOG_INTERVAL_MS of rpc_core_log.h.
STREAM_CAP = 1024
HANDSHAKE_TIMEOUT_S = 5.0
LOG_INTERVAL_S = 1.0

# Streams opened past the cap in the stream test.
EXCESS_STREAMS = 40
# Time the stream tests watch a connection: that it stays open with silent
# streams, and within which the server closes it, in seconds.
HOLD_CHECK_S = 2.0
CLOSE_WAIT_S = 10.0
# Slack on top of the handshake timeout before the test gives up.
HANDSHAKE_SLACK_S = 5.0
# Denied calls and failed handshakes sent in the log tests.
DENIED_CALLS = 200
FAILED_HANDSHAKES = 20

HEALTH_CHECK_PATH = "/grpc.health.v1.Health/Check"
DENIED_PATH = "/cerrojo.v1.Kms/DecryptKey"  # auth only; gateway is denied

# HTTP/2 frame types, flags, settings and error codes.
FRAME_HEADERS = 0x1
FRAME_SETTINGS = 0x4
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream_id, payload=b""):
    return (struct.pack(">I", len(payload))[1:] +
            struct.pack(">BBI", kind, flags, stream_id) + payload)


def hpack_literal(name, value):
    """One header as a literal without indexing and without Huffman
    coding; names and values here are all shorter than 127 bytes."""
    name, value = name.encode(), value.encode()
    return bytes([0, len(name)]) + name + bytes([len(value)]) + value


class RawHttp2:
    """One TLS connection that speaks HTTP/2 frames directly."""

    def __init__(self, port, certs, identity):
        context = ssl.create_default_context(
            cafile=os.path.join(certs, "ca.pem"))
        context.load_cert_chain(os.path.join(certs, identity + ".pem"),
                                os.path.join(certs, identity + ".key"))
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", port), 5)
        self.sock = context.wrap_socket(raw, server_hostname="127.0.0.1")
        self.buffer = b""

    def close(self):
        self.sock.close()

    def read_frame(self, deadline):
        """Returns (type, flags, stream id, payload), or None at the
        deadline or when the server closed the connection."""
        while True:
            if len(self.buffer) >= 9:
                length = struct.unpack(">I", b"\0" + self.buffer[:3])[0]
                if len(self.buffer) >= 9 + length:
                    kind, flags, stream_id = struct.unpack(
                        ">BBI", self.buffer[3:9])
                    payload = self.buffer[9:9 + length]
                    self.buffer = self.buffer[9 + length:]
                    return kind, flags, stream_id & 0x7FFFFFFF, payload
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except (socket.timeout, ssl.SSLError, OSError):
                return None
            if not data:
                return None
            self.buffer += data

    def start(self):
        """Sends the preface, acknowledges the server's SETTINGS and
        returns them as a dict. The server applies its stream cap only
        once the client has acknowledged it."""
        self.sock.sendall(PREFACE + frame(FRAME_SETTINGS, 0, 0))
        deadline = time.monotonic() + h.CALL_TIMEOUT_S
        while True:
            got = self.read_frame(deadline)
            if got is None:
                raise RuntimeError("no SETTINGS frame from the server")
            kind, flags, _, payload = got
            if kind == FRAME_SETTINGS and not flags & FLAG_ACK:
                break
        self.sock.sendall(frame(FRAME_SETTINGS, FLAG_ACK, 0))
        settings = {}
        for offset in range(0, len(payload), 6):
            key, value = struct.unpack(">HI", payload[offset:offset + 6])
            settings[key] = value
        return settings

    def open_silent_streams(self, count, path):
        """Sends HEADERS for `count` new calls to path, without a message
        or END_STREAM, so each stays open; returns their stream ids."""
        block = b"".join(hpack_literal(k, v) for k, v in [
            (":method", "POST"), (":scheme", "https"), (":path", path),
            (":authority", "127.0.0.1"), ("content-type", "application/grpc"),
            ("te", "trailers")])
        ids = [1 + 2 * i for i in range(count)]
        self.sock.sendall(b"".join(
            frame(FRAME_HEADERS, FLAG_END_HEADERS, i, block) for i in ids))
        return ids


def make_bad_identity_cert(certs):
    """Issues a certificate of the platform CA whose CN is no valid
    identity; returns its name in the certs directory."""
    name = "bad-identity"
    key = os.path.join(certs, name + ".key")
    csr = os.path.join(certs, name + ".csr")
    subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", key],
                   check=True, stderr=subprocess.DEVNULL)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj",
                    "/O=cerrojo dev/CN=Not An Identity", "-out", csr],
                   check=True)
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA",
                    os.path.join(certs, "ca.pem"), "-CAkey",
                    os.path.join(certs, "ca.key"), "-CAcreateserial",
                    "-days", "2", "-out", os.path.join(certs, name + ".pem")],
                   check=True, stderr=subprocess.DEVNULL)
    return name


def json_lines(svc):
    """Returns the parsed lines of svc's log; fails on a line that is not
    a JSON object."""
    entries = []
    for line in svc.log().splitlines():
        if not line.strip():
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            raise AssertionError("log line is not JSON: %r" % line)
    return entries


class ServerLimits(unittest.TestCase):
    certs = None

    @classmethod
    def setUpClass(cls):
        h.load_stubs()
        cls.certs = h.make_certs()
        cls.bad_identity = make_bad_identity_cert(cls.certs)

    def setUp(self):
        self.svc = h.Service("kms", certs=self.certs, testd=True).start()

    def tearDown(self):
        status = self.svc.stop()
        self.assertEqual(status, 0, self.svc.log()[-4000:])

    def assert_health_serving(self):
        pb2, _ = h.health_modules()
        with self.svc.channel("gateway") as chan:
            self.assertEqual(h.health_check(chan).status,
                             pb2.HealthCheckResponse.SERVING)

    def read_until_closed(self, conn, seconds):
        """Returns the frames the server sends until it closes conn, or
        None when it is still open after `seconds`."""
        frames = []
        deadline = time.monotonic() + seconds
        while True:
            got = conn.read_frame(deadline)
            if got is None:
                return frames if time.monotonic() < deadline else None
            frames.append(got)

    def test_streams_up_to_cap_held(self):
        conn = RawHttp2(self.svc.port, self.certs, "platform-service")
        try:
            settings = conn.start()
            self.assertEqual(settings.get(SETTINGS_MAX_CONCURRENT_STREAMS),
                             STREAM_CAP)
            conn.open_silent_streams(STREAM_CAP, HEALTH_CHECK_PATH)
            # The server waits for the requests, so nothing comes back.
            self.assertIsNone(self.read_until_closed(conn, HOLD_CHECK_S))
            # Calls on other connections still work meanwhile.
            self.assert_health_serving()
        finally:
            conn.close()
        self.assert_health_serving()

    def test_stream_past_cap_closes_connection(self):
        conn = RawHttp2(self.svc.port, self.certs, "platform-service")
        try:
            conn.start()
            ids = conn.open_silent_streams(STREAM_CAP + EXCESS_STREAMS,
                                           HEALTH_CHECK_PATH)
            frames = self.read_until_closed(conn, CLOSE_WAIT_S)
        finally:
            conn.close()
        # libgrpc 1.51 treats a stream past the cap as an HTTP/2 error of
        # the connection: it never opens that stream, ends the ones it has
        # with UNAVAILABLE and closes the connection.
        self.assertIsNotNone(frames, "connection still open")
        answered = {stream_id for kind, _, stream_id, _ in frames
                    if kind == FRAME_HEADERS}
        self.assertEqual(answered, set(ids[:STREAM_CAP]))
        self.assert_health_serving()

    def test_connection_without_tls_closed(self):
        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", self.svc.port), 5) as sock:
            sock.settimeout(HANDSHAKE_TIMEOUT_S + HANDSHAKE_SLACK_S)
            try:
                data = sock.recv(1)
            except ConnectionResetError:
                data = b""
            except socket.timeout:
                self.fail("connection still open after %.1f s" %
                          (time.monotonic() - started))
        elapsed = time.monotonic() - started
        self.assertEqual(data, b"")
        self.assertLess(elapsed, HANDSHAKE_TIMEOUT_S + HANDSHAKE_SLACK_S)
        self.assert_health_serving()

    def test_denials_logged_once_per_interval(self):
        started = time.monotonic()
        with self.svc.channel("gateway") as chan:
            fn = chan.unary_unary(DENIED_PATH)
            for _ in range(DENIED_CALLS):
                self.assertEqual(h.call_code(fn, b"")[0],
                                 grpc.StatusCode.PERMISSION_DENIED)
            elapsed = time.monotonic() - started
            # One more after the interval carries the count of the others.
            time.sleep(LOG_INTERVAL_S + 0.2)
            self.assertEqual(h.call_code(fn, b"")[0],
                             grpc.StatusCode.PERMISSION_DENIED)
        denials = [e for e in json_lines(self.svc)
                   if e["event"] == "rpc.permission_denied"]
        self.assertGreaterEqual(len(denials), 2)
        self.assertLessEqual(len(denials), elapsed / LOG_INTERVAL_S + 3)
        for e in denials:
            self.assertEqual(set(e), {"ts", "level", "service", "event",
                                      "request_id", "identity", "method",
                                      "suppressed_repeats"})
            self.assertEqual(e["level"], "warn")
            self.assertEqual(e["identity"], "gateway")
            self.assertEqual(e["method"], DENIED_PATH)
        self.assertEqual(denials[0]["suppressed_repeats"], 0)
        self.assertGreater(denials[-1]["suppressed_repeats"], 0)
        self.assertEqual(
            len(denials) + sum(e["suppressed_repeats"] for e in denials),
            DENIED_CALLS + 1)

    def test_unauthenticated_logged_once_per_interval(self):
        with self.svc.channel(self.bad_identity) as chan:
            fn = chan.unary_unary(DENIED_PATH)
            for _ in range(DENIED_CALLS):
                self.assertEqual(h.call_code(fn, b"")[0],
                                 grpc.StatusCode.UNAUTHENTICATED)
            time.sleep(LOG_INTERVAL_S + 0.2)
            self.assertEqual(h.call_code(fn, b"")[0],
                             grpc.StatusCode.UNAUTHENTICATED)
        lines = [e for e in json_lines(self.svc)
                 if e["event"] == "rpc.unauthenticated"]
        self.assertGreaterEqual(len(lines), 2)
        self.assertLess(len(lines), DENIED_CALLS / 2)
        for e in lines:
            self.assertEqual(e["method"], DENIED_PATH)
            self.assertNotIn("identity", e)
        self.assertEqual(
            len(lines) + sum(e["suppressed_repeats"] for e in lines),
            DENIED_CALLS + 1)

    def test_failed_handshakes_logged_as_json(self):
        started = time.monotonic()
        for identity in [None, "other"] * (FAILED_HANDSHAKES // 2):
            with self.svc.channel(identity) as chan:
                with self.assertRaises(grpc.RpcError) as caught:
                    h.health_check(chan)
                self.assertEqual(caught.exception.code(),
                                 grpc.StatusCode.UNAVAILABLE)
        elapsed = time.monotonic() - started
        time.sleep(LOG_INTERVAL_S + 0.2)
        with self.svc.channel(None) as chan:
            with self.assertRaises(grpc.RpcError):
                h.health_check(chan)
        # json_lines fails on any line gRPC core wrote in its own format.
        core = [e for e in json_lines(self.svc)
                if e["event"] == "grpc.core_log"]
        self.assertGreaterEqual(len(core), 2)
        self.assertLessEqual(len(core), elapsed / LOG_INTERVAL_S + 3)
        for e in core:
            self.assertEqual(e["level"], "error")
            self.assertTrue(e["file"])
            self.assertGreater(e["line"], 0)
            self.assertTrue(e["message"])
        self.assertGreater(core[-1]["suppressed_repeats"], 0)
        self.assert_health_serving()


if __name__ == "__main__":
    unittest.main(verbosity=2)
