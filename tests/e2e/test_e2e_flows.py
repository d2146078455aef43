"""End-to-end: the `cerrojo` client through the gateway over real kms,
session, auth, Postgres and Redis, for every flow in both sealing modes,
epoch rotation, logout of every device, refresh reuse, and a kms or
session restart in the middle of a client session."""

import base64
import hashlib
import http.client
import http.server
import json
import os
import re
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import e2e_harness as e2e  # noqa: I100  (sets the import path)
import auth_harness as ah  # noqa: E402

# A short epoch, so that three epochs pass within a test.
EPOCH_SECONDS = 2
# Maximum time the rotation test keeps sending requests until it has seen
# three epochs. Two rotations take about 2 epochs, but on a loaded machine
# one `cerrojo me` may take seconds, so the bound leaves room for several
# slow requests.
ROTATION_WAIT_SECONDS = EPOCH_SECONDS * 10
GRACE_SECONDS = 1
# Maximum number of bound sessions per user (CERROJO_SESSION_MAX_PER_USER).
# No other test here opens more than this many sessions for one user.
SESSIONS_PER_USER = 3
# Login throttle: the third attempt in a streak sets a wait of
# THROTTLE_DELAY_S, far from the gateway's own Retry-After of 5 s.
FREE_ATTEMPTS = 3
THROTTLE_DELAY_S = 40
# Every client here logs in from 127.0.0.1, so the per-address streak
# would count the failed logins of all tests together. Its limit is
# checked in integration.auth_flows instead.
ADDRESS_FREE_ATTEMPTS = 1000
# The gateway's JWKS refresh period, short so that its timer fires during
# a test.
JWKS_REFRESH_SECONDS = 2

# The gateway's default RPC deadline (CERROJO_GATEWAY_RPC_DEADLINE_MS).
GATEWAY_RPC_DEADLINE_S = 3
# Time the gateway's channel gets to notice that a service stopped.
STOP_SETTLE_SECONDS = 1
# Maximum wait for a restarted service to be reached again, in seconds. The first
# request after the restart ends the reconnect backoff and gets through, so
# the bound only leaves room for a loaded machine.
RECONNECT_SECONDS = 4

# The client's exit status for a usage error.
CLI_EXIT_USAGE = 2
# The client's exit status when a request failed.
CLI_EXIT_FAILED = 1
# How far a clock offset the client measured from the gateway may be from
# zero, both running on this machine, in milliseconds.
CLOCK_SLACK_MS = 5000
# Session's marker that its revocation cache is complete.
LOADED_MARKER = "cerrojo:revoked:loaded"
# auth's deadline for a call to session while the test points auth at an
# address where nothing listens: below the gateway's deadline, so that a
# logout returns before the gateway gives up on it.
AUTH_UNREACHABLE_TIMEOUT_MS = 1000
# How far a copied state file's sequence number is moved ahead of the
# original's: more than the original sends in a test, and within session's
# replay window of 128.
STALE_SEQUENCE_SKIP = 32

stack = None


def setUpModule():
    global stack
    e2e.require_env()
    stack = e2e.E2EStack(session_env={
        "CERROJO_SESSION_EPOCH_SECONDS": str(EPOCH_SECONDS),
        "CERROJO_SESSION_GRACE_SECONDS": str(GRACE_SECONDS),
        "CERROJO_SESSION_MAX_PER_USER": str(SESSIONS_PER_USER),
    }, gateway_env={
        "CERROJO_GATEWAY_JWKS_REFRESH_SECONDS": str(JWKS_REFRESH_SECONDS),
    }, auth_env={
        "CERROJO_AUTH_LOGIN_FREE_ATTEMPTS": str(FREE_ATTEMPTS),
        "CERROJO_AUTH_LOGIN_BASE_DELAY_MS": str(THROTTLE_DELAY_S * 1000),
        "CERROJO_AUTH_LOGIN_ADDRESS_FREE_ATTEMPTS": str(ADDRESS_FREE_ATTEMPTS),
    }).start()


def tearDownModule():
    if stack is not None:
        stack.stop()


def new_user(mode="--stateful"):
    """Registers a fresh user; returns its client and name."""
    client = e2e.Client(stack)
    name = ah.random_name("e")
    client.set_password(ah.strong_password())
    client.ok("register", "--username", name, "--email",
              name + "@example.com", "--password-file", client.password_file,
              mode)
    return client, name


def write_state(client, state):
    """Replaces the client's state file, keeping its mode."""
    with open(client.state, "w") as f:
        json.dump(state, f)


def write_state_text(client, text):
    """Replaces the client's state file with text, keeping its mode."""
    with open(client.state, "w") as f:
        f.write(text)


# Trace lines of the client (CERROJO_TRACE=1): the sealed request with its
# AEAD and envelope size, and the size of the response.
TRACE_SEALED_STATELESS = re.compile(
    r"trace: (\S+) (\S+) sealed stateless: HPKE X25519 to key \d+, "
    r"(\S+), (\d+)-byte envelope")
TRACE_SEALED_STATEFUL = re.compile(
    r"trace: (\S+) (\S+) sealed stateful: \S+ epoch \d+, sequence \d+, "
    r"(\d+)-byte envelope")
TRACE_SEALED_RESPONSE = re.compile(r"trace: HTTP (\d+), (\d+)-byte sealed "
                                   r"response")
# The stateless response nonce is max(Nn, Nk) bytes of the AEAD.
RESPONSE_NONCE_BYTES = {"AES-128-GCM": 16, "AES-256-GCM": 32,
                        "ChaCha20-Poly1305": 32}
AEAD_TAG_BYTES = 16
PAD_BLOCK_BYTES = 256


def traced(client, *args, stdin=None):
    """Runs cerrojo ARGS with CERROJO_TRACE=1; returns the exit status,
    the sealed request's (method, path, AEAD, envelope size), the response
    size, and stderr."""
    env = dict(os.environ, CERROJO_TRACE="1")
    proc = subprocess.run(client.argv(*args), input=stdin,
                          capture_output=True, text=True, env=env,
                          timeout=e2e.CLIENT_TIMEOUT_S)
    requests = TRACE_SEALED_STATELESS.findall(proc.stderr)
    responses = TRACE_SEALED_RESPONSE.findall(proc.stderr)
    if not requests or not responses:
        raise AssertionError("no sealed request or response in the trace:\n"
                             + proc.stderr)
    method, path, aead, size = requests[-1]
    return (proc.returncode, (method, path, aead, int(size)),
            int(responses[-1][1]), proc.stderr)


def response_plaintext_bytes(envelope_bytes, aead):
    """The plaintext length inside a stateless response envelope
    {"v":1,"nonce":"...","ct":"..."} of envelope_bytes bytes."""
    fixed = len('{"v":1,"nonce":"","ct":""}')
    nonce_chars = len(base64.urlsafe_b64encode(
        bytes(RESPONSE_NONCE_BYTES[aead])).rstrip(b"="))
    ct_chars = envelope_bytes - fixed - nonce_chars
    return ct_chars * 3 // 4 - AEAD_TAG_BYTES


