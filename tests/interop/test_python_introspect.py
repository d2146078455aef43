#!/usr/bin/env python3
"""Python grpcio (Debian's python3-grpcio) calls auth's Introspect as a
platform service would, over mutual TLS with the platform-service
certificate of scripts/dev-certs.sh. The C client logs in through the
gateway. Its access token must be active with the user's sub, and inactive
after the client logs out. A call without a client certificate must be
rejected.

Starts its own stack (interop_stack.py) and stops it at the end.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import interop_stack as stack_mod  # noqa: E402

h = stack_mod.h
ah = stack_mod.ah

CLIENT_TIMEOUT_S = 60
IDENTITY = "platform-service"

STACK = None


def setUpModule():
    global STACK
    STACK = stack_mod.InteropStack(tls=True).start()


def tearDownModule():
    if STACK is not None:
        STACK.stop()


class IntrospectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.auth_pb2, cls.auth_grpc = ah.load_stubs()[:2]
        cls.tmp = tempfile.mkdtemp(prefix="introspect-", dir=h.work_dir())

    def cerrojo(self, state, *args, password=None):
        """Runs the C client against the stack's gateway; returns its JSON."""
        cmd = [os.path.join(h.BIN_DIR, "cerrojo"), "--url", STACK.gateway.url,
               "--state", state, "--json"] + list(args)
        if password is not None:
            pw_file = os.path.join(self.tmp, "password")
            with open(pw_file, "w") as f:
                f.write(password)
            cmd += ["--password-file", pw_file]
        res = subprocess.run(cmd, capture_output=True, text=True,
                             timeout=CLIENT_TIMEOUT_S,
                             env=dict(os.environ, HOME=self.tmp))
        self.assertEqual(res.returncode, 0, "%s: %s\n%s" % (
            args[0], res.stderr, STACK.logs()))
        lines = [line for line in res.stdout.splitlines() if line.strip()]
        out = json.loads(lines[-1])
        self.assertTrue(out["ok"])
        return out["result"]

    def introspect(self, token, identity=IDENTITY):
        chan = h.channel(STACK.auth.port, STACK.certs, identity)
        try:
            stub = self.auth_grpc.AuthStub(chan)
            return stub.Introspect(
                self.auth_pb2.IntrospectRequest(token=token),
                timeout=h.CALL_TIMEOUT_S)
        finally:
            chan.close()

    def login(self, mode):
        state = os.path.join(self.tmp, "state-%s.json" % mode)
        name = ah.random_name()
        password = ah.strong_password()
        self.cerrojo(state, "register", "--username", name, "--email",
                     name + "@example.com", "--stateless", password=password)
        self.cerrojo(state, "login", "--login", name, "--" + mode,
                     password=password)
        with open(state) as f:
            saved = json.load(f)
        return state, name, saved["tokens"]["access_token"]

    def user_id(self, state):
        return self.cerrojo(state, "me")["user_id"]

    def check_active_then_logout(self, mode):
        state, name, token = self.login(mode)
        user_id = self.user_id(state)
        info = self.introspect(token)
        self.assertTrue(info.active)
        self.assertEqual(info.sub, user_id)
        self.assertEqual(info.username, name)
        self.assertEqual(info.token_type, "Bearer")
        self.assertEqual(info.iss, "https://cerrojo.local")
        self.assertEqual(info.aud, "cerrojo")
        self.assertTrue(info.jti)
        self.assertGreater(info.exp, info.iat)
        self.assertEqual(bool(info.sid), mode == "stateful")

        self.cerrojo(state, "logout")
        info = self.introspect(token)
        self.assertFalse(info.active)
        self.assertEqual(info.sub, "")
        self.assertEqual(info.jti, "")

    def test_stateless_token_active_until_logout(self):
        self.check_active_then_logout("stateless")

    def test_stateful_token_active_until_logout(self):
        self.check_active_then_logout("stateful")

    def test_garbage_token_is_inactive(self):
        info = self.introspect("not.a.token")
        self.assertFalse(info.active)

    def test_caller_without_certificate_rejected(self):
        grpc = stack_mod.h.grpc
        with self.assertRaises(grpc.RpcError) as ctx:
            self.introspect("not.a.token", identity=None)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAVAILABLE)


if __name__ == "__main__":
    stack_mod.require_env()
    unittest.main(verbosity=2)
