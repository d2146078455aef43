"""Cancelled calls. A unary call that the client cancels while it waits
for a worker never runs its handler. Health Watch streams that the client
cancels right after opening them:
each must be freed, so the server's count of live call structs returns to
its value at rest, and SIGTERM then ends the process within the shutdown
grace. A watch whose close completed before its set-up finished used to
stay counted for ever, and shutdown waited on it until killed. That race
hit one to three of the 3000 watches per run on a 2-core machine, so a
run can also pass when no watch hits it."""

import time
import unittest

import grpc

import rpc_harness as h

ROUNDS = 3
WATCHES_PER_ROUND = 1000
# Upper bound on the whole load, so that a slow machine ends it early
# rather than running past the ctest timeout.
LOAD_BUDGET_S = 60
# Time for the server to handle the last cancellations before counting.
SETTLE_TIMEOUT_S = 10
# Default grace of the framework (CJ_RPC_DEFAULT_SHUTDOWN_GRACE_MS) plus
# time for the process to exit after it.
GRACE_S = 5
EXIT_MARGIN_S = 3
# A Hold call that keeps the only worker busy while others queue behind it.
BLOCKER_HOLD_MS = "1000"
QUEUED_CALLS = 10
QUEUE_SETTLE_S = 0.3


def live_calls(svc, chan):
    """Asks rpc_testd to log its live call count; returns that count."""
    before = len(h.log_entries(svc, "testd.live_calls"))
    code, details = h.testd_call(chan, "LogLiveCalls", "", "")
    if code != grpc.StatusCode.OK:
        raise AssertionError("LogLiveCalls failed: %s %s" % (code, details))
    deadline = time.monotonic() + h.CALL_TIMEOUT_S
    while time.monotonic() < deadline:
        entries = h.log_entries(svc, "testd.live_calls")
        if len(entries) > before:
            return entries[-1]["live_calls"]
        time.sleep(0.02)
    raise AssertionError("no testd.live_calls entry was logged")


def wait_live_calls(svc, chan, expected):
    """Returns the live call count once it equals `expected`, or the last
    count seen after SETTLE_TIMEOUT_S."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    count = live_calls(svc, chan)
    while count != expected and time.monotonic() < deadline:
        time.sleep(0.2)
        count = live_calls(svc, chan)
    return count


class CancelledCalls(unittest.TestCase):

    def test_cancelled_queued_calls_skip_handler(self):
        svc = h.Service(h.CONTROL, extra_env={
            h.TESTD_PREFIX + "_GRPC_WORKERS": "1"}).start()
        with svc.channel() as chan:
            hold = chan.unary_unary("/%s/Hold" % h.CONTROL_SERVICE)
            blocker = hold.future(h._testd_request("x", BLOCKER_HOLD_MS),
                                  timeout=h.CALL_TIMEOUT_S)
            deadline = time.monotonic() + h.CALL_TIMEOUT_S
            while (not h.log_entries(svc, "testd.hold_started")
                   and time.monotonic() < deadline):
                time.sleep(0.01)
            queued = [hold.future(h._testd_request("x", "0"))
                      for _ in range(QUEUED_CALLS)]
            time.sleep(QUEUE_SETTLE_S)
            for call in queued:
                call.cancel()
            blocker.result()
            # This call queues behind any cancelled call that still ran,
            # so their log lines are written before it returns.
            code, _ = h.testd_call(chan, "Hold", "x", "0")
            self.assertEqual(code, grpc.StatusCode.OK)
        started = h.log_entries(svc, "testd.hold_started")
        self.assertEqual(svc.stop(), 0, svc.log()[-4000:])
        # The blocker and the last call; none of the cancelled ones.
        self.assertEqual(len(started), 2,
                         "%d Hold handlers ran" % len(started))

    def test_cancelled_watches_are_freed(self):
        pb2, grpc_mod = h.health_modules()
        svc = h.Service(h.CONTROL).start()
        control = svc.channel()
        at_rest = live_calls(svc, control)

        load_end = time.monotonic() + LOAD_BUDGET_S
        opened = 0
        for _ in range(ROUNDS):
            with svc.channel() as chan:
                stub = grpc_mod.HealthStub(chan)
                for _ in range(WATCHES_PER_ROUND):
                    if time.monotonic() > load_end:
                        break
                    stream = stub.Watch(pb2.HealthCheckRequest(service=""))
                    stream.cancel()
                    opened += 1
        self.assertGreater(opened, 0)

        after = wait_live_calls(svc, control, at_rest)
        self.assertEqual(after, at_rest,
                         "%d of %d cancelled watches were never freed" %
                         (after - at_rest, opened))
        control.close()

        started = time.monotonic()
        status = svc.stop()
        stop_s = time.monotonic() - started
        self.assertEqual(status, 0, svc.log()[-4000:])
        self.assertLess(stop_s, GRACE_S + EXIT_MARGIN_S)
        done = h.log_entries(svc, "rpc.shutdown_done")
        self.assertEqual(len(done), 1, svc.log()[-4000:])
        self.assertTrue(done[0]["graceful"], done[0])


if __name__ == "__main__":
    unittest.main(verbosity=2)