class Padding(unittest.TestCase):
    def register_with(self, password):
        client = e2e.Client(stack)
        name = ah.random_name("p")
        client.set_password(password)
        client.ok("register", "--username", name, "--email",
                  name + "@example.com", "--password-file",
                  client.password_file, "--stateless")
        return client, name

    def test_logins_seal_to_equal_sizes(self):
        # Names of equal length and passwords of 25 and 200 characters:
        # both login bodies fit in one padding block.
        short = ah.strong_password()
        long = "".join(ah.strong_password() for _ in range(8))
        self.assertEqual(len(long) - len(short), 175)
        sizes = []
        for password in (short, long):
            client, name = self.register_with(password)
            status, request, response, err = traced(
                client, "login", "--login", name, "--password-file",
                client.password_file, "--stateless")
            self.assertEqual(status, 0, err)
            self.assertEqual(request[:2], ("POST", "/v1/login"))
            sizes.append(request[3])
            # The padded response opened and parsed: the login stored tokens.
            self.assertIn("tokens", client.saved_state())
        self.assertEqual(sizes[0], sizes[1])

    def test_stateful_logins_seal_to_equal_sizes(self):
        # A stateful login also carries the 62-byte client_secret member,
        # so the passwords of 25 and 125 characters still share a block.
        short = ah.strong_password()
        long = "".join(ah.strong_password() for _ in range(5))
        self.assertEqual(len(long) - len(short), 100)
        sizes = []
        for password in (short, long):
            client, name = self.register_with(password)
            status, request, response, err = traced(
                client, "login", "--login", name, "--password-file",
                client.password_file, "--stateful")
            self.assertEqual(status, 0, err)
            self.assertEqual(request[:2], ("POST", "/v1/login"))
            sizes.append(request[3])
            self.assertIn("session", client.saved_state())
        self.assertEqual(sizes[0], sizes[1])

    def test_stateful_requests_seal_to_equal_sizes(self):
        client, _ = new_user("--stateful")
        env = dict(os.environ, CERROJO_TRACE="1")
        sizes = []
        for value in ("x" * 5, "x" * 105):
            proc = subprocess.run(
                client.argv("data", "put", "private"), input=value,
                capture_output=True, text=True, env=env,
                timeout=e2e.CLIENT_TIMEOUT_S)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            requests = TRACE_SEALED_STATEFUL.findall(proc.stderr)
            self.assertTrue(requests, proc.stderr)
            self.assertEqual(requests[-1][:2],
                             ("PUT", "/v1/me/data/private"))
            sizes.append(int(requests[-1][2]))
        self.assertEqual(sizes[0], sizes[1])

    def test_responses_are_padded_to_blocks(self):
        client, name = self.register_with(ah.strong_password())
        status, request, response, err = traced(client, "me")
        self.assertEqual(status, 0, err)
        self.assertEqual(request[:2], ("GET", "/v1/me"))
        self.assertEqual(response_plaintext_bytes(response, request[2])
                         % PAD_BLOCK_BYTES, 0)
        status, request, response, err = traced(
            client, "data", "put", "private", stdin="x" * 37)
        self.assertEqual(status, 0, err)
        self.assertEqual(response_plaintext_bytes(response, request[2])
                         % PAD_BLOCK_BYTES, 0)
        self.assertEqual(client.ok("me")["username"], name)


