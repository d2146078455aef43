"""cerrojo-auth's limit of 64 fields per data class, against real kms,
session, Postgres and Redis. Concurrent PUTs of new fields never pass it.
A class already over it, as unserialized concurrent PUTs could leave it,
still accepts updates and deletions but rejects new fields."""

import concurrent.futures
import threading
import unittest

import grpc

import auth_harness as ah

FIELDS_PER_CLASS_MAX = 64
FIELDS_PER_PUT_MAX = 32
LIMIT_MESSAGE = "at most 64 fields per class"
# Concurrent PUTs per trial, and fields each of them adds. With
# FIELDS_BEFORE fields stored first, exactly ACCEPTED_PUTS of them fit.
CONCURRENT_PUTS = 6
FIELDS_PER_CONCURRENT_PUT = 20
FIELDS_BEFORE = 4
ACCEPTED_PUTS = ((FIELDS_PER_CLASS_MAX - FIELDS_BEFORE)
                 // FIELDS_PER_CONCURRENT_PUT)
# A race without the lock is likely but not certain in one trial.
TRIALS = 3
BARRIER_TIMEOUT_S = 30
# Fields written straight into Postgres. Above 96, one PUT of 32 deletions
# cannot bring the class back under the limit.
FIELDS_OVER_LIMIT = 100

stack = None


def setUpModule():
    global stack
    ah.require_env()
    stack = ah.Stack().start()


def tearDownModule():
    if stack is not None:
        stack.stop()


def code(err):
    return err.code() if err is not None else grpc.StatusCode.OK


def field_names(prefix, count):
    return ["%s_%03d" % (prefix, i) for i in range(count)]


class DataLimit(unittest.TestCase):
    def setUp(self):
        self.register_user()

    def register_user(self):
        self.tokens, err, _, _ = stack.register()
        self.assertIsNone(err)
        self.caller = stack.caller_for(self.tokens)

    def put(self, cls, fields):
        return stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields=fields, **{"class": cls}), self.caller)

    def stored_count(self, table):
        [[count]] = stack.sql("SELECT count(*) FROM auth.%s WHERE user_id = "
                              "'%s'" % (table, self.tokens.user_id))
        return int(count)

    def put_concurrently(self, cls, trial):
        """Sends CONCURRENT_PUTS PUTs of new fields at once and returns the
        error of each, None for an accepted PUT."""
        barrier = threading.Barrier(CONCURRENT_PUTS, timeout=BARRIER_TIMEOUT_S)

        def put_new_fields(index):
            names = field_names("t%d_p%d" % (trial, index),
                                FIELDS_PER_CONCURRENT_PUT)
            barrier.wait()
            return self.put(cls, {name: "v" for name in names})[1]

        with concurrent.futures.ThreadPoolExecutor(CONCURRENT_PUTS) as pool:
            return list(pool.map(put_new_fields, range(CONCURRENT_PUTS)))

    def check_concurrent_puts(self, cls, table):
        for trial in range(TRIALS):
            self.register_user()
            _, err = self.put(cls, {name: "v" for name in
                                    field_names("base", FIELDS_BEFORE)})
            self.assertIsNone(err, err)
            errors = self.put_concurrently(cls, trial)
            accepted = [e for e in errors if e is None]
            rejected = [e for e in errors if e is not None]
            codes = "trial %d: %s" % (trial, [code(e).name for e in errors])
            count = self.stored_count(table)
            self.assertLessEqual(count, FIELDS_PER_CLASS_MAX, codes)
            self.assertEqual(len(accepted), ACCEPTED_PUTS, codes)
            self.assertEqual(count, FIELDS_BEFORE +
                             ACCEPTED_PUTS * FIELDS_PER_CONCURRENT_PUT)
            for err in rejected:
                self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
                self.assertIn(LIMIT_MESSAGE, err.details())

    def test_concurrent_public_puts_keep_limit(self):
        self.check_concurrent_puts(stack.common_pb2.DATA_CLASS_PUBLIC,
                                   "data_public")

    def test_concurrent_private_puts_keep_limit(self):
        self.check_concurrent_puts(stack.common_pb2.DATA_CLASS_PRIVATE,
                                   "data_private")

    def test_class_over_limit_can_shrink(self):
        public = stack.common_pb2.DATA_CLASS_PUBLIC
        stack.sql("INSERT INTO auth.data_public (user_id, field, value) "
                  "SELECT '%s', 'old_' || lpad(i::text, 3, '0'), 'v' FROM "
                  "generate_series(0, %d) AS i"
                  % (self.tokens.user_id, FIELDS_OVER_LIMIT - 1))
        count = FIELDS_OVER_LIMIT
        self.assertEqual(self.stored_count("data_public"), count)

        _, err = self.put(public, {"new_field": "v"})
        self.assertEqual(code(err), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn(LIMIT_MESSAGE, err.details())
        self.assertEqual(self.stored_count("data_public"), count)

        reply, err = self.put(public, {"old_000": "changed"})
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields)["old_000"], "changed")
        self.assertEqual(self.stored_count("data_public"), count)

        # One deletion with one addition keeps the count, so it passes.
        reply, err = self.put(public, {"old_001": "", "swap_field": "v"})
        self.assertIsNone(err, err)
        self.assertNotIn("old_001", dict(reply.fields))
        self.assertIn("swap_field", dict(reply.fields))
        self.assertEqual(self.stored_count("data_public"), count)

        _, err = self.put(public, {"old_002": ""})
        self.assertIsNone(err, err)
        count -= 1
        self.assertEqual(self.stored_count("data_public"), count)

        # PUTs of 32 deletions each until the class is back under the limit.
        names = field_names("old", FIELDS_OVER_LIMIT)[3:]
        while count > FIELDS_PER_CLASS_MAX and names:
            batch, names = names[:FIELDS_PER_PUT_MAX], names[FIELDS_PER_PUT_MAX:]
            _, err = self.put(public, {name: "" for name in batch})
            self.assertIsNone(err, err)
            count -= len(batch)
            self.assertEqual(self.stored_count("data_public"), count)

        _, err = self.put(public, {"new_field": "v"})
        self.assertIsNone(err, err)
        self.assertEqual(self.stored_count("data_public"), count + 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
