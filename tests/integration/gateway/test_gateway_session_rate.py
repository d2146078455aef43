#!/usr/bin/env python3
"""Integration test of the session rate limit on requests that open a
session. A register or login that carries client_secret spends a token
from the client IP's session bucket once the gateway has opened its body.
POST /v1/handshake spends the separate handshake bucket, so neither kind
of request empties the other's bucket. The real gateway, kms, session and
auth run from build/bin on the Postgres and Redis that scripts/test.sh
starts (without them the test exits 77, skipped), driven through the
`cerrojo` client.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "e2e"))

import e2e_harness as e2e  # noqa: E402,I100  (sets the import path)
import auth_harness as ah  # noqa: E402
import rpc_harness as h  # noqa: E402

REDIS_SCRIPT = os.path.join(HERE, "..", "..", "..", "scripts", "redis.sh")
REDIS_SCRIPT_TIMEOUT_S = 60

# Small buckets that refill slowly, so that each stays empty for the whole
# test once its burst is spent.
SESSION_BURST = 3
SESSION_PER_MINUTE = 1
HANDSHAKE_BURST = 2
HANDSHAKE_PER_MINUTE = 1
# Stateful logins beyond the burst that must all be rejected.
LOGINS_OVER_BURST = 2
CLI_EXIT_FAILED = 1
# The precise reason the gateway logs for such a rejection.
LOG_REASON = ("per-IP session rate limit: the request carries "
              "client_secret and would open a session")
# The client's trace line for a sealed response (CERROJO_TRACE=1).
TRACE_SEALED_429 = re.compile(r"trace: HTTP 429, \d+-byte sealed response")
HTTP_TIMEOUT_S = 10

stack = None
redis = None


class PrivateRedis:
    """A Redis for this test's gateway alone. The buckets are kept in Redis
    per client IP, and every test sends from 127.0.0.1, so a bucket that
    this test empties in the shared test Redis would reject the next
    test's handshakes."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="gw-session-rate-")
        self.port = h.free_port()
        subprocess.run([REDIS_SCRIPT, "start", self.dir, str(self.port)],
                       check=True, capture_output=True,
                       timeout=REDIS_SCRIPT_TIMEOUT_S)

    def remove(self):
        subprocess.run([REDIS_SCRIPT, "stop", self.dir, str(self.port)],
                       check=True, capture_output=True,
                       timeout=REDIS_SCRIPT_TIMEOUT_S)
        shutil.rmtree(self.dir, ignore_errors=True)


def setUpModule():
    global stack, redis
    e2e.require_env()
    redis = PrivateRedis()
    try:
        stack = e2e.E2EStack(gateway_env={
            "CERROJO_REDIS_HOST": "127.0.0.1",
            "CERROJO_REDIS_PORT": str(redis.port),
            "CERROJO_REDIS_ADDR": "127.0.0.1:%d" % redis.port,
            "CERROJO_GATEWAY_HANDSHAKE_RATE_PER_MINUTE":
                str(HANDSHAKE_PER_MINUTE),
            "CERROJO_GATEWAY_HANDSHAKE_RATE_BURST": str(HANDSHAKE_BURST),
            "CERROJO_GATEWAY_SESSION_RATE_PER_MINUTE":
                str(SESSION_PER_MINUTE),
            "CERROJO_GATEWAY_SESSION_RATE_BURST": str(SESSION_BURST),
        }).start()
    except BaseException:
        # unittest skips tearDownModule when setUpModule fails.
        redis.remove()
        raise


def tearDownModule():
    try:
        if stack is not None:
            stack.stop()
    finally:
        if redis is not None:
            redis.remove()


def post_handshake():
    """POSTs an empty JSON object to /v1/handshake, which spends a token
    from the handshake bucket before the body is read. Returns the HTTP
    status: 400 while the bucket has tokens, 429 once it is empty."""
    request = urllib.request.Request(
        stack.gateway.url + "/v1/handshake", data=b"{}", method="POST",
        headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
            return resp.status
    except urllib.error.HTTPError as error:
        if error.code == 429:
            code = json.loads(error.read())["error"]["code"]
            assert code == "rate_limited", code
        return error.code


def run_traced(client, *args):
    """Runs cerrojo ARGS with CERROJO_TRACE=1; returns (status, stderr)."""
    env = dict(os.environ, CERROJO_TRACE="1")
    proc = subprocess.run(client.argv(*args), capture_output=True, text=True,
                          env=env, timeout=e2e.CLIENT_TIMEOUT_S)
    return proc.returncode, proc.stderr


class SessionRateTest(unittest.TestCase):
    def test_session_logins_over_burst_get_429(self):
        # The handshake bucket gets one token spent before the logins and
        # one after, so that each kind of request is seen not to empty the
        # other's bucket.
        self.assertEqual(post_handshake(), 400)
        client = e2e.Client(stack)
        name = ah.random_name("r")
        client.set_password(ah.strong_password())
        # A stateless register carries no client_secret and spends nothing
        # from the session bucket.
        client.ok("register", "--username", name, "--email",
                  name + "@example.com", "--password-file",
                  client.password_file, "--stateless")
        login = ("login", "--login", name, "--password-file",
                 client.password_file)
        results = [run_traced(client, *login, "--stateful")
                   for _ in range(SESSION_BURST + LOGINS_OVER_BURST)]

        for status, err in results[:SESSION_BURST]:
            self.assertEqual(status, 0, err)
        for status, err in results[SESSION_BURST:]:
            self.assertEqual(status, CLI_EXIT_FAILED, err)
            self.assertIn("HTTP 429", err)
            self.assertIn("(rate_limited)", err)
            self.assertRegex(err, r"retry after \d+ s")
            self.assertRegex(err, TRACE_SEALED_429)
            self.assertIn("open a session", err)
            self.assertIn("--stateless", err)
        log = stack.gateway.log()
        self.assertEqual(log.count(LOG_REASON), LOGINS_OVER_BURST, log[-4000:])

        # The logins left the handshake bucket's second token in place.
        self.assertEqual(post_handshake(), 400)
        self.assertEqual(post_handshake(), 429)

        # A login without client_secret opens no session, so the empty
        # session bucket does not stop it.
        status, _, err = client.run(*login, "--stateless")
        self.assertEqual(status, 0, err)

    def test_session_register_over_burst_gets_429(self):
        # The previous test, or this one's own registers, empty the bucket.
        statuses = []
        for _ in range(SESSION_BURST + 1):
            client = e2e.Client(stack)
            name = ah.random_name("s")
            client.set_password(ah.strong_password())
            statuses.append(client.run(
                "register", "--username", name, "--email",
                name + "@example.com", "--password-file",
                client.password_file, "--stateful"))
        status, _, err = statuses[-1]
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("HTTP 429", err)
        self.assertIn("(rate_limited)", err)


if __name__ == "__main__":
    unittest.main()