class Stateful(unittest.TestCase):
    def test_stateful_flow_end_to_end(self):
        client, name = new_user("--stateful")
        state = client.saved_state()
        self.assertIn("session", state)
        self.assertEqual(client.ok("me")["username"], name)

        client.ok("data", "put", "public", stdin='{"nick":"pub"}')
        client.ok("data", "put", "private", stdin='{"phone":"123"}')
        client.ok("data", "put", "protected", stdin="kept audited")
        self.assertEqual(client.ok("data", "get", "public")["fields"],
                         {"nick": "pub"})
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"phone": "123"})
        self.assertEqual(client.ok("data", "get", "protected")["fields"],
                         {"value": "kept audited"})

        before = client.saved_state()["tokens"]["refresh_token"]
        client.ok("refresh")
        self.assertNotEqual(client.saved_state()["tokens"]["refresh_token"],
                            before)
        client.ok("logout")

        # The session and tokens are gone from the state; a copy of the
        # old state must not work either.
        status, _, _ = client.run("me")
        self.assertNotEqual(status, 0)

    def test_old_session_state_fails_after_logout(self):
        client, _ = new_user("--stateful")
        client.ok("me")
        stale = client.copy_state()
        client.ok("logout")
        for command in ("me", "refresh"):
            status, _, err = stale.run(command)
            self.assertEqual(status, CLI_EXIT_FAILED, err)
            # The session cannot come back, so the error names the next step.
            self.assertIn("rejected the session", err)
            self.assertIn("Run 'cerrojo login' to log in again", err)
            self.assertIn("(invalid_token)", err)

    def test_clock_ahead_once_keeps_session(self):
        client, name = new_user("--stateful")
        client.ok("me")
        state = client.saved_state()
        offset = state.get("clock_offset_ms", 0)
        epoch = state["session"]["epoch"]
        seq = state["session"]["seq"]
        # Five epochs ahead, where the server rejects the request.
        state["clock_offset_ms"] = offset + EPOCH_SECONDS * 1000 * 5
        write_state(client, state)
        status, _, err = client.run("me")
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("(decryption_failed)", err)
        state = client.saved_state()
        self.assertEqual(state["session"]["epoch"], epoch)
        # The rejected request's sequence number is not used again.
        self.assertEqual(state["session"]["seq"], seq + 1)

        state["clock_offset_ms"] = offset
        write_state(client, state)
        self.assertEqual(client.ok("me")["username"], name)
        self.assertGreater(client.saved_state()["session"]["seq"], seq + 1)

    def test_unopenable_session_says_login(self):
        client, _ = new_user("--stateful")
        client.ok("me")
        state = client.saved_state()
        # A key the server never derived, as after its keys were lost.
        state["session"]["epoch_key"] = base64.urlsafe_b64encode(
            os.urandom(32)).decode().rstrip("=")
        write_state(client, state)
        for _ in range(2):
            status, _, err = client.run("me")
            self.assertEqual(status, CLI_EXIT_FAILED, err)
            self.assertIn("(decryption_failed)", err)
            self.assertIn("run 'cerrojo login' to log in again", err)
            self.assertIn("unsealed response:", err)
            self.assertNotIn("handshake", err)

    def test_handshake_without_login_says_no_user(self):
        client = e2e.Client(stack)
        client.ok("handshake")
        for args in (("me",), ("data", "get", "private")):
            status, _, err = client.run(*args)
            self.assertEqual(status, CLI_EXIT_FAILED, err)
            self.assertIn("no user is logged in on this session", err)
            self.assertIn("Run 'cerrojo login' to log in", err)
            self.assertNotIn("login has ended", err)

    def test_handshake_with_login_rejected(self):
        client, name = new_user("--stateful")
        with open(client.state) as f:
            before = f.read()
        status, _, err = client.run("handshake")
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("contains a login", err)
        self.assertIn("Run 'cerrojo logout'", err)
        self.assertIn("'cerrojo login'", err)
        with open(client.state) as f:
            self.assertEqual(f.read(), before)
        self.assertEqual(client.ok("me")["username"], name)

    def check_family_revoked(self, name):
        """Checks that every refresh token of the user is revoked or used."""
        rows = stack.sql("SELECT count(*) FROM auth.refresh_tokens t JOIN "
                         "auth.users u ON u.id = t.user_id WHERE "
                         "u.username = '%s' AND t.revoked_at IS NULL AND "
                         "t.used_at IS NULL" % name)
        self.assertEqual(rows, [["0"]])

    def test_logout_on_unbound_session_revokes_tokens(self):
        client, name = new_user("--stateful")
        # A session that no user is logged in on, in place of the login's,
        # as an older client's handshake left it.
        other = e2e.Client(stack)
        other.ok("handshake")
        unbound = other.saved_state()
        state = client.saved_state()
        state["session"] = unbound["session"]
        state["clock_offset_ms"] = unbound.get("clock_offset_ms", 0)
        write_state(client, state)
        status, _, err = client.run("me")
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("no user is logged in on this session", err)
        stale = client.copy_state()

        client.ok("logout")
        self.assertNotIn("tokens", client.saved_state())
        self.check_family_revoked(name)
        # The stored tokens no longer work without the session either.
        state = stale.saved_state()
        del state["session"]
        write_state(stale, state)
        status, _, err = stale.run("me")
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("invalid_token", err)

    def test_logout_on_ended_session_revokes_tokens(self):
        client, name = new_user("--stateful")
        state = client.saved_state()
        # An id of the right length that the session service never issued.
        length = len(state["session"]["id"])
        state["session"]["id"] = base64.urlsafe_b64encode(
            os.urandom(length)).decode()[:length]
        write_state(client, state)
        client.ok("logout")
        self.assertNotIn("tokens", client.saved_state())
        self.check_family_revoked(name)

    def lose_session(self, client):
        """Deletes the client's session from Redis, as an expiry or a
        flush of Redis does."""
        session_id = client.saved_state()["session"]["id"]
        self.assertEqual(stack.redis("DEL", "cerrojo:sess:s:" + session_id),
                         "1")

    def test_logout_after_session_lost_revokes_family(self):
        client, name = new_user("--stateful")
        self.lose_session(client)
        status, _, err = client.run("me")
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("rejected the session", err)

        status, _, err = client.run("logout")
        self.assertEqual(status, 0, err + stack.logs())
        self.assertIn("no longer has this login's session", err)
        self.assertIn("revoked with the refresh token alone", err)
        state = client.saved_state()
        self.assertNotIn("tokens", state)
        self.assertNotIn("session", state)
        self.check_family_revoked(name)

    def test_logout_all_after_session_lost_says_so(self):
        client, name = new_user("--stateful")
        self.lose_session(client)
        status, _, err = client.run("logout", "--all")
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("only its own refresh tokens were revoked", err)
        self.assertIn("Other devices stay logged in", err)
        self.assertIn("'cerrojo logout --all'", err)
        self.assertNotIn("tokens", client.saved_state())
        self.check_family_revoked(name)

    def test_logout_on_unopenable_session_revokes_tokens(self):
        client, name = new_user("--stateful")
        state = client.saved_state()
        # A key the server never derived, so no request opens.
        state["session"]["epoch_key"] = base64.urlsafe_b64encode(
            os.urandom(32)).decode().rstrip("=")
        write_state(client, state)
        status, _, err = client.run("logout")
        self.assertEqual(status, 0, err + stack.logs())
        self.assertIn("revoked without it", err)
        self.assertNotIn("tokens", client.saved_state())
        self.check_family_revoked(name)

    def test_offset_behind_session_dropped(self):
        # A stateful login while this clock ran 10 min fast stores an
        # offset of -10 min; once the clock is corrected, that offset puts
        # the server before the session it created. The client drops it and
        # uses the system clock. (A system clock that itself is behind the
        # session's creation is still reported: unit.test_cjc_client.)
        client, name = new_user("--stateful")
        state = client.saved_state()
        state["clock_offset_ms"] = state.get("clock_offset_ms", 0) - 600000
        write_state(client, state)
        proc = subprocess.run(client.argv("me"), capture_output=True,
                              text=True, timeout=e2e.CLIENT_TIMEOUT_S,
                              env=dict(os.environ, CERROJO_TRACE="1"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("offset dropped", proc.stderr)
        self.assertEqual(client.saved_state()["clock_offset_ms"], 0)
        self.assertEqual(client.ok("me")["username"], name)
        client.ok("logout")

    def test_invalid_session_values_named(self):
        client, name = new_user("--stateful")
        good = client.saved_state()
        cases = (("session", "created_at_ms", 0,
                  "has an invalid session (created_at_ms)"),
                 (None, "clock_offset_ms", 2 ** 62,
                  "has an invalid clock offset (clock_offset_ms)"),
                 ("session", "id", "../../etc",
                  "has an invalid session (id)"),
                 ("session", "seq", 2 ** 53 - 1,
                  "has an invalid session (seq)"))
        for parent, member, value, message in cases:
            state = json.loads(json.dumps(good))
            (state[parent] if parent else state)[member] = value
            write_state(client, state)
            status, _, err = client.run("me")
            self.assertEqual(status, CLI_EXIT_USAGE, (member, err))
            self.assertIn("state file %s %s; run 'cerrojo login'" %
                          (client.state, message), err)
            self.assertNotIn("Correct the system clock", err)
        # The message's remedy works on the damaged file.
        client.ok("login", "--login", name, "--password-file",
                  client.password_file)
        self.assertEqual(client.ok("me")["username"], name)

    def test_clock_outside_window_measured_again(self):
        # Stateless only: this stack's 2 s epochs turn a stateful clock
        # error into an epoch the session cannot open, long before the
        # timestamp window of 60 s.
        client, name = new_user("--stateless")
        # Two minutes ahead, as a machine whose clock runs fast: the
        # gateway's sealed 409 carries its clock, and the client sets its
        # offset from it and sends the request once more.
        state = client.saved_state()
        state["clock_offset_ms"] = 120000
        write_state(client, state)
        status, _, _, err = traced(client, "me")
        self.assertEqual(status, 0, err)
        self.assertIn("clock offset measured again", err)
        offset = client.saved_state()["clock_offset_ms"]
        self.assertLess(abs(offset), CLOCK_SLACK_MS, offset)
        self.assertEqual(client.ok("me")["username"], name)

    def test_stateful_login_after_stateless_register(self):
        client, name = new_user("--stateless")
        client.ok("login", "--login", name, "--password-file",
                  client.password_file, "--stateful")
        self.assertIn("session", client.saved_state())
        self.assertEqual(client.ok("me")["username"], name)


class Stateless(unittest.TestCase):
    def test_stateless_flow_end_to_end(self):
        client, name = new_user("--stateless")
        state = client.saved_state()
        self.assertNotIn("session", state)
        self.assertEqual(client.ok("me")["username"], name)
        client.ok("data", "put", "private", stdin='{"k":"v"}')
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"k": "v"})
        client.ok("refresh")
        client.ok("me")

    def test_expired_access_token_is_refreshed_first(self):
        client, name = new_user("--stateless")
        state = client.saved_state()
        before = state["tokens"]["refresh_token"]
        # Pretend the access token expired: the client must refresh before
        # sealing it into a request, logout included.
        state["tokens"]["access_expires_at_ms"] = 0
        with open(client.state, "w") as f:
            json.dump(state, f)
        self.assertEqual(client.ok("me")["username"], name)
        after = client.saved_state()["tokens"]["refresh_token"]
        self.assertNotEqual(after, before)
        state = client.saved_state()
        state["tokens"]["access_expires_at_ms"] = 0
        with open(client.state, "w") as f:
            json.dump(state, f)
        client.ok("logout")
        rows = stack.sql("SELECT count(*) FROM auth.refresh_tokens t JOIN "
                         "auth.users u ON u.id = t.user_id WHERE "
                         "u.username = '%s' AND t.revoked_at IS NULL AND "
                         "t.used_at IS NULL" % name)
        self.assertEqual(rows, [["0"]])

    def test_protected_data_needs_stateful_session(self):
        client, _ = new_user("--stateless")
        for args, stdin in ((("get", "protected"), None),
                            (("put", "protected"), "x")):
            status, _, err = client.run("data", *args, stdin=stdin)
            self.assertEqual(status, CLI_EXIT_USAGE, err)
            self.assertIn("the protected class needs a stateful session",
                          err)
            self.assertIn("without --stateless", err)
            self.assertNotIn("unsealed response", err)

    def test_stateless_logout_revokes_access_token(self):
        client, _ = new_user("--stateless")
        stale = client.copy_state()
        client.ok("logout")
        # The copy still holds the access token, sealed inside requests.
        status, _, err = stale.run("me")
        self.assertNotEqual(status, 0)
        self.assertIn("invalid_token", err)
        status, _, err = stale.run("refresh")
        self.assertNotEqual(status, 0)

    def test_logout_revokes_copy_that_refreshed(self):
        client, name = new_user("--stateless")
        other = e2e.Client(stack)
        other.ok("login", "--login", name, "--password-file",
                 client.password_file, "--stateless")
        copy = client.copy_state()
        copy.ok("refresh")
        client.ok("logout")
        # The copy's access token came from the same refresh family.
        status, _, err = copy.run("me")
        self.assertNotEqual(status, 0)
        self.assertIn("invalid_token", err)
        # Another device of the same user keeps its own family.
        other.ok("me")

    def register_fails(self, username, email, password):
        """Registers with the given values; returns the client's stderr."""
        client = e2e.Client(stack)
        client.set_password(password)
        status, _, err = client.run(
            "register", "--username", username, "--email", email,
            "--password-file", client.password_file, "--stateless")
        self.assertNotEqual(status, 0)
        return err

    def test_short_password_error_names_the_rule(self):
        name = ah.random_name("e")
        err = self.register_fails(name, name + "@example.com", "Ab1!x")
        self.assertIn("invalid_request", err)
        self.assertIn("The password is too short: at least 10 characters.",
                      err)
        self.assertNotIn("Ab1!x", err)

    def test_bad_email_error_names_the_rule(self):
        name = ah.random_name("e")
        err = self.register_fails(name, name + "-at-example.com",
                                  ah.strong_password())
        self.assertIn("invalid_request", err)
        self.assertIn("email must contain exactly one @", err)

    def test_taken_username_error_says_so(self):
        _, name = new_user("--stateless")
        err = self.register_fails(name, ah.random_name() + "@example.com",
                                  ah.strong_password())
        self.assertIn("conflict", err)
        self.assertIn("username is taken", err)

    def test_wrong_password_and_unknown_user_fail_alike(self):
        client, name = new_user("--stateless")
        other = e2e.Client(stack)
        other.set_password("Wrong-Password-4242")
        status_wrong, _, err_wrong = other.run(
            "login", "--login", name, "--password-file",
            other.password_file, "--stateless")
        status_unknown, _, err_unknown = other.run(
            "login", "--login", ah.random_name("nobody"), "--password-file",
            other.password_file, "--stateless")
        self.assertNotEqual(status_wrong, 0)
        self.assertNotEqual(status_unknown, 0)
        self.assertIn("invalid_credentials", err_wrong)
        self.assertIn("invalid_credentials", err_unknown)

    def test_failed_login_keeps_saved_state(self):
        for mode in ("--stateless", "--stateful"):
            with self.subTest(mode=mode):
                client, name = new_user(mode)
                before = client.saved_state()
                client.set_password("Wrong-Password-4242")
                status, _, err = client.run(
                    "login", "--login", name, "--password-file",
                    client.password_file, mode)
                self.assertNotEqual(status, 0)
                self.assertIn("invalid_credentials", err)
                self.assertEqual(client.saved_state(), before)
                self.assertEqual(client.ok("me")["username"], name)


