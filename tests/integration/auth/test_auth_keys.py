"""Key-management commands against real kms, session, auth and Postgres:
the messages of cerrojo-kms, and the jobs of cerrojo-auth that re-wrap
data keys after a KEK rotation."""

import os
import socket
import subprocess
import time
import unittest

import grpc

import auth_harness as ah

# cerrojo-kms exit status for a usage error.
EXIT_USAGE = 2
SECRET_SIZE = 32
# Rows of kms.data_key_versions for user ids that auth does not store.
UNKNOWN_USER_RECORDS_SQL = (
    "SELECT count(*) FROM kms.data_key_versions d LEFT JOIN auth.users u "
    "ON u.id::text = d.user_id WHERE u.id IS NULL")
# A user id kms recorded but auth never stored, as a failed registration
# leaves it (format of the ids auth creates).
UNKNOWN_USER_ID = "00000000-0000-4000-8000-00000000f0e1"
# Makes auth's store of every re-wrapped data key fail, as a Postgres error
# after RewrapKey would.
FAIL_WRAPPED_KEY_STORE_SQL = (
    "CREATE FUNCTION public.it_fail_wrapped_key_store() RETURNS trigger "
    "LANGUAGE plpgsql AS $$BEGIN RAISE EXCEPTION 'store failed by the test'; "
    "END$$; "
    "CREATE TRIGGER it_fail_wrapped_key_store BEFORE UPDATE OF wrapped_key "
    "ON auth.users FOR EACH ROW "
    "EXECUTE FUNCTION public.it_fail_wrapped_key_store()")
ALLOW_WRAPPED_KEY_STORE_SQL = (
    "DROP TRIGGER it_fail_wrapped_key_store ON auth.users; "
    "DROP FUNCTION public.it_fail_wrapped_key_store()")
# Attempts of a call right after kms restarted, 0.5 s apart, while auth's
# channel to kms reconnects.
KMS_RECONNECT_ATTEMPTS = 20
# Consecutive unreachable-kms results after which rewrap-keys stops
# (AUTH_JOB_KMS_FAILURES_MAX).
REWRAP_KMS_FAILURES_MAX = 3
# A Postgres address with a port for closed_port(). Port 1 is reserved,
# but a process on a shared machine may still listen there.
UNREACHABLE_DATABASE_URL = "host=127.0.0.1 port=%d dbname=none user=none"

stack = None


def setUpModule():
    global stack
    ah.require_env()
    # Running kms replicas never reload on their own during this module, so
    # that only an explicit reload can make a new KEK take effect.
    stack = ah.Stack(kms_env_overrides={
        "CERROJO_KMS_RELOAD_INTERVAL": "3600"}).start()


def tearDownModule():
    if stack is not None:
        stack.stop()


