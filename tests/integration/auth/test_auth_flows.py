"""cerrojo-auth against real kms, session, Postgres and Redis: register,
login and its throttle, refresh rotation and reuse, logout, introspection,
the revocation cache after a Redis flush, user data, audit and jobs."""

import base64
import concurrent.futures
import hashlib
import hmac
import os
import random
import socket
import subprocess
import time
import unittest
import uuid

import grpc

import auth_harness as ah

SECRET_SIZE = 32
CONCURRENT_REFRESHES = 20
CONCURRENT_LOGINS = 50
RELOAD_TIMEOUT_S = 15
# A refresh's deadline, and how long a lock on its table outlasts it, s.
SHORT_DEADLINE_S = 1
TABLE_LOCK_S = 2
# An idle expiry far below a bound session's 30 minutes, ms.
SHORT_SESSION_TTL_MS = 60000
# A streak's next allowed attempt far past any test run, Unix ms.
FAR_FUTURE_MS = 10 ** 15

stack = None


def setUpModule():
    global stack
    ah.require_env()
    stack = ah.Stack().start()


def tearDownModule():
    if stack is not None:
        stack.stop()


def standard_base64(token):
    """Standard padded base64 of a base64url refresh token, for SQL."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    return base64.b64encode(raw).decode()


def lock_table(table):
    """Holds an exclusive lock on table for TABLE_LOCK_S seconds from a
    separate psql process, and returns that process once Postgres shows
    the lock granted."""
    locker = subprocess.Popen(
        ["psql", stack.dsn, "-At", "-v", "ON_ERROR_STOP=1", "-c",
         "BEGIN; LOCK TABLE %s IN ACCESS EXCLUSIVE MODE; "
         "SELECT pg_sleep(%d); COMMIT;" % (table, TABLE_LOCK_S)],
        stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + RELOAD_TIMEOUT_S
    while time.monotonic() < deadline and stack.sql(
            "SELECT count(*) FROM pg_locks WHERE granted AND mode = "
            "'AccessExclusiveLock' AND relation = '%s'::regclass"
            % table) != [["1"]]:
        time.sleep(0.05)
    return locker


def code(err):
    return err.code() if err is not None else grpc.StatusCode.OK


def throttle_name_key(name):
    """The Redis key of a typed login name's streak: the HMAC-SHA-256 of
    the folded name under the key auth keeps in Postgres."""
    [[secret]] = stack.sql(
        "SELECT encode(key, 'hex') FROM auth.login_throttle_key")
    digest = hmac.new(bytes.fromhex(secret), b"name:" + name.encode(),
                      hashlib.sha256).hexdigest()
    return "cerrojo:login:i:" + digest


class Register(unittest.TestCase):
    def test_register_issues_tokens(self):
        reply, err, name, _ = stack.register()
        self.assertIsNone(err)
        self.assertTrue(reply.access_token)
        self.assertEqual(reply.token_type, "Bearer")
        self.assertEqual(len(reply.refresh_token), 43)
        self.assertEqual(reply.expires_in, 900)
        self.assertFalse(reply.HasField("session"))
        rows = stack.sql("SELECT username, password_hash LIKE '$argon2id$%%',"
                         " kek_version > 0, octet_length(wrapped_key) > 32 "
                         "FROM auth.users WHERE id = '%s'" % reply.user_id)
        self.assertEqual(rows, [[name, "t", "t", "t"]])

    def test_register_with_handshake_opens_session(self):
        reply, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        self.assertEqual(len(reply.session.session_id), 22)
        info, _ = stack.introspect(reply.access_token)
        self.assertTrue(info.active)
        self.assertEqual(info.sid, reply.session.session_id)

    def test_audit_stores_session_hash_not_id(self):
        reply, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        sid = reply.session.session_id
        _, err = stack.refresh(reply.refresh_token)
        self.assertIsNone(err, err)
        rows = stack.sql(
            "SELECT event, session_id IS NULL, session_hash = "
            "encode(sha256(convert_to('%s', 'UTF8')), 'hex') FROM "
            "auth.audit_events WHERE user_id = '%s' ORDER BY id"
            % (sid, reply.user_id))
        self.assertEqual(rows, [["register", "t", "t"],
                                ["refresh", "t", "t"]])
        dump = "\n".join("|".join(r) for r in stack.sql(
            "SELECT a::text FROM auth.audit_events a WHERE user_id = '%s'"
            % reply.user_id))
        self.assertNotIn(sid, dump)

    def test_duplicate_and_lookalike_names_rejected(self):
        base = ah.random_name("xl")
        reply, err, _, _ = stack.register(username=base)
        self.assertIsNone(err)
        for dup in (base.upper(), "x1" + base[2:]):
            _, err, _, _ = stack.register(username=dup)
            self.assertEqual(code(err), grpc.StatusCode.ALREADY_EXISTS, dup)
        _, err, _, _ = stack.register(email=base.upper() + "@EXAMPLE.com")
        self.assertEqual(code(err), grpc.StatusCode.ALREADY_EXISTS)

    def test_encoded_email_domain_is_same_address(self):
        # "bücher.example" and its encoded form "xn--bcher-kva.example".
        name = ah.random_name("idn")
        reply, err, _, password = stack.register(
            username=name, email=name + "@b\u00fccher.example")
        self.assertIsNone(err)
        _, err, _, _ = stack.register(email=name + "@XN--BCHER-KVA.example")
        self.assertEqual(code(err), grpc.StatusCode.ALREADY_EXISTS)
        login, err = stack.login(name + "@xn--bcher-kva.example", password)
        self.assertIsNone(err)
        self.assertEqual(login.user_id, reply.user_id)

    def test_lookalike_pairs_rejected(self):
        # A random suffix of letters that look the same in Latin and
        # Cyrillic, so that the Cyrillic name stays in one script.
        latin, cyrillic = "aceopxy", "\u0430\u0441\u0435\u043e\u0440\u0445\u0443"
        suffix = "".join(random.choice(latin) for _ in range(10))
        cyrillic_suffix = suffix.translate(str.maketrans(latin, cyrillic))
        pairs = (("lana" + suffix, "Iana" + suffix),
                 ("bob" + suffix, "b0b" + suffix),
                 ("google" + suffix, "g00gle" + suffix),
                 ("paypal" + suffix,
                  "\u0440\u0430\u0443\u0440\u0430\u04cf" + cyrillic_suffix))
        for taken, lookalike in pairs:
            with self.subTest(taken=taken, lookalike=lookalike):
                _, err, _, _ = stack.register(username=taken)
                self.assertIsNone(err, taken)
                _, err, _, _ = stack.register(
                    username=lookalike, email=ah.random_name() + "@example.com")
                self.assertEqual(code(err), grpc.StatusCode.ALREADY_EXISTS)
                self.assertIn("too similar", err.details())

    def test_invisible_username_rejected(self):
        name = ah.random_name()
        _, err, _, _ = stack.register(username=name[:3] + "\u200b" + name[3:])
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("invisible", err.details())

    def test_nul_in_password_rejected(self):
        # Cut at the NUL, the stored password would be the prefix alone.
        name = ah.random_name()
        _, err, _, _ = stack.register(
            username=name, password=ah.strong_password() + "\x00tail")
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("password", err.details())
        self.assertIn("NUL", err.details())
        _, err = stack.login(name, "anything")
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_nul_after_token_rejected(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        _, err = stack.introspect(tokens.access_token + "\x00junk")
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("token", err.details())

    def test_weak_and_long_passwords_rejected(self):
        _, err, _, _ = stack.register(password="password123")
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        _, err, _, _ = stack.register(password="Aa1!" * 257)
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)

    def test_password_with_names_in_other_case_rejected(self):
        # Login folds the case of names, so the password rule must too.
        name = ah.random_name("Zq")
        _, err, _, _ = stack.register(
            username=name, email=ah.random_name("m") + "@example.com",
            password=name.lower() + "zz")
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("contains your username", err.details())
        local = ah.random_name("Quokka.")
        _, err, _, _ = stack.register(email=local + "@example.com",
                                      password="x9-" + local.upper())
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("contains your username", err.details())

    def test_short_password_message_names_the_minimum(self):
        _, err, _, _ = stack.register(password="Qz7!x")
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("at least 10 characters", err.details())


class Login(unittest.TestCase):
    def setUp(self):
        reply, err, self.name, self.password = stack.register()
        self.assertIsNone(err)
        self.user_id = reply.user_id

    def test_login_by_username_and_email(self):
        reply, err = stack.login(self.name.upper(), self.password)
        self.assertIsNone(err)
        self.assertEqual(reply.user_id, self.user_id)
        reply, err = stack.login(self.name + "@example.com", self.password)
        self.assertIsNone(err)
        self.assertEqual(reply.user_id, self.user_id)

    def test_success_runs_one_verification(self):
        # A hash made with the current parameters is neither rehashed nor
        # verified twice, so a login costs exactly one Argon2 operation.
        query = ("SELECT password_hash FROM auth.users WHERE id = '%s'"
                 % self.user_id)
        stored = stack.sql(query)
        before = stack.metric("auth_password_verifications_total")
        _, err = stack.login(self.name, self.password)
        after = stack.metric("auth_password_verifications_total")
        self.assertIsNone(err, err)
        self.assertEqual(after - before, 1)
        self.assertEqual(stack.sql(query), stored)

    def test_login_writes_token_time_and_audit(self):
        user = "user_id = '%s'" % self.user_id
        tokens_before = stack.sql(
            "SELECT count(*) FROM auth.refresh_tokens WHERE " + user)
        _, err = stack.login(self.name, self.password)
        self.assertIsNone(err, err)
        [[tokens_after]] = stack.sql(
            "SELECT count(*) FROM auth.refresh_tokens WHERE " + user)
        self.assertEqual(int(tokens_after), int(tokens_before[0][0]) + 1)
        [[last_login]] = stack.sql(
            "SELECT last_login_at IS NOT NULL FROM auth.users WHERE id = '%s'"
            % self.user_id)
        self.assertEqual(last_login, "t")
        [[family, session]] = stack.sql(
            "SELECT detail->>'family_id', detail->>'session' FROM "
            "auth.audit_events WHERE event = 'login.success' AND " + user)
        [[newest_family]] = stack.sql(
            "SELECT family_id FROM auth.refresh_tokens WHERE " + user +
            " ORDER BY issued_at DESC, id LIMIT 1")
        self.assertEqual(family, newest_family)
        self.assertEqual(session, "false")

    def test_unknown_and_wrong_same_error_one_verification(self):
        before = stack.metric("auth_password_verifications_total")
        _, wrong = stack.login(self.name, self.password + "x")
        middle = stack.metric("auth_password_verifications_total")
        _, unknown = stack.login(ah.random_name(), self.password)
        after = stack.metric("auth_password_verifications_total")
        self.assertEqual(code(wrong), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(code(unknown), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(wrong.details(), unknown.details())
        self.assertEqual(middle - before, 1)
        self.assertEqual(after - middle, 1)

    def test_disabled_account_same_error_and_cost(self):
        stack.sql("UPDATE auth.users SET status = 'disabled' WHERE id = '%s'"
                  % self.user_id)
        before = stack.metric("auth_password_verifications_total")
        _, disabled = stack.login(self.name, self.password)
        after = stack.metric("auth_password_verifications_total")
        _, unknown = stack.login(ah.random_name(), self.password)
        self.assertEqual(code(disabled), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(disabled.details(), unknown.details())
        self.assertEqual(after - before, 1)
        rows = stack.sql("SELECT detail->>'reason' FROM auth.audit_events "
                         "WHERE user_id = '%s' AND event = 'login.failure'"
                         % self.user_id)
        self.assertEqual(rows, [["disabled"]])

    def test_introspect_returns_claims_and_profile(self):
        tokens, err = stack.login(self.name, self.password)
        self.assertIsNone(err)
        _, err = stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields={"display_name": "Dev"},
            **{"class": stack.common_pb2.DATA_CLASS_PUBLIC}),
            stack.caller_for(tokens))
        self.assertIsNone(err, err)
        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)
        self.assertEqual(info.sub, self.user_id)
        self.assertEqual(info.username, self.name)
        self.assertEqual(info.token_type, "Bearer")
        self.assertEqual(info.exp - info.iat, 900)
        self.assertEqual(dict(info.public_data), {"display_name": "Dev"})
        # Change one signature character in the middle (never a no-op, as
        # replacing the last two with "AA" was when they already were).
        token = tokens.access_token
        i = token.rindex(".") + 10
        tampered = token[:i] + ("B" if token[i] == "A" else "A") + token[i + 1:]
        info, err = stack.introspect(tampered)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        self.assertEqual(info.sub, "")

    def test_introspect_public_data_and_disabled_user(self):
        tokens, err = stack.login(self.name, self.password)
        self.assertIsNone(err)
        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)
        self.assertEqual(info.username, self.name)
        self.assertEqual(dict(info.public_data), {})
        _, err = stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields={"locale": "es", "display_name": "Dev"},
            **{"class": stack.common_pb2.DATA_CLASS_PUBLIC}),
            stack.caller_for(tokens))
        self.assertIsNone(err, err)
        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)
        self.assertEqual(dict(info.public_data),
                         {"display_name": "Dev", "locale": "es"})
        stack.sql("UPDATE auth.users SET status = 'disabled' WHERE id = '%s'"
                  % self.user_id)
        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        self.assertEqual(info.username, "")
        self.assertEqual(dict(info.public_data), {})

    def test_long_password_refused_before_hashing(self):
        before = stack.metric("auth_password_verifications_total")
        _, err = stack.login(self.name, "a" * 1025)
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(stack.metric("auth_password_verifications_total"),
                         before)

    def test_concurrent_wrong_logins_are_throttled(self):
        before = stack.metric("auth_password_verifications_total")
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT_LOGINS) as ex:
            results = list(ex.map(
                lambda _: stack.login(self.name, "wrong-password-x"),
                range(CONCURRENT_LOGINS)))
        codes = [code(err) for _, err in results]
        ran = stack.metric("auth_password_verifications_total") - before
        self.assertLessEqual(ran, ah.FREE_ATTEMPTS)
        self.assertEqual(codes.count(grpc.StatusCode.UNAUTHENTICATED), ran)
        limited = [err for _, err in results
                   if code(err) == grpc.StatusCode.RESOURCE_EXHAUSTED]
        # A login the password gate turns away (UNAVAILABLE) spends neither
        # an attempt nor a verification.
        busy = codes.count(grpc.StatusCode.UNAVAILABLE)
        self.assertEqual(len(limited) + busy, CONCURRENT_LOGINS - ran)
        # One at a time, the rest of the free attempts run and fail.
        while ran < ah.FREE_ATTEMPTS:
            _, err = stack.login(self.name, "wrong-password-x")
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
            ran += 1
        _, err = stack.login(self.name, "wrong-password-x")
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("retry after", err.details())
        # The right password is throttled too until the delay passes.
        _, err = stack.login(self.name, self.password)
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_guesser_does_not_lock_out_owner(self):
        attacker = {"client-ip": "203.0.113.9"}
        for _ in range(ah.FREE_ATTEMPTS):
            _, err = stack.login(self.name, "wrong-password-x", caller=attacker)
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.login(self.name, "wrong-password-x", caller=attacker)
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": "198.51.100.20"})
        self.assertIsNone(err, err)

    def test_account_throttled_across_addresses(self):
        # One guess from each of many addresses: no address reaches its own
        # limit, but the account does.
        for i in range(ah.ACCOUNT_FREE_ATTEMPTS):
            _, err = stack.login(self.name, "wrong-password-x",
                                 caller={"client-ip": "203.0.113.%d" % i})
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": "198.51.100.20"})
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def account_count(self):
        """Attempts in the account's streak, from its Redis hash."""
        n = stack.redis("HGET", throttle_name_key(self.name), "n")
        return int(n or 0)

    def test_known_address_passes_account_streak(self):
        home = {"client-ip": "198.51.100.30"}
        _, err = stack.login(self.name, self.password, caller=home)
        self.assertIsNone(err, err)

        for i in range(ah.ACCOUNT_FREE_ATTEMPTS):
            _, err = stack.login(self.name, "wrong-password-x",
                                 caller={"client-ip": "203.0.113.%d" % i})
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": "198.51.100.31"})
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)

        # The address the owner logged in from before still gets in, and
        # its logins give the guessers no attempts back.
        before = self.account_count()
        _, err = stack.login(self.name, self.password, caller=home)
        self.assertIsNone(err, err)
        self.assertEqual(self.account_count(), before)

        # The success moves the known addresses' baseline to the count.
        self.assertEqual(stack.redis("HGET", throttle_name_key(self.name),
                                     "kb"), str(before))

        # A guess from the known address still counts for the account, so
        # a guesser who shares the owner's address adds to its streak.
        _, err = stack.login(self.name, "wrong-password-x", caller=home)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.account_count(), before + 1)

        # Once the count has grown by four times the account's free
        # attempts since the last success, the known address waits too.
        stack.redis("HSET", throttle_name_key(self.name),
                    "n", str(before + 4 * ah.ACCOUNT_FREE_ATTEMPTS - 1),
                    "next", str(FAR_FUTURE_MS))
        _, err = stack.login(self.name, "wrong-password-x", caller=home)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.login(self.name, self.password, caller=home)
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_known_address_keeps_own_streak(self):
        home = {"client-ip": "198.51.100.32"}
        _, err = stack.login(self.name, self.password, caller=home)
        self.assertIsNone(err, err)
        for _ in range(ah.FREE_ATTEMPTS):
            _, err = stack.login(self.name, "wrong-password-x", caller=home)
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.login(self.name, self.password, caller=home)
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def hold_account_streak(self):
        """Makes the account's streak wait, as many guessers would. The
        next admitted attempt sets the streak's next allowed time again."""
        stack.redis("HSET", throttle_name_key(self.name),
                    "next", str(FAR_FUTURE_MS))

    def test_logout_all_ends_known_address(self):
        home = {"client-ip": "198.51.100.33"}
        tokens, err = stack.login(self.name, self.password, caller=home)
        self.assertIsNone(err, err)
        self.hold_account_streak()
        _, err = stack.login(self.name, "wrong-password-x", caller=home)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(all=True),
                            stack.caller_for(tokens))
        self.assertIsNone(err, err)
        # Cleanup deletes the per-user revocation row once the access tokens
        # it revokes have expired, long before the marker expires, so the
        # end of the exemption must not depend on that row.
        stack.sql("DELETE FROM auth.revocations WHERE kind = 'user' AND "
                  "subject = '%s'" % self.user_id)

        # The address the user logged in from before the revocation now
        # waits on the account's streak like any other.
        self.hold_account_streak()
        _, err = stack.login(self.name, "wrong-password-x", caller=home)
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        _, err = stack.login(self.name, self.password, caller=home)
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)

        # A login after the revocation marks the address as known again.
        stack.redis("HDEL", throttle_name_key(self.name), "next")
        _, err = stack.login(self.name, self.password, caller=home)
        self.assertIsNone(err, err)
        self.hold_account_streak()
        _, err = stack.login(self.name, "wrong-password-x", caller=home)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_owner_login_keeps_account_streak(self):
        # The owner's success must not wipe the failures of other
        # addresses, or a guesser could go on after each of its logins.
        for i in range(ah.ACCOUNT_FREE_ATTEMPTS - 1):
            _, err = stack.login(self.name, "wrong-password-x",
                                 caller={"client-ip": "203.0.113.%d" % i})
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": "198.51.100.20"})
        self.assertIsNone(err, err)
        _, err = stack.login(self.name, "wrong-password-x",
                             caller={"client-ip": "203.0.113.200"})
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_unknown_user_throttled_like_known(self):
        ghost = ah.random_name()
        codes = [code(stack.login(ghost, "wrong-password-x")[1])
                 for _ in range(ah.FREE_ATTEMPTS + 1)]
        self.assertEqual(codes[:ah.FREE_ATTEMPTS],
                         [grpc.StatusCode.UNAUTHENTICATED] * ah.FREE_ATTEMPTS)
        self.assertEqual(codes[-1], grpc.StatusCode.RESOURCE_EXHAUSTED)

    def assert_same_answer(self, first, second):
        """Both failed logins got the same status and message."""
        self.assertEqual(code(first), code(second))
        self.assertEqual(first.details(), second.details())

    def test_email_answers_like_unknown_after_username(self):
        # The username's streak from one address must not show which email
        # belongs to the account, or that the account exists.
        guesser = {"client-ip": "203.0.113.50"}
        for _ in range(ah.FREE_ATTEMPTS):
            _, err = stack.login(self.name, "wrong-password-x", caller=guesser)
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.login(self.name, "wrong-password-x", caller=guesser)
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        _, by_email = stack.login(self.name + "@example.com",
                                  "wrong-password-x", caller=guesser)
        _, by_unknown = stack.login(ah.random_name() + "@example.com",
                                    "wrong-password-x", caller=guesser)
        self.assertEqual(code(by_email), grpc.StatusCode.UNAUTHENTICATED)
        self.assert_same_answer(by_email, by_unknown)

    def test_email_answers_like_unknown_after_many_addresses(self):
        for i in range(ah.ACCOUNT_FREE_ATTEMPTS):
            _, err = stack.login(self.name, "wrong-password-x",
                                 caller={"client-ip": "203.0.113.%d" % i})
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        elsewhere = {"client-ip": "198.51.100.40"}
        _, err = stack.login(self.name, "wrong-password-x", caller=elsewhere)
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        _, by_email = stack.login(self.name + "@example.com",
                                  "wrong-password-x", caller=elsewhere)
        _, by_unknown = stack.login(ah.random_name() + "@example.com",
                                    "wrong-password-x", caller=elsewhere)
        self.assertEqual(code(by_email), grpc.StatusCode.UNAUTHENTICATED)
        self.assert_same_answer(by_email, by_unknown)

    def spray(self, addresses):
        """One wrong login with a fresh name from each address."""
        for address in addresses:
            _, err = stack.login(ah.random_name(), "wrong-password-x",
                                 caller={"client-ip": address})
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_spraying_reaches_address_limit(self):
        sprayer = "192.0.2.77"
        self.spray([sprayer] * ah.ADDRESS_FREE_ATTEMPTS)
        _, err = stack.login(ah.random_name(), "wrong-password-x",
                             caller={"client-ip": sprayer})
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn("retry after", err.details())
        # A name the address never tried waits too, right password or not.
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": sprayer})
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # The owner on another address is not affected.
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": "192.0.2.78"})
        self.assertIsNone(err, err)

    def test_spraying_counts_ipv6_by_64(self):
        self.spray(["2001:db8:77::%x" % (i + 1)
                    for i in range(ah.ADDRESS_FREE_ATTEMPTS)])
        _, err = stack.login(ah.random_name(), "wrong-password-x",
                             caller={"client-ip": "2001:db8:77::ffff"})
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": "2001:db8:78::1"})
        self.assertIsNone(err, err)

    def test_known_address_passes_address_limit(self):
        # An owner who shares an address with a sprayer still gets in from
        # it after logging in from it once.
        shared = "192.0.2.79"
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": shared})
        self.assertIsNone(err, err)
        self.spray([shared] * ah.ADDRESS_FREE_ATTEMPTS)
        _, err = stack.login(ah.random_name(), "wrong-password-x",
                             caller={"client-ip": shared})
        self.assertEqual(code(err), grpc.StatusCode.RESOURCE_EXHAUSTED)
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": shared})
        self.assertIsNone(err, err)

    def test_throttle_keys_hold_no_plain_hash(self):
        address = "198.51.100.99"
        unknown = ah.random_name()
        _, err = stack.login(unknown, "wrong-password-x",
                             caller={"client-ip": address})
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.login(self.name, self.password,
                             caller={"client-ip": address})
        self.assertIsNone(err, err)
        keys = stack.redis("--scan", "--pattern", "cerrojo:login:*").split()
        self.assertTrue(keys)
        for text in (address, unknown, self.name):
            digest = hashlib.sha256(text.encode()).hexdigest()
            for key in keys:
                # Older keys carried the whole digest of a name and the
                # first 32 hex digits of an address's.
                self.assertNotIn(digest[:32], key)
        self.assertIn(throttle_name_key(unknown), keys)

    def test_failed_login_creates_no_session(self):
        _, err = stack.login(self.name, "wrong-password-x",
                             secret=os.urandom(SECRET_SIZE))
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        reply, err = stack.login(self.name, self.password,
                                 secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        self.assertTrue(reply.session.session_id)

    def test_stateful_login_binds_request_session(self):
        info = stack.session_stub.CreateSession(
            stack.session_pb2.CreateSessionRequest(
                client_secret=os.urandom(SECRET_SIZE)),
            timeout=ah.CALL_TIMEOUT_S)
        reply, err = stack.login(self.name, self.password, caller={
            "channel": "stateful", "session-id": info.session_id})
        self.assertIsNone(err, err)
        self.assertFalse(reply.HasField("session"))
        claims, _ = stack.introspect(reply.access_token)
        self.assertTrue(claims.active)
        self.assertEqual(claims.sid, info.session_id)
        bound = stack.redis("HGET", "cerrojo:sess:s:" + info.session_id, "u")
        self.assertEqual(bound, self.user_id)

    def test_login_on_session_of_other_user_conflicts(self):
        info = stack.session_stub.CreateSession(
            stack.session_pb2.CreateSessionRequest(
                client_secret=os.urandom(SECRET_SIZE)),
            timeout=ah.CALL_TIMEOUT_S)
        caller = {"channel": "stateful", "session-id": info.session_id}
        _, err = stack.login(self.name, self.password, caller=caller)
        self.assertIsNone(err, err)
        other, err, name, password = stack.register()
        self.assertIsNone(err, err)
        _, err = stack.login(name, password, caller=caller)
        self.assertEqual(code(err), grpc.StatusCode.ALREADY_EXISTS)
        self.assertEqual(err.details(), "the session is bound to another "
                         "user; open a new session")

    def test_zero_client_secret_rejected(self):
        message = ("client_secret is invalid: all bytes are zero, so the "
                   "client's random source is broken")
        _, err = stack.login(self.name, self.password,
                             secret=bytes(SECRET_SIZE))
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(err.details(), message)
        name = ah.random_name()
        _, err = stack.call("Register", stack.auth_pb2.RegisterRequest(
            username=name, email=name + "@example.com",
            password=ah.strong_password(),
            client_secret=bytes(SECRET_SIZE)))
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(err.details(), message)

    def test_client_secret_on_stateful_channel_rejected(self):
        info = stack.session_stub.CreateSession(
            stack.session_pb2.CreateSessionRequest(
                client_secret=os.urandom(SECRET_SIZE)),
            timeout=ah.CALL_TIMEOUT_S)
        caller = {"channel": "stateful", "session-id": info.session_id}
        message = ("client_secret is accepted only on the stateless "
                   "channel; a stateful request binds the session it was "
                   "sent on")
        _, err = stack.login(self.name, self.password,
                             secret=os.urandom(SECRET_SIZE), caller=caller)
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(err.details(), message)
        name = ah.random_name()
        _, err = stack.call("Register", stack.auth_pb2.RegisterRequest(
            username=name, email=name + "@example.com",
            password=ah.strong_password(),
            client_secret=os.urandom(SECRET_SIZE)), caller)
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertEqual(err.details(), message)
        # The session stays unbound, ready for a login without a secret.
        bound = stack.redis("HGET", "cerrojo:sess:s:" + info.session_id, "u")
        self.assertEqual(bound, "")

    def test_audit_records_reason_never_secret(self):
        _, err = stack.login(self.name, "wrong-password-x")
        self.assertIsNotNone(err)
        reply, err = stack.login(self.name, self.password)
        self.assertIsNone(err)
        rows = stack.sql("SELECT event, detail->>'reason' FROM "
                         "auth.audit_events WHERE user_id = '%s' "
                         "ORDER BY id" % self.user_id)
        events = [r[0] for r in rows]
        self.assertEqual(events[0], "register")
        self.assertIn(["login.failure", "wrong_password"], rows)
        self.assertIn("login.success", events)
        dump = "\n".join("|".join(r) for r in stack.sql(
            "SELECT detail::text, coalesce(user_agent, ''), "
            "coalesce(request_id, '') FROM auth.audit_events"))
        for secret in (self.password, "wrong-password-x", reply.access_token,
                       reply.refresh_token):
            self.assertNotIn(secret, dump)


class Refresh(unittest.TestCase):
    def test_rotation_and_reuse_revokes_successor(self):
        first, err, _, _ = stack.register()
        self.assertIsNone(err)
        second, err = stack.refresh(first.refresh_token)
        self.assertIsNone(err)
        self.assertNotEqual(second.refresh_token, first.refresh_token)
        _, err = stack.refresh(first.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.refresh(second.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        rows = stack.sql("SELECT count(*) FROM auth.audit_events WHERE "
                         "event = 'refresh_reuse' AND user_id = '%s'"
                         % first.user_id)
        self.assertEqual(rows, [["1"]])

    def test_rotation_links_successor_and_audits(self):
        first, err, _, _ = stack.register()
        self.assertIsNone(err)
        second, err = stack.refresh(first.refresh_token)
        self.assertIsNone(err)
        rows = stack.sql(
            "SELECT used_at IS NOT NULL, revoked_at IS NULL, "
            "replaced_by = (SELECT id FROM auth.refresh_tokens WHERE "
            "token_hash = sha256(decode('%s', 'base64'))) "
            "FROM auth.refresh_tokens WHERE token_hash = "
            "sha256(decode('%s', 'base64'))"
            % (standard_base64(second.refresh_token), standard_base64(first.refresh_token)))
        self.assertEqual(rows, [["t", "t", "t"]])
        rows = stack.sql("SELECT count(*) FROM auth.refresh_tokens WHERE "
                         "user_id = '%s' AND used_at IS NULL AND "
                         "revoked_at IS NULL" % first.user_id)
        self.assertEqual(rows, [["1"]])
        rows = stack.sql("SELECT detail->>'grace_retry', "
                         "detail->>'family_id' IS NOT NULL FROM "
                         "auth.audit_events WHERE event = 'refresh' AND "
                         "user_id = '%s'" % first.user_id)
        self.assertEqual(rows, [["false", "t"]])

    def test_stateful_family_lives_with_its_session(self):
        tokens, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        sid = tokens.session.session_id
        key = "cerrojo:sess:s:" + sid
        # A refresh counts as activity: the idle expiry moves out again.
        stack.redis("PEXPIRE", key, str(SHORT_SESSION_TTL_MS))
        second, err = stack.refresh(tokens.refresh_token)
        self.assertIsNone(err, err)
        self.assertGreater(int(stack.redis("PTTL", key)), SHORT_SESSION_TTL_MS)
        info, _ = stack.introspect(second.access_token)
        self.assertEqual(info.sid, sid)
        # An expired session leaves no tombstone: its key is simply gone.
        stack.redis("DEL", key)
        _, err = stack.refresh(second.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(err.details(), "invalid refresh token")
        self.assertIn("auth.refresh_session_ended", stack.logs())
        rows = stack.sql("SELECT used_at IS NULL FROM auth.refresh_tokens "
                         "WHERE token_hash = sha256(decode('%s', 'base64'))"
                         % standard_base64(second.refresh_token))
        self.assertEqual(rows, [["t"]])

    def test_refresh_over_own_session_asks_session_nothing(self):
        tokens, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        sid = tokens.session.session_id
        # The gateway opened this request with the session, so auth does
        # not ask session again: with the key gone it still rotates.
        stack.redis("DEL", "cerrojo:sess:s:" + sid)
        caller = {"channel": "stateful", "session-id": sid}
        reply, err = stack.call(
            "Refresh", stack.auth_pb2.RefreshRequest(
                refresh_token=tokens.refresh_token), caller)
        self.assertIsNone(err, err)
        self.assertTrue(reply.refresh_token)

    def test_refresh_refused_on_session_of_other_user(self):
        tokens, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        key = "cerrojo:sess:s:" + tokens.session.session_id
        stack.redis("HSET", key, "u", "00000000-0000-4000-8000-000000000000")
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        self.assertIn('"reason":"session_rebound"', stack.logs())

    def test_refresh_on_session_of_other_user_conflicts(self):
        info = stack.session_stub.CreateSession(
            stack.session_pb2.CreateSessionRequest(
                client_secret=os.urandom(SECRET_SIZE)),
            timeout=ah.CALL_TIMEOUT_S)
        owner, err, name, password = stack.register()
        self.assertIsNone(err, err)
        _, err = stack.login(name, password, caller={
            "channel": "stateful", "session-id": info.session_id})
        self.assertIsNone(err, err)
        other, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        # The gateway names the session's bound user in the caller context.
        caller = {"channel": "stateful", "session-id": info.session_id,
                  "user-id": owner.user_id}
        _, err = stack.call("Refresh", stack.auth_pb2.RefreshRequest(
            refresh_token=other.refresh_token), caller)
        self.assertEqual(code(err), grpc.StatusCode.ALREADY_EXISTS)
        self.assertEqual(err.details(), "the session is bound to another "
                         "user; open a new session")
        self.assertIn('"reason":"session_bound_to_other_user"', stack.logs())
        # The rejection spends nothing: the token is unused and its family
        # live, so its owner can still refresh with it.
        rows = stack.sql("SELECT used_at IS NULL, revoked_at IS NULL FROM "
                         "auth.refresh_tokens WHERE token_hash = "
                         "sha256(decode('%s', 'base64'))"
                         % standard_base64(other.refresh_token))
        self.assertEqual(rows, [["t", "t"]])
        _, err = stack.refresh(other.refresh_token)
        self.assertIsNone(err, err)

    def test_reuse_audited_after_session_ended(self):
        first, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        _, err = stack.refresh(first.refresh_token)
        self.assertIsNone(err, err)
        stack.redis("DEL", "cerrojo:sess:s:" + first.session.session_id)
        _, err = stack.refresh(first.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        rows = stack.sql("SELECT count(*) FROM auth.audit_events WHERE "
                         "event = 'refresh_reuse' AND user_id = '%s'"
                         % first.user_id)
        self.assertEqual(rows, [["1"]])

    def test_disabled_user_cannot_refresh(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        stack.sql("UPDATE auth.users SET status = 'disabled' WHERE id = '%s'"
                  % tokens.user_id)
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_malformed_token_rejected(self):
        for token in ("", "x" * 43, "not a token"):
            _, err = stack.refresh(token)
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_concurrent_refreshes_one_successor_family_revoked(self):
        first, err, _, _ = stack.register()
        self.assertIsNone(err)
        with concurrent.futures.ThreadPoolExecutor(CONCURRENT_REFRESHES) as ex:
            results = list(ex.map(lambda _: stack.refresh(first.refresh_token),
                                  range(CONCURRENT_REFRESHES)))
        codes = [code(err) for _, err in results]
        self.assertEqual(codes.count(grpc.StatusCode.OK), 1, codes)
        self.assertEqual(codes.count(grpc.StatusCode.UNAUTHENTICATED),
                         CONCURRENT_REFRESHES - 1, codes)
        rows = stack.sql("SELECT count(*), count(*) FILTER (WHERE revoked_at "
                         "IS NULL AND used_at IS NULL) FROM "
                         "auth.refresh_tokens WHERE user_id = '%s'"
                         % first.user_id)
        self.assertEqual(rows, [["2", "0"]])
        rows = stack.sql("SELECT count(*) FROM auth.audit_events WHERE "
                         "event = 'refresh_reuse' AND user_id = '%s'"
                         % first.user_id)
        self.assertEqual(rows, [["1"]])

    def test_reuse_revokes_family_access_tokens(self):
        first, err, name, password = stack.register()
        self.assertIsNone(err)
        other, err = stack.login(name, password)
        self.assertIsNone(err)
        second, err = stack.refresh(first.refresh_token)
        self.assertIsNone(err)
        _, err = stack.refresh(first.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        for tokens in (first, second):
            info, err = stack.introspect(tokens.access_token)
            self.assertIsNone(err)
            self.assertFalse(info.active)
        info, err = stack.introspect(other.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)


def refresh_elsewhere_then_logout(test):
    """Registers a user, logs in a second family, refreshes the first
    family on another device and logs the first device out. Returns the
    refreshed tokens and the second family's tokens."""
    first, err, name, password = stack.register()
    test.assertIsNone(err)
    other, err = stack.login(name, password)
    test.assertIsNone(err)
    caller = stack.caller_for(first)
    second, err = stack.refresh(first.refresh_token)
    test.assertIsNone(err)
    _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
        refresh_token=first.refresh_token), caller)
    test.assertIsNone(err, err)
    return second, other


class Logout(unittest.TestCase):
    def test_logout_then_refresh_and_introspect_fail(self):
        tokens, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        caller = stack.caller_for(tokens, "stateful")
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token), caller)
        self.assertIsNone(err, err)
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        self.assertEqual(stack.redis(
            "EXISTS", "cerrojo:sess:s:" + tokens.session.session_id), "0")
        # A second logout is harmless.
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token), caller)
        self.assertIsNone(err)

    def test_stateless_logout_revokes_access_token(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        caller = stack.caller_for(tokens)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token), caller)
        self.assertIsNone(err)
        info, _ = stack.introspect(tokens.access_token)
        self.assertFalse(info.active)
        rows = stack.sql("SELECT count(*) FROM auth.revocations WHERE "
                         "kind = 'token' AND subject = '%s'"
                         % caller["token-id"])
        self.assertEqual(rows, [["1"]])

    def test_logout_revokes_access_token_refreshed_elsewhere(self):
        # Device B has a copy of A's tokens and refreshes. A then logs out
        # with the refresh token it still has.
        second, other = refresh_elsewhere_then_logout(self)
        info, err = stack.introspect(second.access_token)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        _, err = stack.refresh(second.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        info, err = stack.introspect(other.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)

    def test_refresh_past_deadline_leaves_token_unused(self):
        # A refresh that finishes after its caller gave up must not commit
        # the rotation: the caller still holds only the presented token,
        # and its retry would otherwise count as reuse.
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        abandoned = stack.metric("auth_refreshes_total")

        locker = lock_table("auth.refresh_tokens")
        deadline = time.monotonic() + RELOAD_TIMEOUT_S

        _, err = stack.refresh(tokens.refresh_token,
                               timeout_s=SHORT_DEADLINE_S)
        self.assertEqual(code(err), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(locker.wait(timeout=RELOAD_TIMEOUT_S), 0)

        # Auth counts the late call once it has rolled the rotation back.
        while (time.monotonic() < deadline and
               stack.metric("auth_refreshes_total") == abandoned):
            time.sleep(0.05)
        self.assertEqual(stack.sql(
            "SELECT count(*) FROM auth.refresh_tokens WHERE user_id = '%s'"
            % tokens.user_id), [["1"]])

        second, err = stack.refresh(tokens.refresh_token)
        self.assertIsNone(err, err)
        self.assertTrue(second.refresh_token)

    def test_register_past_deadline_writes_nothing(self):
        # A registration that stalls on the database until its caller gave
        # up must be rolled back. The client received an error, registers
        # again and would otherwise get a taken name.
        registrations = stack.metric("auth_registrations_total")
        locker = lock_table("auth.users")
        deadline = time.monotonic() + RELOAD_TIMEOUT_S

        name = ah.random_name()
        password = ah.strong_password()
        _, err = stack.call("Register", stack.auth_pb2.RegisterRequest(
            username=name, email=name + "@example.com", password=password),
            timeout_s=SHORT_DEADLINE_S)
        self.assertEqual(code(err), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(locker.wait(timeout=RELOAD_TIMEOUT_S), 0)
        while (time.monotonic() < deadline and
               stack.metric("auth_registrations_total") == registrations):
            time.sleep(0.05)

        self.assertEqual(stack.sql(
            "SELECT count(*) FROM auth.users WHERE username = '%s'" % name),
            [["0"]])
        # gRPC ends the call at its deadline, so auth reads it as cancelled
        # and stops it at the password gate, or at the commit check when
        # the hash had already begun.
        logs = stack.logs()
        self.assertTrue("auth.register_abandoned" in logs or
                        '"reason":"cancelled"' in logs, logs[-2000:])
        tokens, err, _, _ = stack.register(username=name, password=password)
        self.assertIsNone(err, err)
        self.assertTrue(tokens.access_token)

    def test_reuse_past_deadline_revokes_nothing(self):
        # A client whose refresh stalled retries with the same token, as
        # the 503 requests, and gets its successor. The stalled call, run once
        # the database is back, then finds the token used; its caller is
        # gone, so it must not end the family of the client that retried.
        first, err, _, _ = stack.register()
        self.assertIsNone(err)
        second, err = stack.refresh(first.refresh_token)
        self.assertIsNone(err)
        refreshes = stack.metric("auth_refreshes_total")

        locker = lock_table("auth.refresh_tokens")
        deadline = time.monotonic() + RELOAD_TIMEOUT_S

        _, err = stack.refresh(first.refresh_token,
                               timeout_s=SHORT_DEADLINE_S)
        self.assertEqual(code(err), grpc.StatusCode.DEADLINE_EXCEEDED)
        self.assertEqual(locker.wait(timeout=RELOAD_TIMEOUT_S), 0)
        while (time.monotonic() < deadline and
               stack.metric("auth_refreshes_total") == refreshes):
            time.sleep(0.05)

        self.assertEqual(stack.sql(
            "SELECT count(*) FROM auth.audit_events WHERE event = "
            "'refresh_reuse' AND user_id = '%s'" % first.user_id), [["0"]])
        info, err = stack.introspect(second.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)
        third, err = stack.refresh(second.refresh_token)
        self.assertIsNone(err, err)
        # The same reuse in time still ends the family.
        _, err = stack.refresh(first.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.refresh(third.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_refresh_rejects_token_older_than_user_revocation(self):
        # The user's revocation time alone must stop a refresh token issued
        # before it, even where the token row itself was not revoked (a
        # rotation that raced a logout of every device).
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        stack.sql("INSERT INTO auth.revocations (kind, subject, revoked_at, "
                  "expires_at) VALUES ('user', '%s', now() + interval "
                  "'1 second', now() + interval '1 day')" % tokens.user_id)
        self.assertEqual(stack.sql(
            "SELECT count(*) FROM auth.refresh_tokens WHERE user_id = '%s' "
            "AND revoked_at IS NULL" % tokens.user_id), [["1"]])
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_refresh_rejected_after_revocation_row_deleted(self):
        # A refresh token that missed the UPDATE of a logout of all devices
        # (a rotation racing it) must stay rejected once cleanup has
        # deleted the user's revocation row.
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(all=True),
                            stack.caller_for(tokens))
        self.assertIsNone(err, err)
        stack.sql("UPDATE auth.refresh_tokens SET revoked_at = NULL, "
                  "revoked_reason = NULL WHERE user_id = '%s'"
                  % tokens.user_id)
        stack.sql("DELETE FROM auth.revocations WHERE kind = 'user' AND "
                  "subject = '%s'" % tokens.user_id)
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_logout_all_invalidates_every_device(self):
        first, err, name, password = stack.register(
            secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        second, err = stack.login(name, password,
                                  secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        third, err = stack.login(name, password)
        self.assertIsNone(err)
        sessions = [first.session.session_id, second.session.session_id]
        for sid in sessions:
            self.assertEqual(stack.redis("EXISTS", "cerrojo:sess:s:" + sid),
                             "1")
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(all=True),
                            stack.caller_for(third))
        self.assertIsNone(err, err)
        for sid in sessions:
            self.assertEqual(stack.redis("EXISTS", "cerrojo:sess:s:" + sid),
                             "0")
        for tokens in (first, second, third):
            info, _ = stack.introspect(tokens.access_token)
            self.assertFalse(info.active)
            _, err = stack.refresh(tokens.refresh_token)
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_login_right_after_logout_all_is_valid(self):
        tokens, err, name, password = stack.register()
        self.assertIsNone(err)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(all=True),
                            stack.caller_for(tokens))
        self.assertIsNone(err, err)
        again, err = stack.login(name, password)
        self.assertIsNone(err, err)
        info, _ = stack.introspect(again.access_token)
        self.assertTrue(info.active)
        _, err = stack.refresh(again.refresh_token)
        self.assertIsNone(err, err)

    def test_stateful_logout_without_token_ends_family(self):
        tokens, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(),
                            stack.caller_for(tokens, "stateful"))
        self.assertIsNone(err, err)
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        info, _ = stack.introspect(tokens.access_token)
        self.assertFalse(info.active)

    def test_stateless_logout_without_token_ends_family(self):
        # The access token's jti names its refresh row, so the family ends
        # without the refresh token, also after a rotation.
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        rotated, err = stack.refresh(tokens.refresh_token)
        self.assertIsNone(err)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(),
                            stack.caller_for(rotated))
        self.assertIsNone(err, err)
        _, err = stack.refresh(rotated.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        info, _ = stack.introspect(rotated.access_token)
        self.assertFalse(info.active)

    def test_stateless_logout_without_any_token_rejected(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        caller = stack.caller_for(tokens)
        del caller["token-id"]
        del caller["token-expires-at"]
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(), caller)
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("refresh_token is missing", err.details())
        _, err = stack.refresh(tokens.refresh_token)
        self.assertIsNone(err, err)

    def test_logout_needs_caller(self):
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest())
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_stateless_logout_without_credentials_is_invalid(self):
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(),
                            {"channel": "stateless"})
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("neither an access token nor a refresh_token",
                      err.details())

    def test_logout_by_refresh_token_alone_revokes_family(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token), {"channel": "stateless"})
        self.assertIsNone(err, err)
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        # The family's access token is revoked with it.
        info, _ = stack.introspect(tokens.access_token)
        self.assertFalse(info.active)

    def test_logout_all_by_refresh_token_alone_rejected(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token, all=True),
            {"channel": "stateless"})
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("a logout of all devices needs the access token",
                      err.details())
        _, err = stack.refresh(tokens.refresh_token)
        self.assertIsNone(err, err)

    def test_logout_by_unknown_refresh_token_rejected(self):
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
            refresh_token="A" * 43), {"channel": "stateless"})
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(err.details(), "invalid refresh token")

    def test_logout_with_other_users_token_conflicts(self):
        mine, err, _, _ = stack.register()
        self.assertIsNone(err)
        theirs, err, _, _ = stack.register()
        self.assertIsNone(err)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
            refresh_token=theirs.refresh_token), stack.caller_for(mine))
        self.assertEqual(code(err), grpc.StatusCode.ALREADY_EXISTS)
        self.assertEqual(err.details(), "the refresh token belongs to "
                         "another user; send this user's own refresh token")
        # Nothing was revoked, for either user.
        info, _ = stack.introspect(mine.access_token)
        self.assertTrue(info.active)
        _, err = stack.refresh(mine.refresh_token)
        self.assertIsNone(err)
        _, err = stack.refresh(theirs.refresh_token)
        self.assertIsNone(err)