class LoginThrottle(unittest.TestCase):
    def throttle(self, login):
        """Fails to log in as `login` until auth throttles it; returns the
        client's stderr of the throttled attempt and its Retry-After."""
        client = e2e.Client(stack)
        client.set_password("Wrong-Password-4242")
        for _ in range(FREE_ATTEMPTS):
            status, _, err = client.run("login", "--login", login,
                                        "--password-file",
                                        client.password_file, "--stateless")
            self.assertNotEqual(status, 0)
            self.assertIn("invalid_credentials", err)
        status, _, err = client.run("login", "--login", login,
                                    "--password-file", client.password_file,
                                    "--stateless")
        self.assertNotEqual(status, 0)
        self.assertIn("rate_limited", err)
        match = re.search(r"retry after (\d+) s", err)
        self.assertIsNotNone(match, err)
        return err, int(match.group(1))

    def auth_wait(self):
        """The wait auth computed for its latest throttled login."""
        rows = stack.sql("SELECT detail->>'retry_after_s' FROM "
                         "auth.audit_events WHERE event = 'login.failure' "
                         "AND detail->>'reason' = 'throttled' "
                         "ORDER BY id DESC LIMIT 1")
        self.assertEqual(len(rows), 1)
        return int(rows[0][0])

    def test_retry_after_is_auths_wait(self):
        _, name = new_user("--stateless")
        _, retry_after = self.throttle(name)
        self.assertLessEqual(abs(retry_after - self.auth_wait()), 1)
        self.assertGreater(retry_after, THROTTLE_DELAY_S - 5)
        self.assertLessEqual(retry_after, THROTTLE_DELAY_S)

    def test_unknown_name_throttled_alike(self):
        _, name = new_user("--stateless")
        err_known, retry_known = self.throttle(name)
        err_unknown, retry_unknown = self.throttle(ah.random_name("nobody"))
        self.assertLessEqual(abs(retry_unknown - self.auth_wait()), 1)
        self.assertLessEqual(abs(retry_known - retry_unknown), 2)
        # The error text differs only in the request id and the seconds.
        self.assertEqual(self.shape(err_known), self.shape(err_unknown))

    @staticmethod
    def shape(err):
        err = re.sub(r"request [A-Za-z0-9_.-]+", "request ID", err)
        return re.sub(r"\d+", "N", err)


class Rotation(unittest.TestCase):
    def test_requests_follow_epochs_across_rotations(self):
        client, name = new_user("--stateful")
        seen = set()
        deadline = time.monotonic() + ROTATION_WAIT_SECONDS
        while time.monotonic() < deadline and len(seen) < 3:
            self.assertEqual(client.ok("me")["username"], name)
            seen.add(client.saved_state()["session"]["epoch"])
            time.sleep(EPOCH_SECONDS / 2)
        self.assertGreaterEqual(len(seen), 3, "epochs seen: %s" % seen)

    def test_idle_client_catches_up_several_epochs(self):
        client, name = new_user("--stateful")
        client.ok("me")
        first = client.saved_state()["session"]["epoch"]
        time.sleep(EPOCH_SECONDS * 3 + 0.5)
        self.assertEqual(client.ok("me")["username"], name)
        self.assertGreaterEqual(client.saved_state()["session"]["epoch"],
                                first + 3)


class Devices(unittest.TestCase):
    def test_logout_all_ends_every_device(self):
        laptop, name = new_user("--stateful")
        phone = e2e.Client(stack)
        phone.password_file = laptop.password_file
        phone.ok("login", "--login", name, "--password-file",
                 phone.password_file, "--stateful")
        tablet = e2e.Client(stack)
        tablet.ok("login", "--login", name, "--password-file",
                  laptop.password_file, "--stateless")
        for device in (laptop, phone, tablet):
            device.ok("me")
        phone_copy = phone.copy_state()
        tablet_copy = tablet.copy_state()

        proc = subprocess.run(
            [arg for arg in laptop.argv("logout", "--all") if arg != "--json"],
            capture_output=True, text=True, timeout=e2e.CLIENT_TIMEOUT_S)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertIn("logout --all: ok", proc.stdout)

        for device in (phone_copy, tablet_copy):
            status, _, _ = device.run("me")
            self.assertNotEqual(status, 0)
            status, _, _ = device.run("refresh")
            self.assertNotEqual(status, 0)

        # A login right after the logout gets tokens that work.
        laptop.ok("login", "--login", name, "--password-file",
                  laptop.password_file, "--stateless")
        self.assertEqual(laptop.ok("me")["username"], name)


def eviction_audits(name):
    """Returns the user's session.evicted events as [count, session hash]
    rows, oldest first."""
    return stack.sql(
        "SELECT a.detail->>'count', a.session_hash FROM auth.audit_events a "
        "JOIN auth.users u ON u.id = a.user_id WHERE u.username = '%s' "
        "AND a.event = 'session.evicted' ORDER BY a.id" % name)


def session_hash(client):
    """Returns the SHA-256 of the client's session id, in hex, as audit
    events store it."""
    session_id = client.saved_state()["session"]["id"]
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionLimit(unittest.TestCase):
    def test_login_past_limit_ends_oldest(self):
        oldest, name = new_user("--stateful")
        self.assertEqual(oldest.ok("me")["username"], name)
        evictions = stack.session.log().count("session.evicted_over_limit")
        newer = []
        for _ in range(SESSIONS_PER_USER):
            # Register and the logins so far leave the user within the
            # limit, so nothing has been evicted yet.
            self.assertEqual(eviction_audits(name), [])
            device = e2e.Client(stack)
            device.ok("login", "--login", name, "--password-file",
                      oldest.password_file, "--stateful")
            newer.append(device)

        for command in ("me", "refresh"):
            status, _, err = oldest.run(command)
            self.assertEqual(status, CLI_EXIT_FAILED, err)
            self.assertIn("rejected the session", err)
            self.assertIn("(invalid_token)", err)
        for device in newer:
            self.assertEqual(device.ok("me")["username"], name)
        self.assertEqual(
            stack.session.log().count("session.evicted_over_limit"),
            evictions + 1)
        # The last login ended one session, and the audit event names the
        # session that login bound.
        self.assertEqual(eviction_audits(name),
                         [["1", session_hash(newer[-1])]])


# Commands started at once on one state file. They take its lock in turn,
# so each one must succeed.
CONCURRENT_COMMANDS = 12


