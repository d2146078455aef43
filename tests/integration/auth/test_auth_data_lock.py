"""PutData calls of one user to one class wait for each other without
holding auth's Postgres connections, against real kms, session, Postgres
and Redis. Another psql session holds the class's advisory lock, as a PUT
on another auth replica would, while a burst of PUTs larger than auth's
connection pool arrives. Only one of them may wait in Postgres, another
user's calls must still be served, and every PUT must succeed once the lock
is released. A PUT that cannot get the lock before its deadline is rejected
as busy with a Retry-After, and one that gets it too late writes nothing."""

import concurrent.futures
import subprocess
import time
import unittest

import grpc

import auth_harness as ah

POOL_SIZE = 4
BURST_PUTS = POOL_SIZE + 2
# Wait for a free connection, in ms: below auth's statement timeout (5 s),
# so that a call that finds every connection parked on the class lock
# fails while those PUTs still wait, instead of after they time out.
ACQUIRE_TIMEOUT_MS = 2000
# First key of the class's advisory lock: "dat0" plus the class number, as
# services/auth/auth_store_data.c takes it.
DATA_LOCK_CLASS_BASE = 0x64617430
# Bounded waits for states that other processes reach.
SETTLE_TIMEOUT_S = 15
POLL_INTERVAL_S = 0.02
PSQL_EXIT_TIMEOUT_S = 10
# A deadline long enough for the reply margin (500 ms) and a reply.
SHORT_DEADLINE_S = 2.0
RETRY_AFTER_KEY = "retry-after-seconds"

stack = None


def setUpModule():
    global stack
    ah.require_env()
    stack = ah.Stack(auth_env={
        "CERROJO_AUTH_DB_POOL_SIZE": str(POOL_SIZE),
        "CERROJO_AUTH_DB_ACQUIRE_TIMEOUT_MS": str(ACQUIRE_TIMEOUT_MS),
    }).start()


def tearDownModule():
    if stack is not None:
        stack.stop()


class ClassLockHolder:
    """A psql session that holds one user's class lock in Postgres until
    release() ends it."""

    def __init__(self, user_id, cls):
        self.key = DATA_LOCK_CLASS_BASE + cls
        self.user_id = user_id
        self.proc = None

    def hold(self):
        self.proc = subprocess.Popen(
            ["psql", stack.dsn, "-Atq", "-v", "ON_ERROR_STOP=1"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True)
        self.proc.stdin.write("SELECT pg_advisory_lock(%d, hashtext('%s'));\n"
                              % (self.key, self.user_id))
        self.proc.stdin.flush()
        wait_until(lambda: self.count(granted=True) == 1,
                   "the psql session did not get the class lock")
        return self

    def count(self, granted):
        """Sessions that hold (granted) or wait for this class lock."""
        [[count]] = stack.sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database()) "
            "AND classid = %d AND objid = hashtext('%s')::oid "
            "AND objsubid = 2 AND granted = %s"
            % (self.key, self.user_id, "true" if granted else "false"))
        return int(count)

    def release(self):
        if self.proc is None:
            return
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=PSQL_EXIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=PSQL_EXIT_TIMEOUT_S)
        self.proc = None


def wait_until(condition, message):
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(POLL_INTERVAL_S)
    raise AssertionError(message + "\n" + stack.logs())


def code(err):
    return err.code() if err is not None else grpc.StatusCode.OK