class RevocationCache(unittest.TestCase):
    def test_flush_fails_closed_until_reloaded(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        live, err, _, _ = stack.register()
        self.assertIsNone(err)
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(
            refresh_token=tokens.refresh_token), stack.caller_for(tokens))
        self.assertIsNone(err)
        # The watcher may reload the cache before this Introspect runs, so
        # either outcome is allowed, but never an active token.
        stack.redis("FLUSHALL")
        info, err = stack.introspect(tokens.access_token)
        if err is not None:
            self.assertEqual(code(err), grpc.StatusCode.UNAVAILABLE)
        else:
            self.assertFalse(info.active)
        stack.wait_cache_loaded()
        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        info, err = stack.introspect(live.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)

    def test_family_revocation_survives_flush(self):
        second, other = refresh_elsewhere_then_logout(self)
        stack.redis("FLUSHALL")
        stack.wait_cache_loaded()
        info, err = stack.introspect(second.access_token)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        info, err = stack.introspect(other.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)


class Data(unittest.TestCase):
    def setUp(self):
        self.tokens, err, self.name, _ = stack.register()
        self.assertIsNone(err)
        self.caller = stack.caller_for(self.tokens)
        self.stateful = dict(self.caller, channel="stateful")

    def put(self, cls, fields, caller=None):
        return stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields=fields, **{"class": cls}), caller or self.caller)

    def get(self, cls, caller=None):
        return stack.call("GetData", stack.auth_pb2.GetDataRequest(
            **{"class": cls}), caller or self.caller)

    def test_public_private_round_trip(self):
        c = stack.common_pb2
        _, err = self.put(c.DATA_CLASS_PUBLIC, {"display_name": "Ana"})
        self.assertIsNone(err, err)
        _, err = self.put(c.DATA_CLASS_PRIVATE, {"phone": "+34 600"})
        self.assertIsNone(err, err)
        reply, err = self.get(c.DATA_CLASS_PRIVATE)
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields), {"phone": "+34 600"})
        profile, err = stack.call("GetProfile",
                                  stack.auth_pb2.GetProfileRequest(),
                                  self.caller)
        self.assertIsNone(err)
        self.assertEqual(profile.username, self.name)
        self.assertEqual(dict(profile.public_data), {"display_name": "Ana"})
        self.assertEqual(profile.user_id, self.tokens.user_id)
        row = stack.sql("SELECT email, (extract(epoch FROM created_at) * "
                        "1000)::bigint FROM auth.users WHERE id = '%s'"
                        % self.tokens.user_id)
        self.assertEqual(profile.email, row[0][0])
        self.assertEqual(profile.created_at_ms, int(row[0][1]))
        self.assertGreater(profile.created_at_ms, 0)
        rows = stack.sql("SELECT position('+34'::bytea in ciphertext) FROM "
                         "auth.data_private WHERE user_id = '%s'"
                         % self.tokens.user_id)
        self.assertEqual(rows, [["0"]])

    def test_protected_needs_stateful_and_is_audited(self):
        c = stack.common_pb2
        _, err = self.put(c.DATA_CLASS_PROTECTED, {"id_number": "X1"})
        self.assertEqual(code(err), grpc.StatusCode.PERMISSION_DENIED)
        _, err = self.put(c.DATA_CLASS_PROTECTED, {"id_number": "X1"},
                          self.stateful)
        self.assertIsNone(err, err)
        reply, err = self.get(c.DATA_CLASS_PROTECTED, self.stateful)
        self.assertIsNone(err)
        self.assertEqual(dict(reply.fields), {"id_number": "X1"})
        rows = stack.sql("SELECT event FROM auth.audit_events WHERE "
                         "user_id = '%s' AND event LIKE 'data.%%' ORDER BY id"
                         % self.tokens.user_id)
        self.assertEqual(rows, [["data.protected_write"],
                                ["data.protected_read"]])

    def test_private_value_copied_to_protected_fails(self):
        c = stack.common_pb2
        _, err = self.put(c.DATA_CLASS_PRIVATE, {"secret_note": "hello"})
        self.assertIsNone(err)
        stack.sql("INSERT INTO auth.data_protected (user_id, field, nonce, "
                  "ciphertext) SELECT user_id, field, nonce, ciphertext FROM "
                  "auth.data_private WHERE user_id = '%s'"
                  % self.tokens.user_id)
        _, err = self.get(c.DATA_CLASS_PROTECTED, self.stateful)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_wrapped_key_copied_to_other_user_fails(self):
        c = stack.common_pb2
        other, err, _, _ = stack.register()
        self.assertIsNone(err)
        _, err = self.put(c.DATA_CLASS_PRIVATE, {"note": "mine"})
        self.assertIsNone(err)
        stack.sql("UPDATE auth.users SET wrapped_key = (SELECT wrapped_key "
                  "FROM auth.users WHERE id = '%s') WHERE id = '%s'"
                  % (other.user_id, self.tokens.user_id))
        _, err = self.get(c.DATA_CLASS_PRIVATE)
        self.assertIsNotNone(err)
        self.assertNotEqual(code(err), grpc.StatusCode.OK)

    def test_data_needs_caller(self):
        _, err = stack.call("GetData", stack.auth_pb2.GetDataRequest(
            **{"class": stack.common_pb2.DATA_CLASS_PUBLIC}))
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)


