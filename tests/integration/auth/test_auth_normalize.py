"""Unicode normalization of passwords: auth hashes the NFKC form, so the
composed (NFC) and decomposed (NFD) spellings of one password both log
in. An account whose hash predates normalization (password_normalized
false, a hash of the exact bytes typed) logs in with those bytes, and that
login replaces the hash with one of the NFKC form."""

import ctypes
import ctypes.util
import unicodedata
import unittest

import grpc

import auth_harness as ah

# "Contraseña segura café 7": ñ and é each have a composed and a
# decomposed spelling.
PASSWORD = "Contrase\u00f1a segura caf\u00e9 7"
# libsodium's crypto_pwhash_STRBYTES and crypto_pwhash_ALG_ARGON2ID13.
PWHASH_STRBYTES = 128
PWHASH_ALG_ARGON2ID13 = 2
# The Argon2 settings auth_harness gives auth: 1 MiB, 1 pass.
TEST_MEMLIMIT_BYTES = 1024 * 1024
TEST_OPSLIMIT = int(ah.TEST_ARGON2_PASSES)


def nfc(text):
    return unicodedata.normalize("NFC", text)


def nfd(text):
    return unicodedata.normalize("NFD", text)


def raw_argon2id_hash(password):
    """An Argon2id hash of the exact UTF-8 bytes, made with libsodium as
    auth made hashes before it normalized passwords."""
    sodium = ctypes.CDLL(ctypes.util.find_library("sodium"))
    if sodium.sodium_init() < 0:
        raise RuntimeError("sodium_init failed")
    secret = password.encode()
    out = ctypes.create_string_buffer(PWHASH_STRBYTES)
    sodium.crypto_pwhash_str_alg.argtypes = [
        ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulonglong,
        ctypes.c_ulonglong, ctypes.c_size_t, ctypes.c_int]
    if sodium.crypto_pwhash_str_alg(out, secret, len(secret), TEST_OPSLIMIT,
                                    TEST_MEMLIMIT_BYTES,
                                    PWHASH_ALG_ARGON2ID13) != 0:
        raise RuntimeError("crypto_pwhash_str_alg failed")
    return out.value.decode()


class PasswordForms(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        ah.require_env()
        cls.stack = ah.Stack().start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def stored(self, user_id):
        [[password_hash, normalized]] = self.stack.sql(
            "SELECT password_hash, password_normalized FROM auth.users "
            "WHERE id = '%s'" % user_id)
        return password_hash, normalized

    def assert_login_ok(self, name, password):
        reply, err = self.stack.login(name, password)
        self.assertIsNone(err, err)
        return reply

    def test_nfc_registration_accepts_nfd_login(self):
        self.assertNotEqual(nfc(PASSWORD).encode(), nfd(PASSWORD).encode())
        reply, err, name, _ = self.stack.register(password=nfc(PASSWORD))
        self.assertIsNone(err, err)
        self.assertEqual(self.stored(reply.user_id)[1], "t")
        self.assert_login_ok(name, nfd(PASSWORD))
        self.assert_login_ok(name, nfc(PASSWORD))

    def test_nfd_registration_accepts_nfc_login(self):
        reply, err, name, _ = self.stack.register(password=nfd(PASSWORD))
        self.assertIsNone(err, err)
        self.assert_login_ok(name, nfc(PASSWORD))
        self.assert_login_ok(name, nfd(PASSWORD))

    def test_compatibility_form_logs_in(self):
        # U+FB01 (the "fi" ligature) has the NFKC form "fi".
        typed = "Quokka \ufb01eld r\u00e9gion 42"
        reply, err, name, _ = self.stack.register(password=typed)
        self.assertIsNone(err, err)
        self.assert_login_ok(name, "Quokka field r\u00e9gion 42")

    def test_wrong_password_still_fails(self):
        _, err, name, _ = self.stack.register(password=nfc(PASSWORD))
        self.assertIsNone(err, err)
        _, err = self.stack.login(name, nfc(PASSWORD).replace("7", "8"))
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_old_hash_is_normalized_at_login(self):
        s = self.stack
        typed = nfd(PASSWORD)
        reply, err, name, _ = s.register(password=typed)
        self.assertIsNone(err, err)
        # The row as written before passwords were normalized.
        legacy_hash = raw_argon2id_hash(typed)
        s.sql("UPDATE auth.users SET password_hash = '%s', "
              "password_normalized = false WHERE id = '%s'"
              % (legacy_hash, reply.user_id))

        # The old hash is of the exact bytes, so the other form fails.
        _, err = s.login(name, nfc(PASSWORD))
        self.assertIsNotNone(err)
        self.assertEqual(err.code(), grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(self.stored(reply.user_id), (legacy_hash, "f"))

        before = s.metric("auth_password_verifications_total")
        self.assert_login_ok(name, typed)
        after = s.metric("auth_password_verifications_total")
        self.assertEqual(after - before, 1)
        new_hash, normalized = self.stored(reply.user_id)
        self.assertEqual(normalized, "t")
        self.assertNotEqual(new_hash, legacy_hash)

        self.assert_login_ok(name, nfc(PASSWORD))
        self.assert_login_ok(name, typed)
        # A normalized hash with current parameters is not rewritten.
        self.assertEqual(self.stored(reply.user_id), (new_hash, "t"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