class SharedStateFile(unittest.TestCase):
    def test_concurrent_commands_on_one_state_succeed(self):
        client, _ = new_user("--stateful")
        client.ok("data", "put", "private", stdin='{"k":"v"}')
        seq_before = client.saved_state()["session"]["seq"]
        procs = [subprocess.Popen(client.argv("data", "get", "private"),
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
                 for _ in range(CONCURRENT_COMMANDS)]
        outputs = []
        for proc in procs:
            try:
                out, err = proc.communicate(timeout=e2e.CLIENT_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, err = proc.communicate()
            outputs.append((proc.returncode, out, err))
        for status, out, err in outputs:
            self.assertEqual(status, 0, err)
            self.assertEqual(json.loads(out)["result"]["fields"],
                             {"k": "v"})
        # Every command used its own sequence number and saved it.
        self.assertEqual(client.saved_state()["session"]["seq"],
                         seq_before + CONCURRENT_COMMANDS)


class RefreshReuse(unittest.TestCase):
    def test_reused_refresh_token_revokes_family(self):
        client, _ = new_user("--stateless")
        thief = client.copy_state()
        client.ok("refresh")
        # The thief presents the already-used token: reuse.
        status, _, err = thief.run("refresh")
        self.assertNotEqual(status, 0)
        self.assertIn("invalid_token", err)
        # The whole family is revoked, the legitimate successor too, and
        # so is the access token that came with it.
        status, _, err = client.run("me")
        self.assertNotEqual(status, 0)
        self.assertIn("invalid_token", err)
        status, _, _ = client.run("refresh")
        self.assertNotEqual(status, 0)
        rows = stack.sql("SELECT count(*) FROM auth.audit_events "
                         "WHERE event = 'refresh_reuse'")
        self.assertGreaterEqual(int(rows[0][0]), 1)


def restart_auth_with(env):
    """Restarts auth with env applied to its environment, where a value of
    None removes the variable."""
    stack.auth.stop()
    for name, value in env.items():
        if value is None:
            stack.auth.env.pop(name, None)
        else:
            stack.auth.env[name] = value
    stack.auth.start()
    stack.wait_serving(stack.auth)
    stack.wait_gateway_ready()


def wait_auth_reached(client):
    """Waits until client's `cerrojo me` gets through the gateway's
    reconnect backoff to the restarted auth."""
    deadline = time.monotonic() + RECONNECT_SECONDS
    while time.monotonic() < deadline:
        if client.run("me")[0] == 0:
            return
        time.sleep(0.1)
    raise AssertionError("auth was not reached again within %d s\n%s" %
                         (RECONNECT_SECONDS, stack.logs()))


class Restarts(unittest.TestCase):
    def test_session_survives_session_service_restart(self):
        client, name = new_user("--stateful")
        client.ok("me")
        stack.restart("session")
        stack.wait_cache_loaded()
        self.assertEqual(client.ok("me")["username"], name)
        client.ok("data", "put", "private", stdin='{"after":"restart"}')

    def check_undelivered_logout(self, *logout_args):
        """Runs `cerrojo logout ARGS` while auth cannot reach session, and
        checks that a copy of the state file then gets 503, and after the
        reload 401."""
        client, _ = new_user("--stateful")
        witness, _ = new_user("--stateful")
        client.ok("me")
        stale = client.copy_state()
        # The copy skips past the sequence numbers that the original uses
        # next, as anyone holding the file can, so the replay window does
        # not reject it.
        state = stale.saved_state()
        state["session"]["seq"] += STALE_SEQUENCE_SKIP
        write_state(stale, state)
        reachable = {
            name: stack.auth.env.get(name)
            for name in ("CERROJO_AUTH_SESSION_TARGET",
                         "CERROJO_AUTH_RPC_TIMEOUT_MS")}

        # No process listens on this port, so auth commits the logout but
        # cannot notify session, and deletes the cache's loaded marker. Its
        # call to session gives up well within the gateway's deadline.
        restart_auth_with({
            "CERROJO_AUTH_SESSION_TARGET":
                "127.0.0.1:%d" % ah.h.free_port(),
            "CERROJO_AUTH_RPC_TIMEOUT_MS": str(AUTH_UNREACHABLE_TIMEOUT_MS),
        })
        try:
            wait_auth_reached(client)
            client.ok("logout", *logout_args)
            self.assertEqual(stack.redis("EXISTS", LOADED_MARKER), "0")
            for args in (("me",), ("data", "get", "protected"),
                         ("data", "put", "protected")):
                status, _, err = stale.run(*args, stdin="after logout")
                self.assertEqual(status, CLI_EXIT_FAILED, err)
                self.assertIn("(unavailable)", err)
        finally:
            restart_auth_with(reachable)

        # The reload deletes the session, so the copy stays logged out.
        stack.wait_cache_loaded()
        wait_auth_reached(witness)
        status, _, err = stale.run("me")
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("(invalid_token)", err)

    def test_undelivered_logout_fails_closed(self):
        self.check_undelivered_logout()

    def test_undelivered_logout_all_fails_closed(self):
        self.check_undelivered_logout("--all")

    def test_tokens_survive_kms_restart(self):
        client, name = new_user("--stateful")
        client.ok("me")
        stack.restart("kms")
        # Signing (refresh) and unwrapping (private data) need kms.
        client.ok("refresh")
        client.ok("data", "put", "private", stdin='{"k":"after kms"}')
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"k": "after kms"})
        stateless, _ = new_user("--stateless")
        self.assertTrue(stateless.ok("me")["username"])

    def test_stopped_kms_fails_fast_then_recovers(self):
        keys = stack.gateway.url + "/v1/keys"
        stack.kms.stop()
        try:
            # Once kms's port refused a connection, a request waits a
            # short while for a new attempt, not the gateway's whole RPC
            # deadline.
            time.sleep(STOP_SETTLE_SECONDS)
            for _ in range(3):
                start = time.monotonic()
                self.assertEqual(http_status(keys), 503)
                self.assertLess(time.monotonic() - start,
                                GATEWAY_RPC_DEADLINE_S / 2)
        finally:
            stack.kms.start()
        # The channel is in reconnect backoff. A request must end it and
        # get through, not fail until the backoff runs out.
        deadline = time.monotonic() + RECONNECT_SECONDS
        while time.monotonic() < deadline:
            if http_status(keys) == 200:
                return
            time.sleep(0.1)
        self.fail("kms was not reached again within %d s\n%s" %
                  (RECONNECT_SECONDS, stack.logs()))


    def test_kms_outage_does_not_mark_auth_down(self):
        client, _ = new_user()
        client.ok("data", "put", "private", stdin='{"k":"v"}')
        auth_down = '"dependency":"auth","state":"down"'
        before = stack.gateway.log().count(auth_down)
        stack.kms.stop()
        try:
            time.sleep(STOP_SETTLE_SECONDS)
            # auth needs kms to open private data, so it replies that kms
            # is unavailable. auth itself is up, and the gateway, which
            # cannot tell auth's UNAVAILABLE from its own, must not mark
            # auth down for it.
            status, _, err = client.run("data", "get", "private")
            self.assertEqual(status, CLI_EXIT_FAILED, err)
            self.assertIn("503", err)
        finally:
            stack.kms.start()
        stack.wait_serving(stack.kms)
        self.assertEqual(stack.gateway.log().count(auth_down), before,
                         stack.gateway.log()[-4000:])
        client.ok("data", "get", "private")