class AuditAndJobs(unittest.TestCase):
    def test_record_audit_from_gateway(self):
        _, err = stack.call("RecordAudit", stack.auth_pb2.RecordAuditRequest(
            event="gateway.rate_limited", detail_json='{"route":"/v1/login"}'),
            {"client-ip": "203.0.113.9", "request-id": "gw-audit-1"})
        self.assertIsNone(err, err)
        rows = stack.sql("SELECT host(client_ip), detail->>'route' FROM "
                         "auth.audit_events WHERE event = "
                         "'gateway.rate_limited'")
        self.assertIn(["203.0.113.9", "/v1/login"], rows)
        _, err = stack.call("RecordAudit", stack.auth_pb2.RecordAuditRequest(
            event="login.success", detail_json="{}"))
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)

    def test_audit_is_append_only(self):
        _, err, _, _ = stack.register()
        self.assertIsNone(err)
        rc, stderr = stack.sql_error(
            "SET ROLE cerrojo_auth; UPDATE auth.audit_events SET event = 'x'")
        self.assertNotEqual(rc, 0)
        self.assertIn("append-only", stderr)
        rc, stderr = stack.sql_error("DELETE FROM auth.audit_events")
        self.assertNotEqual(rc, 0)
        self.assertIn("append-only", stderr)

    def test_rewrap_after_kek_rotation_keeps_data(self):
        c = stack.common_pb2
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        caller = stack.caller_for(tokens)
        _, err = stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields={"note": "kept"}, **{"class": c.DATA_CLASS_PRIVATE}),
            caller)
        self.assertIsNone(err, err)
        res = stack.run_kms_command("rotate", "kek")
        self.assertEqual(res.returncode, 0, res.stderr)
        [[before]] = stack.sql("SELECT max(kek_version) FROM auth.users")
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        after = before
        while after == before and time.monotonic() < deadline:
            time.sleep(0.5)  # kms rereads its key set every second
            res = stack.run_auth_command("rewrap-keys")
            self.assertEqual(res.returncode, 0, res.stderr)
            [[after]] = stack.sql("SELECT min(kek_version) FROM auth.users")
        self.assertEqual(int(after), int(before) + 1)
        reply, err = stack.call("GetData", stack.auth_pb2.GetDataRequest(
            **{"class": c.DATA_CLASS_PRIVATE}), caller)
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields), {"note": "kept"})

    def test_clock_check_reaches_postgres(self):
        deadline = time.monotonic() + RELOAD_TIMEOUT_S
        while (stack.metric("auth_postgres_up") != 1 and
               time.monotonic() < deadline):
            time.sleep(0.2)
        self.assertEqual(stack.metric("auth_postgres_up"), 1)
        self.assertLess(abs(stack.metric("auth_clock_offset_seconds")), 1)

    def test_cleanup_and_rewrap_commands(self):
        stack.sql("INSERT INTO auth.revocations (kind, subject, revoked_at, "
                  "expires_at) VALUES ('token', 'expired-jti', now() - "
                  "interval '2 days', now() - interval '1 day')")
        first, err, _, _ = stack.register()
        self.assertIsNone(err)
        second, err = stack.refresh(first.refresh_token)
        self.assertIsNone(err)
        # The used first token expired long ago; its successor is live.
        stack.sql("UPDATE auth.refresh_tokens SET issued_at = now() - "
                  "interval '40 days', expires_at = now() - interval "
                  "'10 days' WHERE user_id = '%s' AND used_at IS NOT NULL"
                  % first.user_id)
        res = stack.run_auth_command("cleanup")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("cleanup: ran", res.stdout)
        self.assertEqual(stack.sql("SELECT count(*) FROM auth.revocations "
                                   "WHERE subject = 'expired-jti'"), [["0"]])
        self.assertEqual(stack.sql("SELECT count(*) FROM auth.refresh_tokens "
                                   "WHERE user_id = '%s'" % first.user_id),
                         [["1"]])
        _, err = stack.refresh(second.refresh_token)
        self.assertIsNone(err, err)
        res = stack.run_auth_command("rewrap-keys")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("rewrap-keys: ran", res.stdout)


