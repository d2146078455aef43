#!/usr/bin/env python3
"""Integration test of cerrojo-gateway's HTTP edge: routing, limits, error
shape, security headers, CORS, request ids, metrics and the access log.

Starts the gateway binary given as the first argument on free loopback
ports, with a Redis of its own (scripts/redis.sh in a temporary folder),
sends real HTTP requests and stops both by their process ids.
"""
import base64
import http.client
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from concurrent import futures

import grpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "rpc"))
from rpc_harness import free_port  # noqa: E402

GATEWAY = None
SECURITY_HEADERS = {
    "strict-transport-security": "max-age=",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "content-security-policy": "frame-ancestors 'none'",
    "referrer-policy": "no-referrer",
}
ORIGIN = "https://app.example"
STARTUP_SECONDS = 10
# Maximum wait for an expected line in a gateway's log, in seconds.
LOG_WAIT_SECONDS = 10
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..",
                                    ".."))
REDIS_SCRIPT = os.path.join(ROOT, "scripts", "redis.sh")
# The Redis every Gateway uses unless a test names another; started in main.
SHARED_REDIS = None


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class PrivateRedis:
    """A Redis that only this test uses, so that a test may stop it."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gw-redis-")
        self.port = free_port()
        self.addr = "127.0.0.1:%d" % self.port
        subprocess.run([REDIS_SCRIPT, "start", self.dir, str(self.port)],
                       check=True, capture_output=True, timeout=60)

    def stop(self):
        subprocess.run([REDIS_SCRIPT, "stop", self.dir, str(self.port)],
                       check=True, capture_output=True, timeout=60)

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Gateway:
    """One gateway process with its own ports and log file."""

    def __init__(self, extra_env=None):
        self.port = free_port()
        self.admin_port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="gw-", suffix=".log",
                                               delete=False)
        env = dict(os.environ)
        env.update({
            "CERROJO_PROFILE": "dev",
            "CERROJO_GRPC_PLAINTEXT": "true",
            "CERROJO_GATEWAY_PORT": str(self.port),
            "CERROJO_GATEWAY_ADMIN_PORT": str(self.admin_port),
            "CERROJO_GATEWAY_CORS_ORIGINS": ORIGIN,
            "CERROJO_GATEWAY_OPENAPI_FILE": "/nonexistent/openapi.json",
            # Nothing listens there: backends are down for this test.
            "CERROJO_KMS_ADDR": "127.0.0.1:%d" % free_port(),
            "CERROJO_SESSION_ADDR": "127.0.0.1:%d" % free_port(),
            "CERROJO_AUTH_ADDR": "127.0.0.1:%d" % free_port(),
            "CERROJO_REDIS_ADDR": SHARED_REDIS.addr,
        })
        env.update(extra_env or {})
        self.proc = subprocess.Popen([GATEWAY], env=env, stdout=self.log,
                                     stderr=self.log)
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                if self.request("GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.05)
        self.proc.kill()
        self.proc.wait()
        raise RuntimeError("gateway did not start; log:\n" + self.log_text())

    def request(self, method, path, body=None, headers=None, port=None):
        conn = http.client.HTTPConnection("127.0.0.1", port or self.port,
                                          timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    def raw(self, payload):
        """Sends raw bytes; returns the status code of the first response."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(payload)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        return int(line.split()[1]) if line.startswith("HTTP/") else 0

    def alive(self):
        return self.proc.poll() is None

    def log_text(self):
        with open(self.log.name, encoding="utf-8", errors="replace") as f:
            return f.read()

    def log_with(self, *fragments):
        """Returns the log once it contains every fragment, or as it is
        after LOG_WAIT_SECONDS. The gateway writes a request's line after
        it sent the response, so the client may read the log first."""
        deadline = time.monotonic() + LOG_WAIT_SECONDS
        while True:
            log = self.log_text()
            if (all(fragment in log for fragment in fragments) or
                    time.monotonic() > deadline):
                return log
            time.sleep(0.05)

    def stop(self):
        """Stops the gateway; raises when it did not exit cleanly or a
        sanitizer reported anything."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        log = self.log_text()
        for marker in ("AddressSanitizer", "LeakSanitizer", "runtime error:"):
            if marker in log:
                raise AssertionError("sanitizer report in the gateway log:\n"
                                     + log[-4000:])
        if self.proc.returncode != 0:
            raise AssertionError("gateway exited with %d" % self.proc.returncode)


class GatewayHttpTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.gw.stop()
        finally:
            os.unlink(cls.gw.log.name)

    def assert_error(self, status, headers, body, expected_status, code):
        self.assertEqual(status, expected_status)
        self.assertEqual(headers.get("content-type"), "application/json")
        doc = json.loads(body)
        self.assertEqual(list(doc.keys()), ["error"])
        self.assertEqual(doc["error"]["code"], code)
        self.assertTrue(doc["error"]["message"])
        self.assertEqual(doc["error"]["request_id"], headers["x-request-id"])

    def assert_security_headers(self, headers):
        for name, fragment in SECURITY_HEADERS.items():
            self.assertIn(name, headers)
            self.assertIn(fragment, headers[name])

    def test_healthz_has_security_headers(self):
        status, headers, body = self.gw.request("GET", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})
        self.assert_security_headers(headers)
        self.assertEqual(headers["cache-control"], "no-store")

    def test_head_on_healthz_has_no_body(self):
        status, _, body = self.gw.request("HEAD", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(body, b"")

    def test_unknown_route_is_404(self):
        status, headers, body = self.gw.request("GET", "/v1/unknown")
        self.assert_error(status, headers, body, 404, "not_found")
        self.assert_security_headers(headers)

    def test_unused_method_is_405_with_allow(self):
        status, headers, body = self.gw.request("DELETE", "/v1/login")
        self.assert_error(status, headers, body, 405, "method_not_allowed")
        self.assertEqual(headers["allow"], "POST, OPTIONS")
        status, headers, _ = self.gw.request("GET", "/v1/me/data/private",
                                             headers={"Cerrojo-Seal": "x"})
        status, headers, _ = self.gw.request("POST", "/v1/me/data/private")
        self.assertEqual(status, 405)
        self.assertEqual(headers["allow"], "GET, PUT, OPTIONS")

    def test_trace_and_connect_are_refused(self):
        status, headers, _ = self.gw.request("TRACE", "/v1/login")
        self.assertEqual(status, 405)
        code = self.gw.raw(b"CONNECT 127.0.0.1:22 HTTP/1.1\r\n"
                           b"Host: 127.0.0.1\r\n\r\n")
        self.assertIn(code, (400, 404, 405))

    def test_body_over_content_length_limit_is_413(self):
        body = b"{" + b" " * (20 * 1024) + b"}"
        status, headers, data = self.gw.request(
            "POST", "/v1/login", body=body,
            headers={"Content-Type": "application/json"})
        self.assert_error(status, headers, data, 413, "payload_too_large")

    def test_chunked_body_over_limit_is_413(self):
        chunk = b" " * 8192
        payload = (b"POST /v1/handshake HTTP/1.1\r\nHost: x\r\n"
                   b"Content-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            payload += b"%x\r\n" % len(chunk) + chunk + b"\r\n"
        payload += b"0\r\n\r\n"
        self.assertEqual(self.gw.raw(payload), 413)

    def test_non_json_content_type_is_415(self):
        status, headers, data = self.gw.request(
            "POST", "/v1/login", body=b"{}",
            headers={"Content-Type": "text/plain"})
        self.assert_error(status, headers, data, 415, "unsupported_media_type")

    def test_compressed_body_on_sealed_route_is_415(self):
        status, headers, data = self.gw.request(
            "POST", "/v1/login", body=b"{}",
            headers={"Content-Type": "application/json",
                     "Content-Encoding": "gzip"})
        self.assert_error(status, headers, data, 415, "unsupported_media_type")

    def send_head(self, payload):
        """Sends a request head and returns (status, headers, body) of the
        response, read until the gateway closes the connection."""
        with socket.create_connection(("127.0.0.1", self.gw.port),
                                      timeout=10) as sock:
            try:
                sock.sendall(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # responded and closed before the whole head was sent
            return parse_response(read_until_closed(sock))

    def assert_head_rejected(self, payload, expected_status, code):
        status, headers, body = self.send_head(payload)
        self.assert_error(status, headers, body, expected_status, code)
        self.assert_security_headers(headers)
        self.assertEqual(headers.get("connection"), "close")

    def assert_smuggling_rejected(self, payloads):
        """Sends each payload of the dict (case name to bytes) on its own
        connection and checks for one 400 invalid_request and a close."""
        for name, payload in payloads.items():
            with self.subTest(name):
                with socket.create_connection(("127.0.0.1", self.gw.port),
                                              timeout=5) as sock:
                    sock.sendall(payload)
                    data = read_until_closed(sock)
                # One response only: the smuggled request gets none.
                self.assertEqual(data.count(b"HTTP/1.1 "), 1, data)
                status, headers, body = parse_response(data)
                self.assert_error(status, headers, body, 400,
                                  "invalid_request")
                self.assertEqual(headers.get("connection"), "close")

    def test_space_in_target_closes_silently(self):
        # libmicrohttpd in strict mode closes the connection at such a
        # request line and runs no callback from which the gateway could
        # reply or log (a known limit in docs/architecture.md). This pins
        # that behaviour: the request before it is served, and nothing else.
        for target in (b"/v1/ke ys", b"/healthz?a b"):
            with self.subTest(target):
                with socket.create_connection(("127.0.0.1", self.gw.port),
                                              timeout=5) as sock:
                    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                                 b"GET " + target + b" HTTP/1.1\r\n"
                                 b"Host: x\r\n\r\n")
                    data = read_until_closed(sock)
                self.assertEqual(data.count(b"HTTP/1.1 "), 1, data)
                self.assertTrue(data.startswith(b"HTTP/1.1 200 "), data)
        self.assertTrue(self.gw.alive())
        self.assertEqual(self.gw.request("GET", "/healthz")[0], 200)

    def test_oversized_headers_are_431(self):
        for size in (32 * 1024, 60000):
            payload = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                       b"a" * size + b"\r\n\r\n")
            self.assert_head_rejected(payload, 431, "headers_too_large")

    def test_long_request_target_is_414(self):
        for path in (b"/" + b"a" * 100000, b"/healthz?q=" + b"a" * 9000):
            payload = b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n"
            self.assert_head_rejected(payload, 414, "uri_too_long")

    def test_head_under_limits_is_served(self):
        status, _, _ = self.gw.request(
            "GET", "/healthz?q=" + "a" * 7000,
            headers={"X-Pad": "a" * 8000})
        self.assertEqual(status, 200)

    def test_head_over_mhd_memory_gets_mhd_431(self):
        # Past the connection memory (128 KiB) libmicrohttpd responds by
        # itself with its HTML page, and the gateway must survive it.
        payload = (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                   b"a" * (200 * 1024) + b"\r\n\r\n")
        status, headers, _ = self.send_head(payload)
        self.assertEqual(status, 431)
        self.assertNotEqual(headers.get("content-type"), "application/json")
        self.assertEqual(self.gw.request("GET", "/healthz")[0], 200)

    def test_ambiguous_framing_is_400_and_closes(self):
        smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        body = b"{}" + smuggled
        post = (b"POST /v1/login HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n")
        payloads = {
            "two lengths": post + b"Content-Length: 2\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body) + body,
            "two lengths, long first": post + b"Content-Length: %d\r\n"
            b"Content-Length: 2\r\n\r\n" % len(body) + body,
            "length with chunked": post + b"Content-Length: 3\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
            + smuggled,
            "two hosts": b"GET /healthz HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n"
            + smuggled,
        }
        for coding in (b"identity", b"gzip, chunked", b"chunked, chunked",
                       b"xchunked"):
            payloads[coding.decode()] = (
                post + b"Transfer-Encoding: " + coding +
                b"\r\n\r\n2\r\n{}\r\n0\r\n\r\n" + smuggled)
        self.assert_smuggling_rejected(payloads)

    def test_malformed_header_lines_are_400_and_close(self):
        # Each payload hides a second request where a front proxy that trims
        # the name, or unfolds the line, reads a body of that length.
        smuggled = b"GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n"
        length = b"%d" % len(smuggled)
        get = b"GET /healthz HTTP/1.1\r\nHost: a\r\n"
        handshake = (b"POST /v1/handshake HTTP/1.1\r\nHost: a\r\n"
                     b"Content-Type: application/json\r\n")
        payloads = {
            "space before colon": get + b"Content-Length : " + length
            + b"\r\n\r\n" + smuggled,
            "tab before colon": get + b"Content-Length\t: " + length
            + b"\r\n\r\n" + smuggled,
            "space before colon on handshake": handshake
            + b"Content-Length : " + length + b"\r\n\r\n" + smuggled,
            "folded length": get + b"X-A: b\r\n Content-Length: " + length
            + b"\r\n\r\n" + smuggled,
            "control byte in name": get + b"X\x01A: b\r\n\r\n" + smuggled,
            "bare CR in value": get + b"X-A: b\rc\r\n\r\n" + smuggled,
            "length value folded": handshake + b"Content-Length:\r\n "
            + length + b"\r\n\r\n" + smuggled,
            "length value folded with a tab": handshake
            + b"Content-Length:\r\n\t" + length + b"\r\n\r\n" + smuggled,
            "length folded onto a length": handshake + b"Content-Length: 3"
            b"\r\n 7\r\n\r\n" + smuggled,
            "length value folded on a GET": get + b"Content-Length:\r\n "
            + length + b"\r\n\r\n" + smuggled,
        }
        self.assert_smuggling_rejected(payloads)

    def test_token_names_and_tabs_are_served(self):
        status = self.gw.raw(b"GET /healthz HTTP/1.1\r\nHost: a\r\n"
                             b"X-A.b_c~d!#$%&'*+^`|: b\tc d\r\n\r\n")
        self.assertEqual(status, 200)

    def test_repeated_equal_lengths_are_served(self):
        status = self.gw.raw(b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 0\r\nContent-Length: 0\r\n\r\n")
        self.assertEqual(status, 200)

    def test_percent_encoded_paths_match_no_route(self):
        for path in ("/v1%2fkeys", "/v1/%6beys", "/v1/keys%00", "/healthz%00",
                     "/%68ealthz"):
            with self.subTest(path):
                status, headers, body = self.gw.request("GET", path)
                self.assert_error(status, headers, body, 404, "not_found")
        for path in ("/v1%2flogin", "/v1/login%00junk"):
            with self.subTest(path):
                status, headers, body = self.gw.request(
                    "POST", path, body=b"{}",
                    headers={"Content-Type": "application/json"})
                self.assert_error(status, headers, body, 404, "not_found")
        status, _, _ = self.gw.request("GET", "/healthz?q=%2f%00")
        self.assertEqual(status, 200)

    def test_absolute_form_target_is_routed_by_path(self):
        base = "127.0.0.1:%d" % self.gw.port
        for target in ("http://%s/healthz" % base, "HTTP://%s/healthz" % base,
                       "https://gw.example/healthz?q=1"):
            with self.subTest(target):
                status, _, body = self.gw.request("GET", target)
                self.assertEqual(status, 200)
                self.assertEqual(json.loads(body), {"status": "ok"})
        status, headers, body = self.gw.request("GET", "http://%s" % base)
        self.assert_error(status, headers, body, 404, "not_found")
        # A sealed route returns the same error in either form. A rejected
        # target is 400 invalid_request too, so the messages must match and
        # must not name the request target.
        answers = []
        for target in ("/v1/login", "http://%s/v1/login" % base):
            status, headers, body = self.gw.request(
                "POST", target, body=b"{}",
                headers={"Content-Type": "application/json"})
            error = json.loads(body)["error"]
            self.assertNotIn("request target", error["message"], target)
            answers.append((status, error["code"], error["message"]))
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0][0], 400)
        status, _, _ = self.gw.request("GET", "http://%s/metrics" % base,
                                       port=self.gw.admin_port)
        self.assertEqual(status, 200)

    def test_unroutable_request_target_is_400(self):
        for method, target in (("GET", "healthz"), ("GET", "ftp://x/healthz"),
                               ("GET", "http:///healthz"),
                               ("GET", "http://user@x/healthz"),
                               ("GET", "*"), ("POST", "*")):
            with self.subTest(target):
                status, headers, body = self.gw.request(method, target)
                self.assert_error(status, headers, body, 400,
                                  "invalid_request")
                self.assertIn("request target",
                              json.loads(body)["error"]["message"])
                self.assert_security_headers(headers)

    def test_options_asterisk_lists_methods(self):
        status, headers, body = self.gw.request("OPTIONS", "*")
        self.assertEqual(status, 204)
        self.assertEqual(body, b"")
        self.assertEqual(headers.get("allow"), "GET, HEAD, POST, PUT, OPTIONS")
        self.assert_security_headers(headers)

    def test_session_id_of_wrong_length_is_400(self):
        envelope = json.dumps({"v": 1, "epoch": 0, "seq": 1,
                               "ct": b64url(os.urandom(48))})
        # cerrojo-session issues ids of 22 characters. Other lengths, even
        # those the envelope format admits (16 to 64), get 400 before any
        # RPC.
        for length in (1, 15, 16, 21, 23, 64, 65, 128):
            with self.subTest(length):
                status, headers, data = self.gw.request(
                    "POST", "/v1/logout", body=envelope,
                    headers={"Content-Type": "application/json",
                             "Cerrojo-Session": "x" * length})
                self.assert_error(status, headers, data, 400,
                                  "invalid_request")
                self.assertIn("Cerrojo-Session",
                              json.loads(data)["error"]["message"])
        self.assertNotIn('"level":"error"', self.gw.log_text())

    def test_repeated_session_or_seal_is_400(self):
        # A proxy in front may act on the last line while the gateway would
        # read the first, so a repeat is rejected whatever the values.
        session = b"Cerrojo-Session: " + b"A" * 22 + b"\r\n"
        seal = b"Cerrojo-Seal: e30\r\n"
        heads = {
            "Cerrojo-Session": b"GET /v1/me HTTP/1.1\r\nHost: x\r\n"
            + seal + session + session,
            "Cerrojo-Seal": b"GET /v1/me HTTP/1.1\r\nHost: x\r\n"
            + seal + seal,
        }
        for name, head in heads.items():
            with self.subTest(name):
                with socket.create_connection(("127.0.0.1", self.gw.port),
                                              timeout=10) as sock:
                    sock.sendall(head + b"\r\n")
                    resp = http.client.HTTPResponse(sock, method="GET")
                    resp.begin()
                    data = resp.read()
                    headers = {k.lower(): v for k, v in resp.getheaders()}
                self.assert_error(resp.status, headers, data, 400,
                                  "invalid_request")
                message = json.loads(data)["error"]["message"]
                self.assertIn("more than one " + name, message)
        self.assertIn('"reason":"header_repeated"', self.gw.log_text())

    def send_put_head(self, extra_lines):
        """Sends a PUT of a small JSON body with `extra_lines` in its head
        and returns (status, headers, body)."""
        body = b"{}"
        head = (b"PUT /v1/me/data/public HTTP/1.1\r\nHost: x\r\n"
                + b"Content-Length: 2\r\n" + extra_lines + b"\r\n")
        with socket.create_connection(("127.0.0.1", self.gw.port),
                                      timeout=10) as sock:
            sock.sendall(head + body)
            resp = http.client.HTTPResponse(sock, method="PUT")
            resp.begin()
            data = resp.read()
            headers = {k.lower(): v for k, v in resp.getheaders()}
        return resp.status, headers, data

    def test_conflicting_content_types_are_400(self):
        status, headers, data = self.send_put_head(
            b"Content-Type: application/json\r\n"
            b"Content-Type: text/plain\r\n")
        self.assert_error(status, headers, data, 400, "invalid_request")
        message = json.loads(data)["error"]["message"]
        self.assertIn("Content-Type headers with different values", message)
        self.assertIn("Content-Type headers with different values",
                      self.gw.log_text())

    def test_equal_content_types_pass(self):
        # The envelope "{}" is malformed, so passing the header check shows
        # as the envelope's 400, not the header's.
        status, headers, data = self.send_put_head(
            b"Content-Type: application/json\r\n"
            b"content-type: application/json\r\n")
        self.assert_error(status, headers, data, 400, "invalid_request")
        message = json.loads(data)["error"]["message"]
        self.assertEqual(message, "The sealed envelope is malformed.")

    def test_seal_header_on_request_with_body_is_400(self):
        status, headers, data = self.send_put_head(
            b"Content-Type: application/json\r\nCerrojo-Seal: e30\r\n")
        self.assert_error(status, headers, data, 400, "invalid_request")
        message = json.loads(data)["error"]["message"]
        self.assertIn("without the Cerrojo-Seal header", message)

    def test_responses_vary_by_origin(self):
        for path, origin in (("/healthz", None), ("/healthz", ORIGIN),
                             ("/.well-known/jwks.json", None),
                             ("/v1/unknown", None),
                             ("/healthz", "https://other.example")):
            with self.subTest(path=path, origin=origin):
                _, headers, _ = self.gw.request(
                    "GET", path, headers={"Origin": origin} if origin else {})
                vary = [v.strip() for v in headers.get("vary", "").split(",")]
                self.assertIn("Origin", vary)

    def test_deep_nesting_is_400_and_gateway_survives(self):
        body = b"[" * 100000
        status, headers, data = self.gw.request(
            "PUT", "/v1/me/data/private", body=body,
            headers={"Content-Type": "application/json"})
        self.assert_error(status, headers, data, 400, "invalid_request")
        self.assertIn("nesting", json.loads(data)["error"]["message"])
        self.assertTrue(self.gw.alive())
        self.assertEqual(self.gw.request("GET", "/healthz")[0], 200)

    def test_malformed_envelope_is_400(self):
        for body in (b"{}", b'{"v":1}', b"[]", b'{"v":1,"kid":1,"kdf":1,'
                     b'"aead":2,"enc":"AAAA","ct":"AAAA","x":1}'):
            status, headers, data = self.gw.request(
                "POST", "/v1/login", body=body,
                headers={"Content-Type": "application/json"})
            self.assert_error(status, headers, data, 400, "invalid_request")

    def test_stateless_envelope_with_kms_down_is_503(self):
        envelope = json.dumps({"v": 1, "kid": 1, "kdf": 1, "aead": 2,
                               "enc": b64url(os.urandom(32)),
                               "ct": b64url(os.urandom(48))})
        start = time.monotonic()
        status, headers, data = self.gw.request(
            "POST", "/v1/login", body=envelope,
            headers={"Content-Type": "application/json"})
        self.assert_error(status, headers, data, 503, "unavailable")
        self.assertIn("retry-after", headers)
        self.assertLess(time.monotonic() - start, 10)

    def test_stateful_envelope_with_session_down_is_503(self):
        envelope = json.dumps({"v": 1, "epoch": 0, "seq": 1,
                               "ct": b64url(os.urandom(48))})
        status, headers, data = self.gw.request(
            "POST", "/v1/logout", body=envelope,
            headers={"Content-Type": "application/json",
                     "Cerrojo-Session": "AAAAAAAAAAAAAAAAAAAAAA"})
        self.assert_error(status, headers, data, 503, "unavailable")

    def test_sealed_get_without_seal_header_is_400(self):
        status, headers, data = self.gw.request("GET", "/v1/me")
        self.assert_error(status, headers, data, 400, "invalid_request")

    def test_oversized_seal_header_is_413_naming_the_limit(self):
        status, headers, data = self.gw.request(
            "GET", "/v1/me", headers={"Cerrojo-Seal": "A" * 9000})
        self.assert_error(status, headers, data, 413, "payload_too_large")
        message = json.loads(data)["error"]["message"]
        self.assertIn("Cerrojo-Seal header", message)
        self.assertIn("8192 bytes", message)

    def test_protected_data_needs_a_session(self):
        status, headers, data = self.gw.request(
            "GET", "/v1/me/data/protected", headers={"Cerrojo-Seal": "e30"})
        self.assert_error(status, headers, data, 400, "invalid_request")

    def test_session_or_seal_on_plain_route_is_400(self):
        cases = (("/v1/keys", "Cerrojo-Session", "A" * 22),
                 ("/v1/keys", "Cerrojo-Seal", "e30"),
                 ("/healthz", "Cerrojo-Session", "A" * 22),
                 ("/healthz", "Cerrojo-Seal", "!!!"))
        for path, name, value in cases:
            with self.subTest(path=path, header=name):
                status, headers, data = self.gw.request(
                    "GET", path, headers={name: value})
                self.assert_error(status, headers, data, 400,
                                  "invalid_request")
                message = json.loads(data)["error"]["message"]
                self.assertIn("does not accept the %s header" % name,
                              message)
        self.assertIn('"reason":"mode_not_accepted"', self.gw.log_text())

    def test_plain_route_with_backend_down_is_503(self):
        start = time.monotonic()
        status, headers, data = self.gw.request("GET", "/v1/keys")
        self.assert_error(status, headers, data, 503, "unavailable")
        self.assertIn("retry-after", headers)
        self.assertLess(time.monotonic() - start, 10)

    def test_readyz_lists_dependencies(self):
        status, _, data = self.gw.request("GET", "/readyz")
        self.assertEqual(status, 503)
        deps = json.loads(data)["dependencies"]
        self.assertEqual(sorted(deps), ["auth", "kms", "redis", "session"])

    def test_jwks_fetched_on_timer_without_requests(self):
        # kms is down here, so the refresh thread's first fetch fails.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            for line in self.gw.log_text().splitlines():
                if ('"event":"gateway.jwks_fetch_failed"' in line
                        and '"trigger":"timer"' in line):
                    return
            time.sleep(0.1)
        self.fail("no JWKS fetch by the timer:\n" + self.gw.log_text())

    def test_openapi_absent_is_404(self):
        status, headers, data = self.gw.request("GET", "/openapi.json")
        self.assert_error(status, headers, data, 404, "not_found")

    def test_cors_preflight_for_configured_origin(self):
        status, headers, _ = self.gw.request(
            "OPTIONS", "/v1/login",
            headers={"Origin": ORIGIN,
                     "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "content-type"})
        self.assertEqual(status, 204)
        self.assertEqual(headers["access-control-allow-origin"], ORIGIN)
        self.assertIn("POST", headers["access-control-allow-methods"])
        self.assertIn("Content-Type", headers["access-control-allow-headers"])
        self.assertNotIn("access-control-allow-credentials", headers)
        self.assertIn("Origin", headers["vary"])
        self.assert_security_headers(headers)

    def test_cors_refuses_null_and_look_alike_origins(self):
        for origin in ("null", "https://app.example.evil.example",
                       "http://app.example", "https://APP.example", "*"):
            status, headers, _ = self.gw.request(
                "OPTIONS", "/v1/login",
                headers={"Origin": origin,
                         "Access-Control-Request-Method": "POST"})
            self.assertEqual(status, 403, origin)
            self.assertNotIn("access-control-allow-origin", headers)
            status, headers, _ = self.gw.request("GET", "/healthz",
                                                 headers={"Origin": origin})
            self.assertEqual(status, 403, origin)
            self.assertNotIn("access-control-allow-origin", headers)

    def test_cors_simple_request_from_configured_origin(self):
        status, headers, _ = self.gw.request("GET", "/healthz",
                                             headers={"Origin": ORIGIN})
        self.assertEqual(status, 200)
        self.assertEqual(headers["access-control-allow-origin"], ORIGIN)

    def test_request_id_from_untrusted_peer_is_replaced(self):
        _, headers, _ = self.gw.request("GET", "/healthz",
                                        headers={"X-Request-Id": "client-id"})
        self.assertNotEqual(headers["x-request-id"], "client-id")
        self.assertRegex(headers["x-request-id"], r"^[A-Za-z0-9_-]{22}$")

    def test_metrics_on_admin_port(self):
        self.gw.request("GET", "/healthz")
        status, headers, data = self.gw.request("GET", "/metrics",
                                                port=self.gw.admin_port)
        self.assertEqual(status, 200)
        self.assertIn("text/plain", headers["content-type"])
        text = data.decode()
        self.assertIn('cerrojo_gateway_requests_total{route="/healthz",'
                      'method="GET",status="200"}', text)
        self.assertIn("cerrojo_gateway_request_duration_seconds_bucket", text)
        self.assertIn("cerrojo_gateway_rejections_total", text)
        status, _, _ = self.gw.request("GET", "/metrics")
        self.assertEqual(status, 404)

    def test_access_log_has_fields_but_no_secrets(self):
        secret = "secret-token-5e1f"
        _, headers, _ = self.gw.request(
            "GET", "/v1/me?token=" + secret,
            headers={"Authorization": "Bearer " + secret,
                     "User-Agent": "agent-" + secret,
                     "Cerrojo-Session": secret,
                     "Cerrojo-Seal": secret})
        request_id = headers["x-request-id"]
        log = self.gw.log_with('"event":"gateway.request","request_id":"%s"'
                               % request_id)
        self.assertNotIn(secret, log)
        entries = [json.loads(l) for l in log.splitlines() if l.strip()]
        access = [e for e in entries if e.get("event") == "gateway.request"
                  and e.get("request_id") == request_id]
        self.assertEqual(len(access), 1, log[-3000:])
        for field in ("method", "route", "status", "duration_ms",
                      "request_id", "client_ip"):
            self.assertIn(field, access[0])


# The gateway's GW_CONNECTIONS_PER_IP_MAX.
CONNECTIONS_PER_IP = 64
# Maximum time a connection-limit test waits for the gateway to count a
# closed connection, in seconds.
CONNECTION_CLOSE_SECONDS = 5


def read_until_closed(sock):
    """Reads from `sock` until the peer closes it; raises socket.timeout
    when it stays open past the socket's timeout."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def parse_response(data):
    """Splits one raw HTTP/1.1 response into (status, headers, body)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


class ConnectionLimitTest(unittest.TestCase):
    """A client IP over the per-IP connection limit gets an HTTP response."""

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.gw.stop()
        finally:
            os.unlink(cls.gw.log.name)

    def open_held(self, count, source):
        """Opens `count` keep-alive connections from `source`, each after
        one completed request, and closes them at the end of the test."""
        held = []
        for _ in range(count):
            conn = http.client.HTTPConnection("127.0.0.1", self.gw.port,
                                              timeout=10,
                                              source_address=(source, 0))
            self.addCleanup(conn.close)
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200)
            self.assertFalse(resp.will_close)
            held.append(conn)
        return held

    def request_from(self, source, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port,
                                          timeout=10,
                                          source_address=(source, 0))
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    def over_limit_response(self, source, path="/healthz"):
        with socket.create_connection(("127.0.0.1", self.gw.port),
                                      timeout=10,
                                      source_address=(source, 0)) as sock:
            sock.sendall(b"GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                         % path.encode())
            return parse_response(read_until_closed(sock))

    def test_connection_over_limit_gets_429_and_close(self):
        held = self.open_held(CONNECTIONS_PER_IP, "127.0.0.3")
        status, headers, body = self.over_limit_response("127.0.0.3")
        self.assertEqual(status, 429)
        self.assertEqual(headers.get("content-type"), "application/json")
        self.assertEqual(headers.get("connection"), "close")
        self.assertEqual(headers.get("retry-after"), "1")
        self.assertRegex(headers.get("x-request-id", ""),
                         r"^[A-Za-z0-9_-]{22}$")
        for name, fragment in SECURITY_HEADERS.items():
            self.assertIn(fragment, headers.get(name, ""))
        error = json.loads(body)["error"]
        self.assertEqual(error["code"], "rate_limited")
        self.assertIn("connections", error["message"])
        self.assertEqual(error["request_id"], headers["x-request-id"])
        # The held connections still work.
        held[0].request("GET", "/healthz")
        resp = held[0].getresponse()
        resp.read()
        self.assertEqual(resp.status, 200)

    def test_health_served_while_one_ip_at_limit(self):
        self.open_held(CONNECTIONS_PER_IP, "127.0.0.4")
        self.assertEqual(self.over_limit_response("127.0.0.4")[0], 429)
        status, body = self.request_from("127.0.0.5", "/healthz")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body), {"status": "ok"})
        # Backends are down here, so /readyz returns 503 with its list.
        status, body = self.request_from("127.0.0.5", "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("kms", json.loads(body)["dependencies"])

    def test_closed_connection_frees_its_place(self):
        held = self.open_held(CONNECTIONS_PER_IP, "127.0.0.6")
        self.assertEqual(self.over_limit_response("127.0.0.6")[0], 429)
        held[0].close()
        # The gateway counts the close when its connection thread ends.
        deadline = time.monotonic() + CONNECTION_CLOSE_SECONDS
        status = None
        while time.monotonic() < deadline:
            status = self.request_from("127.0.0.6", "/healthz")[0]
            if status == 200:
                break
            time.sleep(0.1)
        self.assertEqual(status, 200)

    def test_rejections_are_counted_in_metrics(self):
        self.open_held(CONNECTIONS_PER_IP, "127.0.0.7")
        self.assertEqual(self.over_limit_response("127.0.0.7")[0], 429)
        _, _, data = self.gw.request("GET", "/metrics",
                                     port=self.gw.admin_port)
        match = re.search(r'cerrojo_gateway_rejections_total'
                          r'\{reason="connection_limit"\} (\d+)',
                          data.decode())
        self.assertIsNotNone(match)
        self.assertGreaterEqual(int(match.group(1)), 1)


class TrustedProxyTest(unittest.TestCase):
    def test_request_id_from_trusted_proxy_is_kept_when_valid(self):
        gw = Gateway({"CERROJO_GATEWAY_TRUSTED_PROXIES": "127.0.0.0/8"})
        try:
            _, headers, _ = gw.request("GET", "/healthz",
                                       headers={"X-Request-Id": "proxy-id.1"})
            self.assertEqual(headers["x-request-id"], "proxy-id.1")
            _, headers, _ = gw.request("GET", "/healthz",
                                       headers={"X-Request-Id": "bad id"})
            self.assertNotEqual(headers["x-request-id"], "bad id")
            gw.request("GET", "/healthz",
                       headers={"X-Forwarded-For": "198.51.100.7"})
            gw.request("GET", "/healthz",
                       headers={"X-Forwarded-For": "198.51.100.8:5555"})
            gw.request("GET", "/healthz",
                       headers={"X-Forwarded-For": "[2001:db8::9]:443"})
            log = gw.log_with('"client_ip":"198.51.100.7"',
                              '"client_ip":"198.51.100.8"',
                              '"client_ip":"2001:db8::9"')
            self.assertIn('"client_ip":"198.51.100.7"', log)
            self.assertIn('"client_ip":"198.51.100.8"', log)
            self.assertIn('"client_ip":"2001:db8::9"', log)
        finally:
            gw.stop()
            os.unlink(gw.log.name)


class SilentBackendTest(unittest.TestCase):
    """A backend that accepts connections but never answers."""

    def test_silent_kms_gives_503_within_the_deadline(self):
        # The kernel completes the TCP handshake for a listening socket
        # that never calls accept(), so gRPC connects and then waits.
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            gw = Gateway({"CERROJO_KMS_ADDR": "127.0.0.1:%d"
                          % silent.getsockname()[1],
                          "CERROJO_GATEWAY_RPC_DEADLINE_MS": "500"})
            try:
                start = time.monotonic()
                status, headers, data = gw.request("GET", "/v1/keys")
                elapsed = time.monotonic() - start
                self.assertEqual(status, 503)
                self.assertEqual(json.loads(data)["error"]["code"],
                                 "unavailable")
                self.assertIn("retry-after", headers)
                # 500 ms deadline; the margin covers a loaded machine.
                self.assertLess(elapsed, 5)
            finally:
                gw.stop()
                os.unlink(gw.log.name)


class SettingsTest(unittest.TestCase):
    """Settings that are wrong, or only safe on a laptop, stop the start."""

    def run_gateway(self, extra_env, args=()):
        env = {"PATH": os.environ.get("PATH", ""),
               "CERROJO_ENV_FILE": "/dev/null"}
        env.update(extra_env)
        return subprocess.run([GATEWAY, *args], env=env, capture_output=True,
                              text=True, timeout=30)

    def test_unknown_arguments_are_named(self):
        cases = ((["--bogus"], "unknown command '--bogus'"),
                 (["healthcheck"], "GET /healthz"),
                 (["--print-config", "extra"], "unexpected argument 'extra'"))
        for args, expected in cases:
            with self.subTest(args=args):
                proc = self.run_gateway({}, args)
                self.assertEqual(proc.returncode, 2, proc.stderr)
                first_line = proc.stderr.splitlines()[0]
                self.assertIn(expected, first_line)
                self.assertIn("usage: cerrojo-gateway", proc.stderr)

    def test_help_options_print_the_usage(self):
        for args in (["--help"], ["-h"], ["--print-config", "--help"]):
            with self.subTest(args=args):
                proc = self.run_gateway({}, args)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertIn("usage: cerrojo-gateway", proc.stdout)

    def start_fails(self, extra_env, variable):
        """Checks that both the start and --print-config exit 2 with the
        same message, which names `variable`."""
        proc = self.run_gateway(extra_env)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(variable, proc.stderr)
        printed = self.run_gateway(extra_env, ["--print-config"])
        self.assertEqual(printed.returncode, 2, printed.stdout)
        self.assertEqual(printed.stdout, "")
        message = [line for line in proc.stderr.splitlines()
                   if line.startswith("cerrojo-gateway: ")]
        self.assertEqual(len(message), 1, proc.stderr)
        self.assertIn(message[0], printed.stderr.splitlines())
        return message[0]

    def test_plaintext_grpc_refused_outside_dev(self):
        self.start_fails({"CERROJO_PROFILE": "prod",
                          "CERROJO_GRPC_PLAINTEXT": "true",
                          "CERROJO_GATEWAY_TRUSTED_PROXIES": ""},
                         "CERROJO_GRPC_PLAINTEXT")

    def test_trusted_proxies_required_outside_dev(self):
        self.start_fails({"CERROJO_PROFILE": "stage",
                          "CERROJO_TLS_CA": "/ca.pem",
                          "CERROJO_GATEWAY_TLS_CERT": "/c.pem",
                          "CERROJO_GATEWAY_TLS_KEY": "/k.pem"},
                         "CERROJO_GATEWAY_TRUSTED_PROXIES")

    def test_wildcard_cors_origin_refused(self):
        self.start_fails({"CERROJO_GRPC_PLAINTEXT": "true",
                          "CERROJO_GATEWAY_CORS_ORIGINS": "*"},
                         "CERROJO_GATEWAY_CORS_ORIGINS")

    def test_tls_files_required_without_plaintext(self):
        self.start_fails({}, "CERROJO_TLS_CA")

    def test_malformed_port_refused(self):
        self.start_fails({"CERROJO_GRPC_PLAINTEXT": "true",
                          "CERROJO_GATEWAY_PORT": "http"},
                         "CERROJO_GATEWAY_PORT")

    def test_tls_files_required_in_prod(self):
        self.start_fails({"CERROJO_PROFILE": "prod"}, "CERROJO_TLS_CA")

    def test_invalid_trusted_proxy_is_named(self):
        for entry in ("garbage", "10.0.0.0/33", "10.0.0.1/8"):
            with self.subTest(entry):
                message = self.start_fails(
                    {"CERROJO_GRPC_PLAINTEXT": "true",
                     "CERROJO_GATEWAY_TRUSTED_PROXIES": "127.0.0.1, " + entry},
                    "CERROJO_GATEWAY_TRUSTED_PROXIES")
                self.assertIn("'%s'" % entry, message)

    def test_malformed_redis_addr_refused(self):
        self.start_fails({"CERROJO_GRPC_PLAINTEXT": "true",
                          "CERROJO_REDIS_ADDR": "redis"},
                         "CERROJO_REDIS_ADDR")

    def test_malformed_backend_addr_refused(self):
        message = self.start_fails({"CERROJO_GRPC_PLAINTEXT": "true",
                                    "CERROJO_SESSION_ADDR": "session port"},
                                   "CERROJO_SESSION_ADDR")
        self.assertIn("'session port'", message)

    def test_print_config_checks_tls_files(self):
        certs = tempfile.mkdtemp(prefix="gw-certs-")
        self.addCleanup(shutil.rmtree, certs)
        subprocess.run([os.path.join(ROOT, "scripts", "dev-certs.sh"), certs],
                       check=True, stdout=subprocess.DEVNULL)

        def files(cert, key):
            return {"CERROJO_TLS_CA": os.path.join(certs, "ca.pem"),
                    "CERROJO_GATEWAY_TLS_CERT": os.path.join(certs, cert),
                    "CERROJO_GATEWAY_TLS_KEY": os.path.join(certs, key)}

        proc = self.run_gateway(files("gateway.pem", "gateway.key"),
                                ["--print-config"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        proc = self.run_gateway(files("gateway.pem", "auth.key"),
                                ["--print-config"])
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(proc.stdout, "")
        self.assertIn("CERROJO_GATEWAY_TLS_KEY: ", proc.stderr)
        self.assertIn("is not the key of the certificate", proc.stderr)
        proc = self.run_gateway(files("other.pem", "other.key"),
                                ["--print-config"])
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn("does not verify against CERROJO_TLS_CA", proc.stderr)

    def test_print_config_lists_settings(self):
        proc = self.run_gateway({"CERROJO_GRPC_PLAINTEXT": "true"},
                                ["--print-config"])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("CERROJO_GATEWAY_PORT=8080", proc.stdout)


@unittest.skipUnless(os.environ.get("CERROJO_TEST_REDIS_PORT"),
                     "no test Redis (run scripts/test.sh); SKIPPED")
class RedisBackedTest(unittest.TestCase):
    """Rate limits and readiness against the real Redis of scripts/test.sh."""

    @classmethod
    def setUpClass(cls):
        addr = "%s:%s" % (os.environ.get("CERROJO_TEST_REDIS_HOST",
                                         "127.0.0.1"),
                          os.environ["CERROJO_TEST_REDIS_PORT"])
        cls.gw = Gateway({"CERROJO_REDIS_ADDR": addr,
                          "CERROJO_GATEWAY_TRUSTED_PROXIES": "127.0.0.1",
                          "CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE": "2",
                          "CERROJO_GATEWAY_HANDSHAKE_RATE_BURST": "2",
                          "CERROJO_GATEWAY_REGISTER_RATE_PER_MINUTE": "2",
                          "CERROJO_GATEWAY_REGISTER_RATE_BURST": "2"})

    @classmethod
    def tearDownClass(cls):
        try:
            cls.gw.stop()
        finally:
            os.unlink(cls.gw.log.name)

    def test_handshake_rate_limit_gives_429(self):
        # A fresh client address per run (behind the trusted proxy), so
        # that earlier runs against the same Redis do not count.
        client = "2001:db8::%x:%x" % (int.from_bytes(os.urandom(2), "big"),
                                        int.from_bytes(os.urandom(2), "big"))
        headers_in = {"Content-Type": "application/json",
                      "X-Forwarded-For": client}
        statuses = []
        for _ in range(3):
            status, headers, data = self.gw.request(
                "POST", "/v1/handshake", body=b"{}", headers=headers_in)
            statuses.append(status)
        self.assertEqual(statuses[:2], [400, 400])
        self.assert_rate_limited(status, headers, data)
        # Other routes have their own, larger bucket.
        status, _, _ = self.gw.request("POST", "/v1/login", body=b"{}",
                                       headers=headers_in)
        self.assertEqual(status, 400)
        # Another client is not limited.
        status, _, _ = self.gw.request(
            "POST", "/v1/handshake", body=b"{}",
            headers={"Content-Type": "application/json",
                     "X-Forwarded-For": client + ":1"})
        self.assertEqual(status, 400)

    def test_register_rate_limit_gives_429(self):
        client = "2001:db8::%x:%x" % (int.from_bytes(os.urandom(2), "big"),
                                        int.from_bytes(os.urandom(2), "big"))
        headers_in = {"Content-Type": "application/json",
                      "X-Forwarded-For": client}
        statuses = []
        for _ in range(3):
            status, headers, data = self.gw.request(
                "POST", "/v1/register", body=b"{}", headers=headers_in)
            statuses.append(status)
        # The bucket is spent before the body is read, so an invalid
        # body counts as a registration attempt too.
        self.assertEqual(statuses[:2], [400, 400])
        self.assert_rate_limited(status, headers, data)
        self.assertEqual(json.loads(data)["error"]["message"],
                         "Too many registrations from this address; "
                         "retry later.")
        # Login and handshake do not spend the register bucket.
        status, _, _ = self.gw.request("POST", "/v1/login", body=b"{}",
                                       headers=headers_in)
        self.assertEqual(status, 400)
        status, _, _ = self.gw.request("POST", "/v1/handshake", body=b"{}",
                                       headers=headers_in)
        self.assertEqual(status, 400)
        # Another client is not limited.
        status, _, _ = self.gw.request(
            "POST", "/v1/register", body=b"{}",
            headers={"Content-Type": "application/json",
                     "X-Forwarded-For": client + ":1"})
        self.assertEqual(status, 400)

    def assert_rate_limited(self, status, headers, data):
        self.assertEqual(status, 429)
        self.assertEqual(json.loads(data)["error"]["code"], "rate_limited")
        self.assertGreaterEqual(int(headers["retry-after"]), 1)

    def test_readyz_reports_redis_up(self):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            _, _, data = self.gw.request("GET", "/readyz")
            if json.loads(data)["dependencies"]["redis"] == "up":
                return
            time.sleep(0.1)
        self.fail("redis never reported up")


class RedisDownTest(unittest.TestCase):
    """The per-IP limiter fails closed when its Redis stops."""

    def test_limiter_without_redis_gives_503(self):
        redis = PrivateRedis()
        gw = None
        try:
            gw = Gateway({"CERROJO_REDIS_ADDR": redis.addr})
            status, _, _ = gw.request(
                "POST", "/v1/login", body=b"{}",
                headers={"Content-Type": "application/json"})
            self.assertEqual(status, 400)
            redis.stop()
            status, headers, data = gw.request(
                "POST", "/v1/login", body=b"{}",
                headers={"Content-Type": "application/json"})
            self.assertEqual(status, 503)
            self.assertEqual(json.loads(data)["error"]["code"], "unavailable")
            self.assertGreaterEqual(int(headers["retry-after"]), 1)
            self.assertIn("strict-transport-security", headers)
            self.assertIn("gateway.rate_limit_unavailable", gw.log_text())
            # Health probes are never limited, so /healthz still returns 200.
            status, _, _ = gw.request("GET", "/healthz")
            self.assertEqual(status, 200)
        finally:
            if gw is not None:
                gw.stop()
                os.unlink(gw.log.name)
            redis.remove()


# HealthCheckResponse{status: SERVING} in protobuf wire format.
HEALTH_SERVING = b"\x08\x01"
# Maximum time a readiness test waits for the gateway's first probe.
FIRST_PROBE_SECONDS = 10


class SheddingBackend:
    """A gRPC server on a free loopback port that reports SERVING to
    grpc.health.v1.Health/Check and rejects every other method with
    UNAVAILABLE, with a retry-after-seconds trailer when `retry_after` is
    set, like a service shedding load."""

    def __init__(self, retry_after):
        self.retry_after = retry_after
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((self,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.addr = "127.0.0.1:%d" % self.port
        self.server.start()

    def service(self, details):
        if details.method == "/grpc.health.v1.Health/Check":
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: HEALTH_SERVING)
        return grpc.unary_unary_rpc_method_handler(self.shed)

    def shed(self, request, context):
        if self.retry_after:
            context.set_trailing_metadata(
                (("retry-after-seconds", str(self.retry_after)),))
        context.abort(grpc.StatusCode.UNAVAILABLE, "busy")

    def stop(self):
        self.server.stop(0).wait()


class ReadinessTest(unittest.TestCase):
    """/readyz distinguishes a busy backend from a stopped one."""

    def start(self, retry_after):
        backend = SheddingBackend(retry_after)
        self.addCleanup(backend.stop)
        gw = Gateway({"CERROJO_KMS_ADDR": backend.addr,
                      "CERROJO_GATEWAY_RPC_DEADLINE_MS": "500"})
        self.addCleanup(os.unlink, gw.log.name)
        self.addCleanup(gw.stop)
        deadline = time.monotonic() + FIRST_PROBE_SECONDS
        while self.kms_state(gw) != "up" and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertEqual(self.kms_state(gw), "up")
        return backend, gw

    @staticmethod
    def kms_state(gw):
        _, _, data = gw.request("GET", "/readyz")
        return json.loads(data)["dependencies"]["kms"]

    @staticmethod
    def kms_marked_down(gw):
        for line in gw.log_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if (entry.get("event") == "gateway.dependency_state" and
                    entry.get("dependency") == "kms" and
                    entry.get("state") == "down"):
                return True
        return False

    def test_shedding_backend_stays_up(self):
        _, gw = self.start(retry_after=2)
        status, headers, _ = gw.request("GET", "/v1/keys")
        self.assertEqual(status, 503)
        # The backend's wait is passed on to the client.
        self.assertEqual(headers.get("retry-after"), "2")
        self.assertEqual(self.kms_state(gw), "up")
        self.assertFalse(self.kms_marked_down(gw))

    def test_unavailable_without_retry_after_is_probed(self):
        # The call marks kms down, but /readyz probes it first and finds
        # it serving.
        _, gw = self.start(retry_after=0)
        status, _, _ = gw.request("GET", "/v1/keys")
        self.assertEqual(status, 503)
        self.assertEqual(self.kms_state(gw), "up")

    def test_stopped_backend_turns_readiness_down(self):
        backend, gw = self.start(retry_after=2)
        backend.stop()
        status, _, _ = gw.request("GET", "/v1/keys")
        self.assertEqual(status, 503)
        self.assertEqual(self.kms_state(gw), "down")
        self.assertTrue(self.kms_marked_down(gw))


# The gateway's GW_BODY_DEADLINE_SECONDS.
BODY_DEADLINE_SECONDS = 10
# Maximum time a body-deadline test waits for the gateway to close a
# connection, in seconds.
BODY_TEST_SECONDS = 20


def slow_body_headers(length):
    return (b"POST /v1/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % length)


def closed_by_peer(sock):
    """Returns True when the peer has closed `sock` (reads nothing)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(4096) == b""
    except ConnectionResetError:
        return True