class CommandLine(unittest.TestCase):
    def test_global_option_after_command_named(self):
        client = e2e.Client(stack)
        for args in (("login", "--login", "x", "--state", "other.json"),
                     ("data", "get", "private", "--url=http://x"),
                     ("me", "--json"), ("logout", "--pin", "x")):
            status, _, err = client.run(*args)
            self.assertEqual(status, CLI_EXIT_USAGE)
            self.assertIn("is a global option: put it before the command",
                          err)
            self.assertNotIn("ambiguous", err)

    def test_malformed_object_value_refused(self):
        client, _ = new_user("--stateless")
        cases = (('{"phone": }', "invalid JSON at line 1, column 11"),
                 ('{"a":"1","a":"2"}', "duplicate key"),
                 ('{"a":"x\\u0000"}', "\\u0000 inside a string"),
                 ('{"a":1}', 'field "a" is not a string'),
                 ('{"a":"1"', "incomplete JSON"))
        for value, reason in cases:
            status, _, err = client.run("data", "put", "private", stdin=value)
            self.assertEqual(status, CLI_EXIT_USAGE, value)
            self.assertIn("not a JSON object of string fields", err)
            self.assertIn(reason, err)
        self.assertEqual(client.ok("data", "get", "private")["fields"], {})

    def test_json_array_value_refused(self):
        client, _ = new_user("--stateless")
        client.ok("data", "put", "private", stdin="kept")
        for value in ("[1,2]\n", '\ufeff ["a", "b"]'):
            status, _, err = client.run("data", "put", "private",
                                        stdin=value)
            self.assertEqual(status, CLI_EXIT_USAGE, repr(value))
            self.assertIn("the value is a JSON array", err)
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"value": "kept"})
        # Text that only starts with '[' is still stored as "value".
        client.ok("data", "put", "private", stdin="[draft] note")
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"value": "[draft] note"})

    def test_empty_value_refused(self):
        client, _ = new_user("--stateless")
        client.ok("data", "put", "private", stdin="kept")
        for value in ("", "\n", "\ufeff"):
            status, _, err = client.run("data", "put", "private",
                                        stdin=value)
            self.assertEqual(status, CLI_EXIT_USAGE, repr(value))
            self.assertIn("the value is empty, so nothing was stored", err)
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"value": "kept"})
        # A field set to "" in an object is still deleted.
        client.ok("data", "put", "private", stdin='{"value":""}')
        self.assertEqual(client.ok("data", "get", "private")["fields"], {})

    def test_invalid_command_option_one_line(self):
        client = e2e.Client(stack)
        cases = ((("login", "--bogus", "x"),
                  "invalid option '--bogus' for login"),
                 (("register", "--bogus=1"),
                  "invalid option '--bogus' for register"),
                 (("login", "-x"), "invalid option '-x' for login"),
                 (("login", "--password-file"),
                  "option '--password-file' of login needs a value"),
                 (("data", "put", "private", "--bogus"),
                  "invalid option '--bogus' for data put"),
                 (("data", "put", "public", "--value-file"),
                  "option '--value-file' of data put needs a value"),
                 (("login", "--username", "ana", "--password-file", "pw"),
                  "--username and --email are options of register"),
                 (("register", "--login", "ana"),
                  "--login is an option of login"))
        for args, message in cases:
            status, _, err = client.run(*args)
            self.assertEqual(status, CLI_EXIT_USAGE, err)
            self.assertEqual(err.count("\n"), 1, err)
            self.assertIn(message, err)

    def test_invalid_field_set_not_sent(self):
        client, _ = new_user("--stateless")
        client.ok("data", "put", "private", stdin="kept")
        many = json.dumps({"k%d" % i: "v" for i in range(33)})
        cases = (("{}", "the JSON object has no fields"),
                 ('{"Name":"x"}', "invalid field name 'Name'"),
                 ('{"":"x"}', "invalid field name ''"),
                 ('{"a-b":"x"}', "invalid field name 'a-b'"),
                 ('{"%s":"x"}' % ("a" * 65), "'%s...'" % ("a" * 64)),
                 (many, "has 33 fields, but one 'data put' sets at most 32"))
        for value, reason in cases:
            status, _, err = client.run("data", "put", "private", stdin=value)
            self.assertEqual(status, CLI_EXIT_USAGE, err)
            self.assertIn(reason, err)
            self.assertNotIn("HTTP", err)
        client.ok("data", "put", "private",
                  stdin=json.dumps({"k%d" % i: "v" for i in range(32)}))
        client.ok("data", "put", "private", stdin='{"%s":"x"}' % ("a" * 64))
        fields = client.ok("data", "get", "private")["fields"]
        self.assertEqual(fields["value"], "kept")
        self.assertEqual(len(fields), 34)

    def test_value_newline_lf_or_crlf_dropped(self):
        client, _ = new_user("--stateless")
        for value, stored in (("a\r\nb\r\n", "a\r\nb"), ("x\n", "x"),
                              ("y\r\n", "y"), ("z\r", "z\r")):
            client.ok("data", "put", "private", stdin=value)
            fields = client.ok("data", "get", "private")["fields"]
            self.assertEqual(fields, {"value": stored}, repr(value))
        status, _, err = client.run("data", "put", "private", stdin="\r\n")
        self.assertEqual(status, CLI_EXIT_USAGE)
        self.assertIn("the value is empty, so nothing was stored", err)

    def test_unknown_global_option_named(self):
        binary = e2e.Client(stack).argv()[0]
        for args in (("--version",), ("--foo", "x", "keys"), ("--foo",)):
            proc = subprocess.run([binary] + list(args),
                                  capture_output=True, text=True,
                                  timeout=e2e.CLIENT_TIMEOUT_S)
            self.assertEqual(proc.returncode, CLI_EXIT_USAGE, proc.stderr)
            self.assertIn("unknown option '%s'" % args[0], proc.stderr)
            self.assertNotIn("needs a value", proc.stderr)

    def test_password_file_lines_rejected(self):
        client, name = new_user("--stateless")
        with open(client.password_file, "rb") as f:
            password = f.read().rstrip(b"\r\n")
        longer = self.write_file(client, "two-lines",
                                 password + b"\nsecondline\n")
        status, _, err = client.run("login", "--login", name,
                                    "--password-file", longer)
        self.assertEqual(status, CLI_EXIT_USAGE, err)
        self.assertIn("the password file has more than one line", err)
        self.assertNotIn("secondline", err)
        self.assertNotIn(password.decode(), err)
        # The same password with CRLF logs in.
        crlf = self.write_file(client, "crlf", password + b"\r\n")
        client.ok("login", "--login", name, "--password-file", crlf,
                  "--stateless")

    def test_password_file_folder_named(self):
        client = e2e.Client(stack)
        status, _, err = client.run("login", "--login", "ana",
                                    "--password-file", client.dir)
        self.assertEqual(status, CLI_EXIT_USAGE, err)
        self.assertIn("cannot read password file %s: Is a directory" %
                      client.dir, err)

    def test_url_with_path_rejected(self):
        client = e2e.Client(stack)
        for url in (stack.gateway.url + "/v1", stack.gateway.url + "?x=1"):
            argv = client.argv("keys")
            argv[argv.index("--url") + 1] = url
            proc = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=e2e.CLIENT_TIMEOUT_S)
            self.assertEqual(proc.returncode, CLI_EXIT_USAGE, proc.stderr)
            self.assertIn("invalid URL '%s': expected http://HOST:PORT or "
                          "https://HOST:PORT" % url, proc.stderr)

    def test_state_folder_rejected_before_lock(self):
        client = e2e.Client(stack)
        folder = os.path.join(client.dir, "folder")
        os.mkdir(folder, 0o777)
        os.chmod(folder, 0o777)
        for state in (folder, folder + "/"):
            argv = client.argv("me")
            argv[argv.index("--state") + 1] = state
            proc = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=e2e.CLIENT_TIMEOUT_S)
            self.assertEqual(proc.returncode, CLI_EXIT_USAGE, proc.stderr)
            self.assertIn("--state %s is a folder; name a file" % state,
                          proc.stderr)
            self.assertNotIn("chmod", proc.stderr)
        self.assertFalse(os.path.exists(folder + ".lock"))

    def write_file(self, client, name, data):
        """Writes data to a file in the client's folder and returns its path."""
        path = os.path.join(client.dir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_local_input_errors_exit_usage(self):
        client, name = new_user("--stateless")
        missing = os.path.join(client.dir, "missing")
        not_utf8 = self.write_file(client, "not-utf8", b"caf\xe9")
        too_large = self.write_file(client, "too-large", b"x" * 65537)
        cases = (
            (("login", "--login", name, "--password-file", missing),
             None, "cannot read password file " + missing),
            (("data", "put", "private", "--value-file", missing),
             None, "cannot read " + missing),
            (("login", "--login", os.fsdecode(b"\xff\xfe"),
              "--password-file", client.password_file),
             None, "invalid --login: the text is not valid UTF-8"),
            (("data", "put", "private", "--value-file", not_utf8),
             None, "the value is not valid UTF-8 text"),
            (("data", "put", "private", "--value-file", too_large),
             None, "larger than 65536 bytes (64 KiB)"),
            (("data", "put", "private"), "x" * 4097,
             "field 'value' is longer than 4096 bytes"),
            (("data", "put", "private"), json.dumps({"a": "y" * 4097}),
             "field 'a' is longer than 4096 bytes"),
            (("data", "put", "private"), "hello\0world",
             "contains a NUL byte at byte offset 5 of the input"),
            (("login", "--login", name, "--password-file",
              client.password_file, "--stateless", "--stateful"),
             None, "login takes --stateful or --stateless, not both"),
        )
        for args, stdin, message in cases:
            status, _, err = client.run(*args, stdin=stdin)
            self.assertEqual(status, CLI_EXIT_USAGE, (args, err))
            self.assertIn(message, err)
        self.assertEqual(client.ok("data", "get", "private")["fields"], {})
        # A value of exactly 4096 bytes is stored.
        client.ok("data", "put", "private", stdin="z" * 4096)
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"value": "z" * 4096})

    def test_damaged_state_file_named(self):
        client, name = new_user("--stateful")
        with open(client.state) as f:
            text = f.read()
        state = json.loads(text)
        token = state["tokens"]["refresh_token"]
        wrong_fields = dict(state, session={"id": state["session"]["id"]})
        cases = (
            (text[:text.index(token) + 20], "truncated"),
            ("refresh_token=" + token + "\n", "not valid JSON"),
            (json.dumps(wrong_fields), "session key"),
            (json.dumps(dict(state, version=99)), '"version" is not 1'),
        )
        for damaged, reason in cases:
            write_state_text(client, damaged)
            for args in (("me",), ("logout",), ("handshake",)):
                status, _, err = client.run(*args)
                self.assertEqual(status, CLI_EXIT_USAGE, (args, err))
                self.assertIn("state file %s is damaged" % client.state, err)
                self.assertIn(reason, err)
                self.assertIn("Remove it with rm '%s'," % client.state,
                              err)
                self.assertNotIn("handshake", err)
                self.assertNotIn(token[:20], err)
        # The advice works: without the file, a login starts afresh.
        os.remove(client.state)
        client.ok("login", "--login", name, "--password-file",
                  client.password_file)
        self.assertEqual(client.ok("me")["username"], name)
        self.assertEqual(client.saved_state()["version"], 1)

    def test_byte_order_mark_dropped_from_value(self):
        client, _ = new_user("--stateless")
        client.ok("data", "put", "private", stdin='\ufeff{"k":"v"}')
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"k": "v"})


