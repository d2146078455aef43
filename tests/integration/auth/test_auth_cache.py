"""Session's revocation cache after Redis loses it. With the watcher too
slow to step in, every Introspect fails closed (UNAVAILABLE) until auth
reloads the cache, here by restarting. Afterwards a token revoked before
the flush stays inactive and a live one is active again."""

import unittest

import grpc

import auth_harness as ah

# Long enough that the watcher never runs between the flush and the checks.
SLOW_WATCH = "1h"


class CacheReload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack(
            {"CERROJO_AUTH_CACHE_WATCH_INTERVAL": SLOW_WATCH}).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def test_flush_fails_closed_until_reload(self):
        s = self.stack
        revoked, err, _, _ = s.register()
        self.assertIsNone(err)
        live, err, _, _ = s.register()
        self.assertIsNone(err)
        _, err = s.call("Logout", s.auth_pb2.LogoutRequest(
            refresh_token=revoked.refresh_token), s.caller_for(revoked))
        self.assertIsNone(err, err)

        s.redis("FLUSHALL")
        for tokens in (revoked, live):
            info, err = s.introspect(tokens.access_token)
            self.assertIsNone(info)
            self.assertEqual(err.code(), grpc.StatusCode.UNAVAILABLE)

        s.restart_auth()
        s.wait_cache_loaded()
        info, err = s.introspect(revoked.access_token)
        self.assertIsNone(err)
        self.assertFalse(info.active)
        info, err = s.introspect(live.access_token)
        self.assertIsNone(err)
        self.assertTrue(info.active)


if __name__ == "__main__":
    unittest.main(verbosity=2)
