"""End-to-end: the `cerrojo` client after its access token expired on the
server. Access tokens here live ACCESS_TOKEN_SECONDS and the gateway allows
no clock leeway, so a token is rejected as soon as its `exp` passes. Every
user is registered first and the class waits once for all their tokens to
expire, because the wait is the longest part of the run."""

import base64
import json
import os
import time
import unittest

import e2e_harness as e2e  # noqa: I100  (sets the import path)
import auth_harness as ah  # noqa: E402

# The smallest access-token lifetime that auth accepts, in seconds.
ACCESS_TOKEN_SECONDS = 60
# Time past a token's `exp` before it is used, in seconds, so that the
# gateway's one-second clock has passed `exp` for certain.
PAST_EXPIRY_SECONDS = 2
# A stored expiry far in the future, in milliseconds since the epoch. The
# client then refreshes only when the gateway rejects the token, as after a
# change of the client's clock since login.
FAR_FUTURE_MS = 4102444800000

# Client exit status when a request failed.
CLI_EXIT_FAILED = 1

LOG_IN_AGAIN = "Run 'cerrojo login' to log in again"
RETRY_NOTICE = "the server rejected the access token"
EARLY_NOTICE = "so the tokens were refreshed first"
# The gateway logs a request after its response is sent, so a command may
# exit before the line of its last request is written. The test waits at
# most LOG_WAIT_S for the lines it expects, and then until no request line
# has been added for LOG_SETTLE_S, so that an extra line is still seen.
LOG_SETTLE_S = 0.3
LOG_WAIT_S = 10

stack = None


def setUpModule():
    global stack
    e2e.require_env()
    stack = e2e.E2EStack(gateway_env={
        "CERROJO_CLOCK_LEEWAY_SECONDS": "0",
    }, auth_env={
        "CERROJO_AUTH_ACCESS_TOKEN_LIFETIME": str(ACCESS_TOKEN_SECONDS),
    }).start()


def tearDownModule():
    if stack is not None:
        stack.stop()


def new_user():
    """Registers a fresh stateless user; returns its client and name."""
    client = e2e.Client(stack)
    name = ah.random_name("x")
    client.set_password(ah.strong_password())
    client.ok("register", "--username", name, "--email",
              name + "@example.com", "--password-file", client.password_file,
              "--stateless")
    return client, name


def access_token_exp(client):
    """The `exp` claim of the client's stored access token, in seconds."""
    token = client.saved_state()["tokens"]["access_token"]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(
        payload + "=" * (-len(payload) % 4)))["exp"]


def hide_expiry(client):
    """Sets the stored expiry far in the future, so that the client takes
    the expired access token for a valid one."""
    state = client.saved_state()
    state["tokens"]["access_expires_at_ms"] = FAR_FUTURE_MS
    with open(client.state, "w") as f:
        json.dump(state, f)
    os.chmod(client.state, 0o600)


def refresh_token_count(name):
    """Refresh tokens issued to a user: one per login, plus one per refresh."""
    rows = stack.sql("SELECT count(*) FROM auth.refresh_tokens t JOIN "
                     "auth.users u ON u.id = t.user_id WHERE "
                     "u.username = '%s'" % name)
    return int(rows[0][0])


def route_statuses(text, method, route):
    """Returns the HTTP statuses of the gateway's request lines for a route
    in `text`."""
    statuses = []
    for line in text.splitlines():
        if '"event":"gateway.request"' not in line:
            continue
        event = json.loads(line)
        if event["method"] == method and event["route"] == route:
            statuses.append(event["status"])
    return statuses


def gateway_requests(since, method, route, expected_count):
    """Returns the HTTP statuses of the gateway's requests to a route,
    logged after offset `since` of its log. Waits until there are
    `expected_count` of them, at most LOG_WAIT_S, and until the request
    lines stop growing."""
    deadline = time.monotonic() + LOG_WAIT_S
    count = -1
    changed_at = time.monotonic()
    while True:
        text = stack.gateway.log()[since:]
        now = time.monotonic()
        lines = text.count('"event":"gateway.request"')
        statuses = route_statuses(text, method, route)
        if lines != count:
            count = lines
            changed_at = now
        elif now > deadline or (len(statuses) >= expected_count and
                                now - changed_at >= LOG_SETTLE_S):
            return statuses
        time.sleep(0.05)