def http_status(url):
    """Returns the HTTP status of a GET of url, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def token_kid(client):
    """The kid in the header of the client's access token."""
    token = client.saved_state()["tokens"]["access_token"]
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


class SigningKeyRotation(unittest.TestCase):
    def kms_command(self, *args):
        env = dict(stack.kms.env)
        env["CERROJO_KMS_PROMOTE_AFTER"] = "0"
        proc = subprocess.run([stack.kms.binary()] + list(args), env=env,
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)

    def jwks_refreshes(self, since):
        """The gateway's jwks_refreshed events logged after offset `since`."""
        events = []
        for line in stack.gateway.log()[since:].splitlines():
            if '"event":"gateway.jwks_refreshed"' in line:
                events.append(json.loads(line))
        return events

    def published_kids(self):
        with urllib.request.urlopen(stack.gateway.url
                                    + "/.well-known/jwks.json") as resp:
            return {key["kid"] for key in json.load(resp)["keys"]}

    def test_gateway_learns_new_key_on_its_timer(self):
        client, name = new_user("--stateless")
        client.ok("me")
        old_kid = token_kid(client)
        keys_before = len(self.published_kids())
        rotated_at = len(stack.gateway.log())
        self.kms_command("rotate", "signing")

        # Without any request, the timer fetches the set with the next key.
        deadline = time.monotonic() + JWKS_REFRESH_SECONDS * 3 + 5
        while time.monotonic() < deadline:
            if any(e["trigger"] == "timer" and e["keys"] > keys_before
                   for e in self.jwks_refreshes(rotated_at)):
                break
            time.sleep(0.2)
        else:
            self.fail("no timer refresh with the new key:\n" + stack.logs())

        self.kms_command("promote")
        promoted_at = len(stack.gateway.log())
        # kms picks up the promotion on its next reload (1 s here).
        deadline = time.monotonic() + 10
        while True:
            client.ok("login", "--login", name, "--password-file",
                      client.password_file, "--stateless")
            if token_kid(client) != old_kid:
                break
            self.assertLess(time.monotonic(), deadline,
                            "kms still signs with the old key")
            time.sleep(0.5)
        self.assertIn(token_kid(client), self.published_kids())
        self.assertEqual(client.ok("me")["username"], name)
        triggers = [e["trigger"] for e in self.jwks_refreshes(promoted_at)]
        self.assertNotIn("unknown_kid", triggers)


def post_stateful(path, session_id):
    """POSTs a well-formed stateful envelope that no session sealed with the
    given Cerrojo-Session; returns (status, error object)."""
    envelope = json.dumps({"v": 1, "epoch": 0, "seq": 1,
                           "ct": base64.urlsafe_b64encode(bytes(32))
                           .rstrip(b"=").decode()}).encode()
    request = urllib.request.Request(
        stack.gateway.url + path, data=envelope, method="POST",
        headers={"Content-Type": "application/json",
                 "Cerrojo-Session": session_id})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())["error"]


class SessionHeader(unittest.TestCase):
    def test_unknown_session_id_is_401(self):
        status, error = post_stateful("/v1/logout", "A" * 22)
        self.assertEqual(status, 401)
        self.assertEqual(error["code"], "invalid_token")
        self.assertIn("handshake", error["message"])

    def test_session_id_of_other_length_is_400(self):
        # Inside the 16 to 64 characters that the envelope format admits,
        # but of a length that session never issues.
        for length in (16, 21, 23, 64):
            with self.subTest(length):
                status, error = post_stateful("/v1/logout", "A" * length)
                self.assertEqual(status, 400)
                self.assertEqual(error["code"], "invalid_request")
                self.assertIn("Cerrojo-Session", error["message"])


def sealed_request_with_token(client, path, body):
    """Sends a stateless sealed POST with the client's access token inside
    the seal, which the cerrojo command never does on a route without a
    user. Returns the outcome that e2e_sealed_request printed."""
    proc = subprocess.run(
        [os.path.join(e2e.h.BIN_DIR, "e2e_sealed_request"),
         stack.gateway.url, client.state, "POST", path, json.dumps(body)],
        capture_output=True, text=True, timeout=e2e.CLIENT_TIMEOUT_S)
    if proc.returncode != 0:
        raise AssertionError("e2e_sealed_request %s failed (%d): %s" % (
            path, proc.returncode, proc.stderr))
    return json.loads(proc.stdout)


class UserlessRoute(unittest.TestCase):
    def test_token_on_userless_route_is_400(self):
        client, name = new_user("--stateless")
        with open(client.password_file) as f:
            password = f.read().rstrip("\n")
        refresh_token = client.saved_state()["tokens"]["refresh_token"]
        other = ah.random_name("e")
        secret = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        cases = (
            ("/v1/refresh", {"refresh_token": refresh_token}),
            ("/v1/login", {"login": name, "password": password}),
            ("/v1/register", {"username": other, "password": password,
                              "email": other + "@example.com"}),
            ("/v1/handshake", {"client_secret": secret}),
        )

        log_start = len(stack.gateway.log())
        for path, body in cases:
            with self.subTest(path):
                outcome = sealed_request_with_token(client, path, body)
                self.assertFalse(outcome["ok"], outcome)
                self.assertEqual(outcome["http_status"], 400)
                self.assertEqual(outcome["code"], "invalid_request")
                self.assertIn("This route takes no access token",
                              outcome["message"])

        rejections = stack.gateway.log()[log_start:].count(
            "access token on a route that takes no user")
        self.assertGreaterEqual(rejections, len(cases))
        # The gateway stopped each request before auth: the refresh token
        # is unspent, and the user of the register request does not exist.
        before = client.saved_state()["tokens"]["refresh_token"]
        self.assertEqual(before, refresh_token)
        client.ok("refresh")
        self.assertEqual(stack.sql("SELECT count(*) FROM auth.users WHERE "
                                   "username = '%s'" % other), [["0"]])


class NoLogin(unittest.TestCase):
    def test_data_get_without_login_unreachable(self):
        client = e2e.Client(stack)
        unreachable = "http://127.0.0.1:%d" % e2e.h.free_port()
        argv = client.argv("data", "get", "private")
        argv[argv.index("--url") + 1] = unreachable
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=e2e.CLIENT_TIMEOUT_S)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("not logged in; run 'cerrojo login' first",
                      proc.stderr)