# A user id that no row has, for a refresh token or data field whose user
# was deleted while the request ran.
ABSENT_USER_ID = "00000000-0000-4000-8000-000000000000"


class UserRowVanishes:
    """Makes every insert into auth.TABLE for user_id fail the foreign key
    on the user row, as when delete-user commits between a request's read
    of the user and its write. A trigger rewrites the row's user_id to an
    id with no user, so the timing is deterministic."""

    def __init__(self, table, user_id):
        self.table = table
        self.user_id = user_id
        self.name = "test_user_vanishes_" + os.urandom(4).hex()

    def __enter__(self):
        stack.sql(
            "CREATE FUNCTION auth.%s() RETURNS trigger LANGUAGE plpgsql AS "
            "$$BEGIN NEW.user_id := '%s'::uuid; RETURN NEW; END$$; "
            "CREATE TRIGGER %s BEFORE INSERT ON auth.%s FOR EACH ROW "
            "WHEN (NEW.user_id = '%s'::uuid) EXECUTE FUNCTION auth.%s()"
            % (self.name, ABSENT_USER_ID, self.name, self.table,
               self.user_id, self.name))
        return self

    def __exit__(self, *exc):
        stack.sql("DROP TRIGGER %s ON auth.%s; DROP FUNCTION auth.%s()"
                  % (self.name, self.table, self.name))
        return False