class ExpiredAccessToken(unittest.TestCase):
    def assert_requests(self, since, method, route, expected):
        """Checks the statuses of the gateway's requests to a route since
        offset `since` of its log."""
        self.assertEqual(
            gateway_requests(since, method, route, len(expected)), expected)

    @classmethod
    def setUpClass(cls):
        cls.users = {case: new_user() for case in
                     ("me", "put", "logout", "dead", "early", "early_dead")}
        for case, (client, _) in cls.users.items():
            if case not in ("early", "early_dead"):
                hide_expiry(client)
        last_exp = max(access_token_exp(client)
                       for client, _ in cls.users.values())
        wait = last_exp + PAST_EXPIRY_SECONDS - time.time()
        if wait > 0:
            time.sleep(wait)

    def test_me_after_expiry_refreshes_once(self):
        client, name = self.users["me"]
        before = client.saved_state()["tokens"]["refresh_token"]
        since = len(stack.gateway.log())
        status, result, err = client.run("me")
        self.assertEqual(status, 0, err)
        self.assertEqual(result["username"], name)
        self.assertIn(RETRY_NOTICE, err)
        self.assert_requests(since, "GET", "/v1/me", [401, 200])
        self.assert_requests(since, "POST", "/v1/refresh", [200])
        self.assertEqual(refresh_token_count(name), 2)
        self.assertNotEqual(client.saved_state()["tokens"]["refresh_token"],
                            before)
        # The saved tokens work for the next command without a refresh.
        err = client.run("me")[2]
        self.assertNotIn(RETRY_NOTICE, err)
        self.assertEqual(refresh_token_count(name), 2)

    def test_data_put_after_expiry_stores_value_once(self):
        client, _ = self.users["put"]
        value = "first line\nsecond line\n"
        since = len(stack.gateway.log())
        status, result, err = client.run("data", "put", "private",
                                         stdin=value)
        self.assertEqual(status, 0, err)
        self.assertIn(RETRY_NOTICE, err)
        route = "/v1/me/data/private"
        self.assert_requests(since, "PUT", route, [401, 200])
        # The retry sent the value read before the first attempt.
        self.assertEqual(result["fields"],
                         {"value": "first line\nsecond line"})
        self.assertEqual(client.ok("data", "get", "private")["fields"],
                         {"value": "first line\nsecond line"})

    def test_logout_after_expiry_revokes_family(self):
        client, name = self.users["logout"]
        status, _, err = client.run("logout")
        self.assertEqual(status, 0, err)
        self.assertIn(RETRY_NOTICE, err)
        self.assertNotIn("tokens", client.saved_state())
        live = stack.sql("SELECT count(*) FROM auth.refresh_tokens t JOIN "
                         "auth.users u ON u.id = t.user_id WHERE "
                         "u.username = '%s' AND t.revoked_at IS NULL AND "
                         "t.used_at IS NULL" % name)
        self.assertEqual(live, [["0"]])
        # Logout with the refresh token that the refresh spent is no reuse.
        reuse = stack.sql("SELECT count(*) FROM auth.audit_events a JOIN "
                          "auth.users u ON u.id = a.user_id WHERE "
                          "u.username = '%s' AND a.event = 'refresh_reuse'"
                          % name)
        self.assertEqual(reuse, [["0"]])

    def test_rejected_refresh_says_log_in_again(self):
        client, _ = self.users["dead"]
        # Another copy uses the refresh token first, so this one's is spent.
        client.copy_state().ok("refresh")
        with open(client.state, "rb") as f:
            state_before = f.read()
        since = len(stack.gateway.log())
        status, result, err = client.run("me")
        self.assertEqual(status, CLI_EXIT_FAILED)
        self.assertIsNone(result)
        self.assertIn(LOG_IN_AGAIN, err)
        self.assertIn("(invalid_token)", err)
        self.assertNotIn(RETRY_NOTICE, err)
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assert_requests(since, "GET", "/v1/me", [401])
        self.assert_requests(since, "POST", "/v1/refresh", [401])
        with open(client.state, "rb") as f:
            self.assertEqual(f.read(), state_before)

    def test_stored_expiry_refreshes_before_first_attempt(self):
        client, name = self.users["early"]
        since = len(stack.gateway.log())
        status, result, err = client.run("me")
        self.assertEqual(status, 0, err)
        self.assertEqual(result["username"], name)
        self.assertIn(EARLY_NOTICE, err)
        self.assert_requests(since, "GET", "/v1/me", [200])
        self.assertEqual(refresh_token_count(name), 2)

    def test_rejected_early_refresh_is_sent_once(self):
        client, _ = self.users["early_dead"]
        # Another copy uses the refresh token first, so the refresh that the
        # stored expiry triggers is rejected.
        client.copy_state().ok("refresh")
        since = len(stack.gateway.log())
        status, result, err = client.run("me")
        self.assertEqual(status, CLI_EXIT_FAILED)
        self.assertIsNone(result)
        self.assertIn(LOG_IN_AGAIN, err)
        self.assert_requests(since, "POST", "/v1/refresh", [401])
        self.assert_requests(since, "GET", "/v1/me", [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
