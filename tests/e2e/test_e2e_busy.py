"""End-to-end: a login burst that auth's password gate sheds. auth runs one
Argon2 slot with a slow hash, so its line (the slot and its waiters) fills
faster than it drains. A login the gate rejects reaches the `cerrojo`
client as the gateway's 503 with Retry-After and the busy message. That
message tells the client to wait, where an outage message would not. auth
sheds a login that would wait past the gateway's RPC deadline instead of letting it time
out, so the gateway never takes auth for down during the burst."""

import re
import subprocess
import time
import unittest

import e2e_harness as e2e  # noqa: I100  (sets the import path)
import auth_harness as ah  # noqa: E402

# One Argon2 slot with a hash slow enough that the line drains far slower
# than the logins arrive.
ARGON2_SLOTS = 1
ARGON2_MEMORY = "32MiB"
ARGON2_PASSES = "3"
# More logins at once than one slot and its waiters hold.
BURST_LOGINS = 40
BURST_TIMEOUT_S = 120
BUSY_MESSAGE = ("The service is busy; retry after the seconds given in "
                "Retry-After.")
# The longest Retry-After auth gives, in seconds.
RETRY_AFTER_MAX_S = 60
CLI_EXIT_FAILED = 1

stack = None


def setUpModule():
    global stack
    e2e.require_env()
    stack = e2e.E2EStack(auth_env={
        "CERROJO_AUTH_ARGON2_CONCURRENCY": str(ARGON2_SLOTS),
        "CERROJO_AUTH_ARGON2_MEMORY": ARGON2_MEMORY,
        "CERROJO_AUTH_ARGON2_PASSES": ARGON2_PASSES,
    }).start()


def tearDownModule():
    if stack is not None:
        stack.stop()


class LoginBurst(unittest.TestCase):
    def test_shed_login_says_busy_with_retry_after(self):
        client = e2e.Client(stack)
        name = ah.random_name("busy")
        client.set_password(ah.strong_password())
        client.ok("register", "--username", name, "--email",
                  name + "@example.com", "--password-file",
                  client.password_file, "--stateless")

        # Each login uses a copy of the state file, so that no two
        # processes write one file.
        procs = [subprocess.Popen(
            client.copy_state().argv(
                "login", "--login", name, "--password-file",
                client.password_file, "--stateless"),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for _ in range(BURST_LOGINS)]
        deadline = time.monotonic() + BURST_TIMEOUT_S
        results = []
        for proc in procs:
            _, err = proc.communicate(
                timeout=max(1, deadline - time.monotonic()))
            results.append((proc.returncode, err))

        statuses = [status for status, _ in results]
        print("login exit statuses: %s" %
              {s: statuses.count(s) for s in set(statuses)})
        self.assertGreater(statuses.count(0), 0, stack.logs())
        busy = [err for status, err in results if status != 0]
        self.assertGreater(len(busy), 0, "no login was shed")
        self.assertEqual(len(busy), statuses.count(CLI_EXIT_FAILED), statuses)
        # Every shed login got the busy message, none the message of an
        # unavailable backend, and the gateway kept auth up.
        for err in busy:
            self.assertIn(BUSY_MESSAGE, err)
            match = re.search(r"retry after (\d+) s", err)
            self.assertIsNotNone(match, err)
            self.assertGreaterEqual(int(match.group(1)), 1, err)
            self.assertLessEqual(int(match.group(1)), RETRY_AFTER_MAX_S, err)
        self.assertNotIn('"dependency":"auth","state":"down"',
                         stack.gateway.log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