class UserDeletedMidRequest(unittest.TestCase):
    def test_login_returns_invalid_credentials(self):
        tokens, err, name, password = stack.register()
        self.assertIsNone(err, err)
        with UserRowVanishes("refresh_tokens", tokens.user_id):
            _, err = stack.login(name, password)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(err.details(), "invalid credentials")
        self.assertEqual(stack.sql(
            "SELECT count(*) FROM auth.audit_events WHERE event = "
            "'login.failure' AND user_id = '%s' AND detail->>'reason' = "
            "'user_deleted_during_login'" % tokens.user_id), [["1"]])

    def test_refresh_returns_invalid_token(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        with UserRowVanishes("refresh_tokens", tokens.user_id):
            _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(err.details(), "invalid refresh token")

    def test_refresh_after_row_deleted(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        stack.sql("DELETE FROM auth.users WHERE id = '%s'" % tokens.user_id)
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)

    def test_put_data_returns_unauthenticated(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        for cls, table in ((stack.common_pb2.DATA_CLASS_PUBLIC, "data_public"),
                           (stack.common_pb2.DATA_CLASS_PRIVATE,
                            "data_private")):
            with UserRowVanishes(table, tokens.user_id):
                _, err = stack.call("PutData", stack.auth_pb2.PutDataRequest(
                    fields={"note": "text"}, **{"class": cls}),
                    stack.caller_for(tokens))
            self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED, table)

    def test_data_and_profile_after_row_deleted(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        stack.sql("DELETE FROM auth.users WHERE id = '%s'" % tokens.user_id)
        caller = stack.caller_for(tokens)
        private = {"class": stack.common_pb2.DATA_CLASS_PRIVATE}
        _, err = stack.call("GetData", stack.auth_pb2.GetDataRequest(
            **private), caller)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields={"note": "text"}, **private), caller)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        _, err = stack.call("GetProfile", stack.auth_pb2.GetProfileRequest(),
                            caller)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)