class KmsCommands(unittest.TestCase):
    def test_unknown_command_is_named(self):
        res = stack.run_kms_command("frobnicate")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("unknown command 'frobnicate'", res.stderr)

    def test_unknown_purpose_is_named(self):
        res = stack.run_kms_command("rotate", "foo")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("invalid key purpose 'foo'", res.stderr)
        res = stack.run_kms_command("retire", "kek")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("invalid key purpose 'kek'", res.stderr)

    def test_extra_argument_is_named(self):
        res = stack.run_kms_command("promote", "now")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("unexpected argument 'now'", res.stderr)

    def test_help_after_command_prints_usage(self):
        for args in (("rotate", "--help"), ("promote", "--help"),
                     ("retire", "-h"), ("destroy-signing", "--help")):
            with self.subTest(args=args):
                res = stack.run_kms_command(*args)
                self.assertEqual(res.returncode, 0, res.stderr)
                self.assertIn("usage: cerrojo-kms", res.stdout)
        res = stack.run_auth_command("cleanup", "--help")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("usage: cerrojo-auth", res.stdout)

    def test_help_after_unknown_command_names_it(self):
        res = stack.run_kms_command("frobnicate", "--help")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("unknown command 'frobnicate'", res.stderr)
        res = stack.run_auth_command("frobnicate", "--help")
        self.assertEqual(res.returncode, EXIT_USAGE)
        self.assertIn("unknown command 'frobnicate'", res.stderr)

    def test_auth_extra_argument_is_named(self):
        for command in ("cleanup", "rewrap-keys", "healthcheck"):
            with self.subTest(command=command):
                res = stack.run_auth_command(command, "extra")
                self.assertEqual(res.returncode, EXIT_USAGE)
                self.assertIn("cerrojo-auth %s: unexpected argument 'extra'"
                              % command, res.stderr)

    def test_second_signing_rotation_names_next_step(self):
        first = stack.run_kms_command("rotate", "signing")
        self.assertEqual(first.returncode, 0, first.stderr)
        try:
            second = stack.run_kms_command("rotate", "signing")
            self.assertEqual(second.returncode, 1)
            self.assertIn("cerrojo-kms promote", second.stderr)
            self.assertIn("cerrojo-kms retire signing", second.stderr)
        finally:
            res = stack.run_kms_command("retire", "signing")
            self.assertEqual(res.returncode, 0, res.stderr)

    def test_rotate_signing_names_kid_and_promote(self):
        res = stack.run_kms_command("rotate", "signing")
        self.assertEqual(res.returncode, 0, res.stderr)
        kid = signing_kid("next")
        self.assertIn("signing key %s is next" % kid, res.stdout)
        self.assertIn("run `cerrojo-kms promote` from about ", res.stdout)
        self.assertIn("(CERROJO_KMS_PROMOTE_AFTER, 600 s)", res.stdout)
        self.assertEqual(len(res.stdout.splitlines()), 1, res.stdout)
        res = stack.run_kms_command("retire", "signing")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("retired the next signing key %s without promoting it"
                      % kid, res.stdout)
        self.assertIn("`cerrojo-kms rotate signing`", res.stdout)
        self.assertEqual(len(res.stdout.splitlines()), 1, res.stdout)

    def test_rotate_hpke_names_key_and_listing(self):
        res = stack.run_kms_command("rotate", "hpke")
        self.assertEqual(res.returncode, 0, res.stderr)
        [[key_id]] = stack.sql(
            "SELECT key_id FROM kms.hpke_keys WHERE state = 'active'")
        self.assertIn("HPKE key %s is active" % key_id, res.stdout)
        # Twice the module's reload interval of 3600 s.
        self.assertIn("lists it once it is 7200 s old", res.stdout)
        # The acceptance window covers a key list signed just before the
        # listing: 7200 s plus the default key-list lifetime (3600 s) and
        # clock offset limit (5 s). Destruction waits for its end.
        self.assertIn("still opens requests for 10805 s", res.stdout)
        self.assertIn("`cerrojo-kms destroy-expired` destroys it once "
                      "10805 s have passed", res.stdout)
        self.assertEqual(len(res.stdout.splitlines()), 1, res.stdout)

    def test_retire_hpke_names_reload_bound(self):
        res = stack.run_kms_command("rotate", "hpke")
        self.assertEqual(res.returncode, 0, res.stderr)
        res = stack.run_kms_command("retire", "hpke")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("ended the acceptance window of", res.stdout)
        # The module's reload interval, which bounds the running replicas.
        self.assertIn("CERROJO_KMS_RELOAD_INTERVAL (3600 s)", res.stdout)
        self.assertIn("restart every kms replica", res.stdout)
        self.assertEqual(len(res.stdout.splitlines()), 1, res.stdout)

    def test_rotate_keylist_names_signer_and_retire(self):
        res = stack.run_kms_command("rotate", "keylist")
        self.assertEqual(res.returncode, 0, res.stderr)
        [[active]] = stack.sql("SELECT fingerprint FROM kms.key_list_signers "
                               "WHERE state = 'active'")
        [[previous]] = stack.sql("SELECT fingerprint FROM "
                                 "kms.key_list_signers WHERE state = "
                                 "'previous'")
        self.assertIn("key-list signer %s is active" % active, res.stdout)
        self.assertIn("run `cerrojo-kms retire keylist`", res.stdout)
        self.assertEqual(len(res.stdout.splitlines()), 1, res.stdout)
        res = stack.run_kms_command("retire", "keylist")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("destroyed the previous key-list signer %s" % previous,
                      res.stdout)
        self.assertEqual(len(res.stdout.splitlines()), 1, res.stdout)

    def test_promote_names_active_and_retired_keys(self):
        res = stack.run_kms_command("rotate", "signing")
        self.assertEqual(res.returncode, 0, res.stderr)
        kid = signing_kid("next")
        active = signing_kid("active")
        env = dict(stack.kms.env, CERROJO_KMS_PROMOTE_AFTER="0")
        res = subprocess.run([stack.kms.binary(), "promote"], env=env,
                             capture_output=True, text=True,
                             timeout=ah.READY_TIMEOUT_S)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(signing_kid("active"), kid)
        self.assertIn("signing key %s is active" % kid, res.stdout)
        self.assertIn("CERROJO_KMS_RELOAD_INTERVAL (3600 s)", res.stdout)
        self.assertIn("The previous key %s is retired" % active, res.stdout)
        self.assertIn("`cerrojo-kms destroy-expired`", res.stdout)
        self.assertEqual(len(res.stdout.splitlines()), 1, res.stdout)

    def test_destroy_signing_names_active_key(self):
        # A next key is destroyed, so the key that the running kms signs
        # with stays active for the other tests of this module.
        res = stack.run_kms_command("rotate", "signing")
        self.assertEqual(res.returncode, 0, res.stderr)
        kid = signing_kid("next")
        active = signing_kid("active")
        res = stack.run_kms_command("destroy-signing", kid)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("destroyed signing key %s; the active signing key %s "
                      "is unchanged" % (kid, active), res.stdout)
        self.assertEqual(len(res.stdout.splitlines()), 1, res.stdout)

    def test_destroy_signing_twice_reports_destroyed(self):
        res = stack.run_kms_command("rotate", "signing")
        self.assertEqual(res.returncode, 0, res.stderr)
        kid = signing_kid("next")
        res = stack.run_kms_command("destroy-signing", kid)
        self.assertEqual(res.returncode, 0, res.stderr)
        res = stack.run_kms_command("destroy-signing", kid)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("signing key %s is already destroyed; nothing changed"
                      % kid, res.stdout)
        self.assertIn("The active signing key is %s" % signing_kid("active"),
                      res.stdout)
        self.assertEqual(res.stderr.count('"event":"kms.signing_key_'
                                          'destroyed"'), 0, res.stderr)

    def test_destroy_expired_names_unreachable_postgres(self):
        env = dict(stack.kms.env,
                   CERROJO_KMS_DATABASE_URL=UNREACHABLE_DATABASE_URL
                   % closed_port())
        res = subprocess.run([stack.kms.binary(), "destroy-expired"], env=env,
                             capture_output=True, text=True,
                             timeout=ah.READY_TIMEOUT_S)
        self.assertEqual(res.returncode, 1, res.stderr)
        self.assertIn("cerrojo-kms destroy-expired: failed: Postgres is "
                      "unreachable", res.stderr)
        self.assertIn("CERROJO_KMS_DATABASE_URL", res.stderr)

    def test_destroy_signing_unknown_kid_fails(self):
        res = stack.run_kms_command("destroy-signing", "no-such-kid")
        self.assertEqual(res.returncode, 1)
        self.assertIn("no signing key has this kid", res.stderr)


