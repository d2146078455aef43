"""A logout of all devices and the logins around it, with session's clock
2 s behind auth's, against real kms, session, Postgres and Redis. Session
runs under libfaketime, preloaded directly as tests/deploy/clock_check.sh
does. A session bound before the logout must end even when the logout's
DeleteUserSessions misses it. A login right after the logout's reply must
bind its session, although session's clock would place that bind at or
before the revocation second."""

import os
import time
import unittest

import grpc

import auth_harness as ah

# Session's clock offset, in libfaketime's syntax, and in ms.
SESSION_CLOCK_OFFSET = "-2s"
SESSION_CLOCK_OFFSET_MS = -2000
# Allowed error of the measured offset, in ms: the call's round trip and
# libfaketime's start both add to it.
OFFSET_TOLERANCE_MS = 500
SECRET_SIZE = 32

stack = None


def setUpModule():
    global stack
    ah.require_env()
    stack = ah.Stack(session_env=ah.faketime_env(SESSION_CLOCK_OFFSET)).start()


def tearDownModule():
    if stack is not None:
        stack.stop()


def code(err):
    return err.code() if err is not None else grpc.StatusCode.OK


def session_key(sid):
    return "cerrojo:sess:s:" + sid


def user_index_key(user_id):
    return "cerrojo:sess:u:" + user_id


class SessionClockBehind(unittest.TestCase):
    def setUp(self):
        self.tokens, err, self.name, self.password = stack.register()
        self.assertIsNone(err, err)

    def logout_all(self, tokens):
        _, err = stack.call("Logout", stack.auth_pb2.LogoutRequest(all=True),
                            stack.caller_for(tokens))
        self.assertIsNone(err, err)

    def bind_again(self, sid, user_id):
        """Calls session's BindUser as auth does for a refresh; returns the
        error, None when the session is still bound."""
        try:
            stack.session_stub.BindUser(stack.session_pb2.BindUserRequest(
                session_id=sid, user_id=user_id), timeout=ah.CALL_TIMEOUT_S)
            return None
        except grpc.RpcError as e:
            return e

    def create_session(self):
        """Opens an unbound session as a handshake does; returns its
        SessionInfo."""
        return stack.session_stub.CreateSession(
            stack.session_pb2.CreateSessionRequest(
                client_secret=os.urandom(SECRET_SIZE)),
            timeout=ah.CALL_TIMEOUT_S)

    def test_session_clock_is_behind(self):
        before_ms = int(time.time() * 1000)
        session = self.create_session()
        offset_ms = session.server_time_ms - before_ms
        self.assertGreater(offset_ms,
                           SESSION_CLOCK_OFFSET_MS - OFFSET_TOLERANCE_MS)
        self.assertLess(offset_ms,
                        SESSION_CLOCK_OFFSET_MS + OFFSET_TOLERANCE_MS)

    def test_login_after_logout_all_binds(self):
        self.logout_all(self.tokens)

        again, err = stack.login(self.name, self.password,
                                 secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        sid = again.session.session_id
        self.assertNotEqual(sid, "")
        self.assertIsNone(self.bind_again(sid, again.user_id))
        self.assertEqual(stack.redis("EXISTS", session_key(sid)), "1")
        info, _ = stack.introspect(again.access_token)
        self.assertTrue(info.active)

    def test_stateful_login_after_logout_all_binds(self):
        self.logout_all(self.tokens)

        session = self.create_session()
        again, err = stack.login(self.name, self.password, caller={
            "channel": "stateful", "session-id": session.session_id})
        self.assertIsNone(err, err)
        self.assertIsNone(self.bind_again(session.session_id, again.user_id))
        self.assertEqual(
            stack.redis("EXISTS", session_key(session.session_id)), "1")

    def test_session_bound_before_logout_ends(self):
        before, err = stack.login(self.name, self.password,
                                  secret=os.urandom(SECRET_SIZE))
        self.assertIsNone(err, err)
        sid = before.session.session_id
        # Out of the user's index, the session is one that the logout's
        # DeleteUserSessions misses, as when that call fails after auth's
        # commit. Only the revocation time can end it then.
        stack.redis("SREM", user_index_key(before.user_id), sid)

        self.logout_all(before)
        self.assertEqual(stack.redis("EXISTS", session_key(sid)), "1")
        err = self.bind_again(sid, before.user_id)
        self.assertEqual(code(err), grpc.StatusCode.NOT_FOUND, err)
        self.assertEqual(stack.redis("EXISTS", session_key(sid)), "0")


if __name__ == "__main__":
    unittest.main(verbosity=2)