class AbsoluteForm(unittest.TestCase):
    def test_sealed_requests_in_absolute_form(self):
        # libcurl sends absolute-form targets ("POST http://gw.invalid/...")
        # to an HTTP proxy, and the gateway acts as that proxy here. The
        # ".invalid" name never resolves (RFC 2606), so a success shows
        # that every request reached the gateway in absolute form.
        client = e2e.Client(stack)
        name = ah.random_name("e")
        client.set_password(ah.strong_password())
        env = dict(os.environ)
        for var in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
            env.pop(var, None)
        env["http_proxy"] = stack.gateway.url

        def run(*args):
            argv = client.argv(*args)
            argv[argv.index("--url") + 1] = "http://gw.invalid"
            proc = subprocess.run(argv, env=env, capture_output=True,
                                  text=True, timeout=e2e.CLIENT_TIMEOUT_S)
            self.assertEqual(proc.returncode, 0,
                             proc.stderr + "\n" + stack.logs())
            return json.loads(proc.stdout)["result"]

        run("register", "--username", name, "--email", name + "@example.com",
            "--password-file", client.password_file, "--stateless")
        self.assertEqual(run("me")["username"], name)


class OtherUrl(unittest.TestCase):
    def test_login_kept_when_another_url_is_used(self):
        client, name = new_user("--stateless")
        other = "http://127.0.0.1:%d" % e2e.h.free_port()
        argv = client.argv("me")
        argv[argv.index("--url") + 1] = other
        proc = subprocess.run(argv, capture_output=True, text=True,
                              timeout=e2e.CLIENT_TIMEOUT_S)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("holds a login at " + stack.gateway.url, proc.stderr)
        self.assertIn("tokens", client.saved_state())
        self.assertEqual(client.ok("me")["username"], name)


class UrlSpelling(unittest.TestCase):
    def test_url_spellings_share_login(self):
        client, name = new_user("--stateless")
        url = stack.gateway.url
        for spelling in (url + "/", url.upper(), url + "//"):
            argv = client.argv("me")
            argv[argv.index("--url") + 1] = spelling
            proc = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=e2e.CLIENT_TIMEOUT_S)
            self.assertEqual(proc.returncode, 0, (spelling, proc.stderr))
            self.assertEqual(json.loads(proc.stdout)["result"]["username"],
                             name)
        self.assertEqual(client.saved_state()["url"], url)


class Keys(unittest.TestCase):
    def test_pinned_signer_accepted_and_other_pin_refused(self):
        client = e2e.Client(stack)
        signer = client.ok("keys")["signer"]
        client.ok("--pin", signer, "keys")
        status, _, err = client.run(
            "--pin", "A" * 43, "keys")
        self.assertNotEqual(status, 0)
        self.assertIn("not pinned", err)

    def test_malformed_pin_reported_invalid(self):
        client = e2e.Client(stack)
        status, _, err = client.run("--pin", "not base64!", "keys")
        self.assertEqual(status, 2)
        self.assertIn("invalid pin 'not base64!'", err)
        self.assertIn("43-character base64url", err)
        self.assertNotIn("not pinned", err)

    def test_jwks_served(self):
        import urllib.request
        body = urllib.request.urlopen(stack.gateway.url +
                                      "/.well-known/jwks.json").read()
        keys = json.loads(body)["keys"]
        self.assertGreaterEqual(len(keys), 1)
        self.assertTrue(all("kid" in k for k in keys))


class ForgingProxy:
    """A forwarding proxy on 127.0.0.1 in front of the gateway. For each
    request in `forged`, keyed by (method, path), it sends its own plain
    (status, body), and it forwards every other request. It counts the
    requests that it received per path."""

    # Request headers that the gateway reads for a sealed request.
    FORWARDED_HEADERS = ("Accept", "Content-Type", "Cerrojo-Seal",
                         "Cerrojo-Session")
    # Response headers sent back to the client.
    RETURNED_HEADERS = ("Content-Type", "Retry-After", "Date")

    def __init__(self, gateway_url):
        self.forged = {}
        self.counts = {}
        target = urllib.parse.urlsplit(gateway_url)
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def relay(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                path = urllib.parse.urlsplit(self.path).path
                proxy.counts[path] = proxy.counts.get(path, 0) + 1
                forged = proxy.forged.get((self.command, path))
                if forged is not None:
                    self.reply(forged[0], [("Content-Type",
                                            "application/json")],
                               forged[1].encode())
                    return
                self.forward(path, body)

            def forward(self, path, body):
                conn = http.client.HTTPConnection(
                    target.hostname, target.port,
                    timeout=e2e.CLIENT_TIMEOUT_S)
                headers = {name: self.headers[name]
                           for name in ForgingProxy.FORWARDED_HEADERS
                           if self.headers[name] is not None}
                try:
                    conn.request(self.command, path, body=body,
                                 headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    returned = [(name, resp.getheader(name))
                                for name in ForgingProxy.RETURNED_HEADERS
                                if resp.getheader(name) is not None]
                    self.reply(resp.status, returned, data)
                finally:
                    conn.close()

            def reply(self, status, headers, data):
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = relay

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                                      Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(e2e.CLIENT_TIMEOUT_S)


class ProxiedStack:
    """What e2e.Client needs of a stack, with the proxy's URL as the
    gateway's."""

    def __init__(self, proxy):
        self.gateway = type("ProxyUrl", (), {"url": proxy.url})()

    def logs(self):
        return stack.logs()


# A token set that an attacker between client and gateway would send.
FORGED_TOKEN_SET = json.dumps({
    "access_token": "forged-access-token",
    "refresh_token": "forged-refresh-token",
    "user_id": "forged-user", "expires_in": 900})


class ForgedResponses(unittest.TestCase):
    """The client trusts only sealed responses. A plain 2xx, or a plain 401
    that would start a refresh, from something between client and gateway
    makes the command fail and leaves the state file as it was."""

    def setUp(self):
        self.proxy = ForgingProxy(stack.gateway.url)
        self.client = e2e.Client(ProxiedStack(self.proxy))
        self.name = ah.random_name("f")
        self.client.set_password(ah.strong_password())
        self.client.ok("register", "--username", self.name, "--email",
                       self.name + "@example.com", "--password-file",
                       self.client.password_file, "--stateless")

    def tearDown(self):
        self.proxy.stop()

    def state_bytes(self):
        with open(self.client.state, "rb") as f:
            return f.read()

    def test_plain_login_success_rejected(self):
        self.proxy.forged[("POST", "/v1/login")] = (200, FORGED_TOKEN_SET)
        before = self.state_bytes()
        status, _, err = self.client.run(
            "login", "--login", self.name, "--password-file",
            self.client.password_file)
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("(unsealed_response)", err)
        self.assertIn("came unsealed with HTTP 200", err)
        self.assertEqual(self.state_bytes(), before)

    def test_plain_logout_success_rejected(self):
        self.proxy.forged[("POST", "/v1/logout")] = (200, "{}")
        before = self.state_bytes()
        status, _, err = self.client.run("logout", "--all")
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("(unsealed_response)", err)
        self.assertEqual(self.state_bytes(), before)
        # The login was never logged out, and the client still uses it.
        del self.proxy.forged[("POST", "/v1/logout")]
        self.assertEqual(self.client.ok("me")["username"], self.name)

    def test_plain_invalid_token_starts_no_refresh(self):
        self.proxy.forged[("PUT", "/v1/me/data/private")] = (
            401, json.dumps({"error": {
                "code": "invalid_token",
                "message": "The access token is invalid."}}))
        self.proxy.forged[("POST", "/v1/refresh")] = (200, FORGED_TOKEN_SET)
        before = self.state_bytes()
        status, _, err = self.client.run("data", "put", "private",
                                         stdin='{"phone":"123"}')
        self.assertEqual(status, CLI_EXIT_FAILED, err)
        self.assertIn("not refreshed", err)
        self.assertNotIn("/v1/refresh", self.proxy.counts)
        self.assertEqual(self.state_bytes(), before)


if __name__ == "__main__":
    unittest.main(verbosity=2)
