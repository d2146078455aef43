"""Password rehash at login: after the Argon2 parameters change, the next
successful login replaces the stored hash with one made with the new
parameters, and the password keeps working."""

import unittest

import auth_harness as ah

NEW_PASSES = "2"


class Rehash(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack().start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def stored_hash(self, user_id):
        [[value]] = self.stack.sql(
            "SELECT password_hash FROM auth.users WHERE id = '%s'" % user_id)
        return value

    def test_login_rehashes_after_parameter_change(self):
        s = self.stack
        reply, err, name, password = s.register()
        self.assertIsNone(err)
        old = self.stored_hash(reply.user_id)
        self.assertIn("t=" + ah.TEST_ARGON2_PASSES + ",", old)

        s.auth.env["CERROJO_AUTH_ARGON2_PASSES"] = NEW_PASSES
        s.restart_auth()
        _, err = s.login(name, password)
        self.assertIsNone(err, err)
        new = self.stored_hash(reply.user_id)
        self.assertNotEqual(new, old)
        self.assertIn("t=" + NEW_PASSES + ",", new)
        _, err = s.login(name, password)
        self.assertIsNone(err, err)
        self.assertEqual(self.stored_hash(reply.user_id), new)


if __name__ == "__main__":
    unittest.main(verbosity=2)