def closed_port():
    """Returns a loopback port that was free a moment ago, where nothing
    listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def signing_kid(state):
    """Returns the kid of the one signing key in `state`."""
    [[kid]] = stack.sql("SELECT kid FROM kms.signing_keys WHERE state = '%s'"
                        % state)
    return kid



def run_auth_job_without_postgres(command):
    env = dict(stack.auth.env,
               CERROJO_AUTH_DATABASE_URL=UNREACHABLE_DATABASE_URL
               % closed_port())
    return subprocess.run([stack.auth.binary(), command], env=env,
                          capture_output=True, text=True,
                          timeout=ah.READY_TIMEOUT_S)


class JobsWithoutPostgres(unittest.TestCase):
    def test_cleanup_reports_failure_not_lock(self):
        res = run_auth_job_without_postgres("cleanup")
        self.assertEqual(res.returncode, 1)
        self.assertNotIn("another replica", res.stdout)
        self.assertIn("cleanup: not run (the lock query to Postgres failed)",
                      res.stdout)

    def test_rewrap_reports_failure_not_lock(self):
        res = run_auth_job_without_postgres("rewrap-keys")
        self.assertEqual(res.returncode, 1)
        self.assertNotIn("another replica", res.stdout)
        self.assertIn("rewrap-keys: not run (the lock query to Postgres "
                      "failed)", res.stdout)



def newest_kek_version():
    [[version]] = stack.sql("SELECT max(version) FROM kms.key_encryption_keys")
    return int(version)


class KekRotation(unittest.TestCase):
    def test_rotate_kek_names_next_steps(self):
        res = stack.run_kms_command("rotate", "kek")
        self.assertEqual(res.returncode, 0, res.stderr)
        version = newest_kek_version()
        self.assertIn("KEK version %d is active" % version, res.stdout)
        self.assertIn("CERROJO_KMS_RELOAD_INTERVAL (3600 s)", res.stdout)
        self.assertIn("`cerrojo-auth rewrap-keys`", res.stdout)

    def test_rewrap_right_after_rotation_moves_keys(self):
        _, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        res = stack.run_kms_command("rotate", "kek")
        self.assertEqual(res.returncode, 0, res.stderr)
        version = newest_kek_version()
        res = stack.run_auth_command("rewrap-keys")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("failures 0,", res.stdout)
        self.assertIn("; kek version %d\n" % version, res.stdout)
        self.assertEqual(stack.sql("SELECT count(*) FROM auth.users WHERE "
                                   "kek_version <> %d" % version), [["0"]])

    def test_rewrap_stops_when_kms_is_unreachable(self):
        # More users than the job tries before it stops.
        for _ in range(REWRAP_KMS_FAILURES_MAX + 1):
            _, err, _, _ = stack.register()
            self.assertIsNone(err, err)
        env = dict(stack.auth.env,
                   CERROJO_AUTH_KMS_TARGET="127.0.0.1:%d" % closed_port())
        res = subprocess.run([stack.auth.binary(), "rewrap-keys"], env=env,
                             capture_output=True, text=True,
                             timeout=ah.READY_TIMEOUT_S)
        self.assertEqual(res.returncode, 1)
        self.assertIn("rewrap-keys: stopped early, kms is unreachable; users "
                      "%d," % REWRAP_KMS_FAILURES_MAX, res.stdout)
        self.assertIn("kms is unreachable (%d RewrapKey calls in a row"
                      % REWRAP_KMS_FAILURES_MAX, res.stderr)
        self.assertIn("CERROJO_AUTH_KMS_TARGET", res.stderr)
        self.assertEqual(res.stderr.count('"event":"auth.rewrap_failed"'),
                         REWRAP_KMS_FAILURES_MAX, res.stderr)
        self.assertIn('"event":"auth.rewrap_stopped"', res.stderr)

    def test_second_rewrap_counts_current_keys(self):
        _, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        res = stack.run_auth_command("rewrap-keys")
        self.assertEqual(res.returncode, 0, res.stderr)
        [[users]] = stack.sql("SELECT count(*) FROM auth.users")
        res = stack.run_auth_command("rewrap-keys")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("users %s, re-wrapped 0, already current %s, "
                      "failures 0" % (users, users), res.stdout)



def kek_state(version):
    [[state]] = stack.sql("SELECT state FROM kms.key_encryption_keys "
                          "WHERE version = %d" % version)
    return state


class RewrapStoreFailure(unittest.TestCase):
    """auth's store of a re-wrapped key fails after RewrapKey: the KEK of
    the key that auth still stores must outlive destroy-expired."""

    def setUp(self):
        self.tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        self.caller = stack.caller_for(self.tokens)

    def get_private(self):
        """GetData of the private class, retried while kms is unreachable
        after its restart."""
        request = stack.auth_pb2.GetDataRequest(
            **{"class": stack.common_pb2.DATA_CLASS_PRIVATE})
        for _ in range(KMS_RECONNECT_ATTEMPTS):
            reply, err = stack.call("GetData", request, self.caller)
            if err is None or err.code() != grpc.StatusCode.UNAVAILABLE:
                break
            time.sleep(0.5)
        return reply, err

    def restart_kms(self):
        """Restarts kms, so that it loads the key set without the KEKs
        that destroy-expired destroyed."""
        stack.kms.stop()
        stack.kms.start()

    def stored_kek_version(self):
        [[version]] = stack.sql("SELECT kek_version FROM auth.users "
                                "WHERE id = '%s'" % self.tokens.user_id)
        return int(version)

    def test_failed_store_keeps_old_kek(self):
        fields = {"phone": "+34 600 000 000"}
        _, err = stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields=fields, **{"class": stack.common_pb2.DATA_CLASS_PRIVATE}),
            self.caller)
        self.assertIsNone(err, err)
        old_version = newest_kek_version()
        res = stack.run_kms_command("rotate", "kek")
        self.assertEqual(res.returncode, 0, res.stderr)

        stack.sql(FAIL_WRAPPED_KEY_STORE_SQL)
        try:
            res = stack.run_auth_command("rewrap-keys")
        finally:
            stack.sql(ALLOW_WRAPPED_KEY_STORE_SQL)
        self.assertNotEqual(res.returncode, 0, res.stdout)
        self.assertNotIn("failures 0,", res.stdout)
        self.assertEqual(self.stored_kek_version(), old_version)

        res = stack.run_kms_command("destroy-expired")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("kept: kek version %d, users whose data key it wraps: "
                      % old_version, res.stdout)
        self.assertEqual(kek_state(old_version), "retired")
        self.restart_kms()
        reply, err = self.get_private()
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields), fields)

        # A run whose stores succeed confirms every new form to kms, so the
        # next destroy-expired removes the old KEK.
        res = stack.run_auth_command("rewrap-keys")
        self.assertEqual(res.returncode, 0, res.stdout + res.stderr)
        self.assertIn("failures 0,", res.stdout)
        self.assertEqual(self.stored_kek_version(), old_version + 1)
        res = stack.run_kms_command("destroy-expired")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNotIn("kept: kek version %d," % old_version, res.stdout)
        self.assertEqual(kek_state(old_version), "destroyed")
        self.restart_kms()
        reply, err = self.get_private()
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields), fields)


def unknown_user_records():
    [[count]] = stack.sql(UNKNOWN_USER_RECORDS_SQL)
    return int(count)


def record_unknown_user(user_id, version, age):
    stack.sql("INSERT INTO kms.data_key_versions (user_id, kek_version, "
              "updated_at) VALUES ('%s', %d, now() - interval '%s')"
              % (user_id, version, age))


class UnknownUserRecords(unittest.TestCase):
    def test_failed_registration_leaves_no_record(self):
        before = unknown_user_records()
        stack.session.stop()
        try:
            _, err, _, _ = stack.register(secret=os.urandom(SECRET_SIZE))
        finally:
            stack.session.start()
            stack.wait_cache_loaded()
        self.assertIsNotNone(err)
        self.assertEqual(unknown_user_records(), before)

    def test_rewrap_drops_old_records_of_unknown_users(self):
        old_version = newest_kek_version()
        old_id = UNKNOWN_USER_ID
        recent_id = UNKNOWN_USER_ID[:-4] + "f0e2"
        record_unknown_user(old_id, old_version, "2 hours")
        record_unknown_user(recent_id, old_version, "1 minute")
        res = stack.run_kms_command("rotate", "kek")
        self.assertEqual(res.returncode, 0, res.stderr)
        res = stack.run_auth_command("rewrap-keys")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("kms records of unknown users dropped 1;", res.stdout)
        self.assertEqual(stack.sql("SELECT user_id FROM kms.data_key_versions "
                                   "WHERE user_id IN ('%s', '%s')"
                                   % (old_id, recent_id)), [[recent_id]])
        # The recent record still names the old version, which therefore
        # stays, with the reason.
        res = stack.run_kms_command("destroy-expired")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("kept: kek version %d, users whose data key it wraps: "
                      "1 (run `cerrojo-auth rewrap-keys`)" % old_version,
                      res.stdout)
        stack.sql("DELETE FROM kms.data_key_versions WHERE user_id = '%s'"
                  % recent_id)
        res = stack.run_kms_command("destroy-expired")
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertNotIn("kek version %d," % old_version, res.stdout)
        self.assertEqual(stack.sql("SELECT state FROM kms.key_encryption_keys "
                                   "WHERE version = %d" % old_version),
                         [["destroyed"]])


if __name__ == "__main__":
    unittest.main(verbosity=2)