class BodyDeadlineTest(unittest.TestCase):
    """Every request body must arrive within the gateway's deadline."""

    @classmethod
    def setUpClass(cls):
        cls.gw = Gateway()

    @classmethod
    def tearDownClass(cls):
        try:
            cls.gw.stop()
        finally:
            os.unlink(cls.gw.log.name)

    def test_trickled_and_stalled_bodies_are_cut(self):
        # One client sends a byte every second, the other one byte and
        # then nothing; both declared 1000 bytes.
        trickle = socket.create_connection(("127.0.0.1", self.gw.port))
        stalled = socket.create_connection(("127.0.0.1", self.gw.port))
        closed_after = {}
        start = time.monotonic()

        try:
            trickle.sendall(slow_body_headers(1000) + b"{")
            stalled.sendall(slow_body_headers(1000) + b"{")
            sent = 1
            while (len(closed_after) < 2 and
                   time.monotonic() - start < BODY_TEST_SECONDS):
                time.sleep(0.2)
                elapsed = time.monotonic() - start
                if "trickle" not in closed_after and elapsed >= sent:
                    try:
                        trickle.sendall(b" ")
                        sent += 1
                    except (BrokenPipeError, ConnectionResetError):
                        closed_after["trickle"] = elapsed
                for name, sock in (("trickle", trickle),
                                   ("stalled", stalled)):
                    if name not in closed_after and closed_by_peer(sock):
                        closed_after[name] = elapsed
        finally:
            trickle.close()
            stalled.close()

        self.assertIn("trickle", closed_after)
        self.assertIn("stalled", closed_after)
        # Cut at the first byte after the deadline: about 1 s late at most.
        self.assertGreaterEqual(closed_after["trickle"],
                                BODY_DEADLINE_SECONDS - 1)
        self.assertLess(closed_after["trickle"], BODY_DEADLINE_SECONDS + 3)
        # Cut by the shortened idle timeout, before the 15 s one.
        self.assertGreaterEqual(closed_after["stalled"],
                                BODY_DEADLINE_SECONDS - 1)
        self.assertLess(closed_after["stalled"], BODY_DEADLINE_SECONDS + 3)
        self.assertIn("gateway.body_deadline_exceeded", self.gw.log_text())
        self.assertEqual(self.gw.request("GET", "/healthz")[0], 200)

    def test_steady_upload_under_deadline_is_answered(self):
        body = b"{" + b" " * 598 + b"}"
        piece = 30
        with socket.create_connection(("127.0.0.1", self.gw.port),
                                      timeout=BODY_TEST_SECONDS) as sock:
            sock.sendall(slow_body_headers(len(body)))
            # 20 pieces every 0.25 s: about 5 s, half the deadline.
            for offset in range(0, len(body), piece):
                sock.sendall(body[offset:offset + piece])
                time.sleep(0.25)
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
        status_line = data.split(b"\r\n", 1)[0]
        # The whole body was read and checked: an empty object is not an
        # envelope, so the gateway returns 400 as it does to a fast client.
        self.assertEqual(status_line, b"HTTP/1.1 400 Bad Request")


if __name__ == "__main__":
    GATEWAY = sys.argv.pop(1)
    SHARED_REDIS = PrivateRedis()
    try:
        result = unittest.main(verbosity=2, exit=False).result
    finally:
        SHARED_REDIS.remove()
    sys.exit(0 if result.wasSuccessful() else 1)