class ClassLockWait(unittest.TestCase):
    def setUp(self):
        self.public = stack.common_pb2.DATA_CLASS_PUBLIC
        self.writer = self.register()
        self.holder = ClassLockHolder(self.writer.user_id, self.public)
        self.pool = concurrent.futures.ThreadPoolExecutor(BURST_PUTS)

    def tearDown(self):
        self.holder.release()
        self.pool.shutdown(wait=True)

    def register(self):
        tokens, err, _, _ = stack.register()
        self.assertIsNone(err, err)
        return tokens

    def put(self, tokens, fields, timeout_s=ah.CALL_TIMEOUT_S):
        return stack.call("PutData", stack.auth_pb2.PutDataRequest(
            fields=fields, **{"class": self.public}),
            stack.caller_for(tokens), timeout_s=timeout_s)

    def get(self, tokens):
        return stack.call("GetData", stack.auth_pb2.GetDataRequest(
            **{"class": self.public}), stack.caller_for(tokens))

    def start_puts(self, count):
        return [self.pool.submit(self.put, self.writer,
                                 {"burst_%d" % i: "v%d" % i})
                for i in range(count)]

    def test_burst_waits_without_connections(self):
        other = self.register()
        self.holder.hold()
        puts = self.start_puts(BURST_PUTS)

        # Either one PUT waits in Postgres and the rest in auth, or the
        # burst took every connection of the pool.
        def burst_settled():
            in_postgres = self.holder.count(granted=False)
            in_auth = stack.metric("auth_data_write_waiting")
            return ((in_postgres == 1 and in_auth == BURST_PUTS - 1)
                    or in_postgres == POOL_SIZE)

        wait_until(burst_settled, "the PUTs did not reach auth")
        reply, err = self.put(other, {"name": "other"})
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields), {"name": "other"})
        reply, err = self.get(other)
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields), {"name": "other"})
        self.assertEqual(self.holder.count(granted=False), 1)
        self.assertFalse(any(p.done() for p in puts))

        self.holder.release()
        errors = [p.result()[1] for p in puts]
        self.assertEqual([code(e) for e in errors],
                         [grpc.StatusCode.OK] * BURST_PUTS, errors)
        reply, err = self.get(self.writer)
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields),
                         {"burst_%d" % i: "v%d" % i
                          for i in range(BURST_PUTS)})
        self.assertEqual(stack.metric("auth_data_write_waiting"), 0)

    def test_waiter_rejected_before_deadline(self):
        self.holder.hold()
        [first] = self.start_puts(1)
        wait_until(lambda: self.holder.count(granted=False) == 1,
                   "the first PUT did not wait for the class lock")
        refused_before = stack.metric("auth_data_write_refused_total")

        _, err = self.put(self.writer, {"late": "v"},
                          timeout_s=SHORT_DEADLINE_S)
        self.assertEqual(code(err), grpc.StatusCode.UNAVAILABLE, err)
        self.assertIn("retry", err.details())
        trailers = dict(err.trailing_metadata() or ())
        self.assertEqual(trailers.get(RETRY_AFTER_KEY), "1")
        self.assertEqual(stack.metric("auth_data_write_refused_total"),
                         refused_before + 1)
        self.assertFalse(first.done())

        self.holder.release()
        self.assertIsNone(first.result()[1])
        reply, err = self.get(self.writer)
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields), {"burst_0": "v0"})

    def test_write_past_deadline_is_rolled_back(self):
        # The PUT waits in Postgres for the class lock until its caller has
        # given up. Run after the lock is released, it must not write,
        # because its caller received an error and may already have sent a
        # newer value.
        self.holder.hold()
        late = self.pool.submit(self.put, self.writer, {"late": "v"},
                                SHORT_DEADLINE_S)
        wait_until(lambda: self.holder.count(granted=False) == 1,
                   "the PUT did not wait for the class lock")
        self.assertEqual(code(late.result()[1]),
                         grpc.StatusCode.DEADLINE_EXCEEDED)

        self.holder.release()
        # This PUT waits in auth behind the late one, so when it returns,
        # the late one has ended.
        reply, err = self.put(self.writer, {"after": "v"})
        self.assertIsNone(err, err)
        reply, err = self.get(self.writer)
        self.assertIsNone(err, err)
        self.assertEqual(dict(reply.fields), {"after": "v"})
        self.assertIn("auth.data_write_abandoned", stack.logs())


if __name__ == "__main__":
    unittest.main(verbosity=2)