class DeleteUser(unittest.TestCase):
    def test_delete_user_removes_data_tokens_sessions_key(self):
        tokens, err, name, password = stack.register(
            secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        sid = tokens.session.session_id
        _, err = stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields={"note": "secret"},
            **{"class": stack.common_pb2.DATA_CLASS_PRIVATE}),
            stack.caller_for(tokens))
        self.assertIsNone(err, err)
        self.assertEqual(stack.redis("EXISTS", "cerrojo:sess:s:" + sid), "1")

        res = stack.run_auth_command("delete-user", name.upper())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("delete-user: user %s; row deleted; sessions ended; "
                      "data key forgotten" % tokens.user_id, res.stdout)

        info, err = stack.introspect(tokens.access_token)
        self.assertIsNone(err, err)
        self.assertFalse(info.active)
        _, err = stack.refresh(tokens.refresh_token)
        self.assertEqual(code(err), grpc.StatusCode.UNAUTHENTICATED)
        uid = tokens.user_id
        for table in ("users", "data_private", "refresh_tokens"):
            column = "id" if table == "users" else "user_id"
            self.assertEqual(stack.sql(
                "SELECT count(*) FROM auth.%s WHERE %s = '%s'"
                % (table, column, uid)), [["0"]], table)
        self.assertEqual(stack.sql(
            "SELECT count(*) FROM auth.revocations WHERE kind = 'user' "
            "AND subject = '%s'" % uid), [["1"]])
        self.assertEqual(stack.sql(
            "SELECT count(*) FROM auth.audit_events WHERE event = "
            "'user.deleted' AND user_id = '%s'" % uid), [["1"]])
        self.assertEqual(stack.sql(
            "SELECT count(*) FROM kms.data_key_versions WHERE user_id = "
            "'%s'" % uid), [["0"]])
        self.assertEqual(stack.redis("EXISTS", "cerrojo:sess:s:" + sid), "0")
        self.assertEqual(stack.redis("EXISTS", "cerrojo:sess:u:" + uid), "0")

        # The name is free again, for a new user with a new id.
        again, err, _, _ = stack.register(username=name, password=password)
        self.assertIsNone(err, err)
        self.assertNotEqual(again.user_id, uid)

    def test_delete_user_by_id_twice(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        res = stack.run_auth_command("delete-user", tokens.user_id)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("row deleted", res.stdout)
        # A repeat finds no row and still runs the later steps.
        res = stack.run_auth_command("delete-user", tokens.user_id)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("row not found; sessions ended; data key none held",
                      res.stdout)

    def test_delete_user_unknown_name(self):
        res = stack.run_auth_command("delete-user", ah.random_name())
        self.assertEqual(res.returncode, 3, res.stdout)
        self.assertIn("no user has the id, username or email", res.stderr)

    def test_delete_user_needs_one_argument(self):
        res = stack.run_auth_command("delete-user")
        self.assertEqual(res.returncode, 2)
        self.assertIn("expected one argument", res.stderr)
        res = stack.run_auth_command("delete-user", "a", "b")
        self.assertEqual(res.returncode, 2)

    def test_delete_user_empty_argument(self):
        res = stack.run_auth_command("delete-user", "")
        self.assertEqual(res.returncode, 2)
        self.assertIn("expected one argument", res.stderr)

    def test_delete_user_never_existing_id(self):
        user_id = str(uuid.uuid4())
        res = stack.run_auth_command("delete-user", user_id)
        self.assertEqual(res.returncode, 3, res.stdout)
        self.assertEqual(res.stdout, "")
        self.assertIn("no user has the id, username or email", res.stderr)

    def test_delete_user_upper_case_id(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        res = stack.run_auth_command("delete-user", tokens.user_id.upper())
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("delete-user: user %s; row deleted; sessions ended; "
                      "data key forgotten" % tokens.user_id, res.stdout)

    def test_delete_user_kms_unreachable(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        env = dict(stack.auth.env,
                   CERROJO_AUTH_KMS_TARGET="127.0.0.1:%d" % closed_port())
        # stderr joins stdout, so the order the operator sees is checked.
        res = subprocess.run(
            [stack.auth.binary(), "delete-user", tokens.user_id], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=ah.READY_TIMEOUT_S)
        self.assertEqual(res.returncode, 1, res.stdout)
        summary = ("delete-user: user %s; row deleted; sessions ended; "
                   "data key not checked" % tokens.user_id)
        self.assertIn(summary, res.stdout)
        self.assertIn("Steps done are listed above", res.stdout)
        self.assertLess(res.stdout.index(summary),
                        res.stdout.index("Steps done are listed above"))

        res = stack.run_auth_command("delete-user", tokens.user_id)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("row not found; sessions ended; data key forgotten",
                      res.stdout)
        self.assertEqual(stack.sql(
            "SELECT count(*) FROM kms.data_key_versions WHERE user_id = "
            "'%s'" % tokens.user_id), [["0"]])


def closed_port():
    """Returns a loopback port that was free a moment ago, where nothing
    listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


if __name__ == "__main__":
    unittest.main(verbosity=2)
