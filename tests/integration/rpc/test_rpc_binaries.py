"""The real service binaries on the framework. Their command line is
checked always. Where a binary can start without Postgres (session needs
Redis only, and reports NOT_SERVING without it), so are health, reflection,
the access check, the `healthcheck` subcommand and shutdown on SIGTERM and
SIGINT. A binary that exits at start for want of a dependency is skipped
with its message."""

import base64
import os
import signal
import subprocess
import unittest

import rpc_harness as h

HEALTH_ANSWERS = {1, 2}  # SERVING, NOT_SERVING
SETTLE_ATTEMPTS = 5
# Postgres, Redis and the other services at port 1 of 127.0.0.1, where
# nothing listens. The tests of start-up checks use them, so that a binary
# that starts despite a wrong setting reaches no server that this test did
# not start.
CLOSED_DSN = "host=127.0.0.1 port=1 dbname=cerrojo connect_timeout=1"
CLOSED_STORES = {
    "CERROJO_KMS_DATABASE_URL": CLOSED_DSN,
    "CERROJO_AUTH_DATABASE_URL": CLOSED_DSN,
    "CERROJO_REDIS_PORT": "1",
    "CERROJO_AUTH_REDIS_PORT": "1",
    "CERROJO_AUTH_KMS_TARGET": "127.0.0.1:1",
    "CERROJO_AUTH_SESSION_TARGET": "127.0.0.1:1",
}


def binary_env(name):
    """Environment for a real binary: free ports, its own var folder, and
    the test Redis when scripts/test.sh started one."""
    prefix = h.SERVICES[name][0]
    env = {
        prefix + "_METRICS_PORT": str(h.free_port()),
        prefix + "_VAR_DIR": os.path.join(h.work_dir(), name + "-var"),
    }
    if os.environ.get("CERROJO_TEST_REDIS_PORT"):
        env["CERROJO_REDIS_HOST"] = os.environ["CERROJO_TEST_REDIS_HOST"]
        env["CERROJO_REDIS_PORT"] = os.environ["CERROJO_TEST_REDIS_PORT"]
    return env


class Binaries(unittest.TestCase):

    def run_binary(self, name, *args, env=None):
        svc = h.Service(name, extra_env=env)
        return subprocess.run([svc.binary()] + list(args), env=svc.env,
                              capture_output=True, timeout=h.CALL_TIMEOUT_S)

    def start_or_skip(self, name):
        svc = h.Service(name, extra_env=binary_env(name))
        try:
            return svc.start()
        except h.ServiceExited as e:
            self.skipTest(str(e).strip().splitlines()[-1])

    def test_help_lists_grpc_settings(self):
        for name, (prefix, _) in h.SERVICES.items():
            with self.subTest(service=name):
                out = self.run_binary(name, "--help")
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertIn(b"healthcheck", out.stdout)
                self.assertIn((prefix + "_LISTEN").encode(), out.stdout)
                self.assertIn(b"CERROJO_GRPC_PLAINTEXT", out.stdout)

    def test_help_lists_metrics_host(self):
        # Each of these binaries serves metrics through common/metrics_http.c,
        # which reads the variable outside the settings table. The deploy
        # checks read the names that start a line of --help.
        for name in h.SERVICES:
            with self.subTest(service=name):
                out = self.run_binary(name, "--help")
                self.assertEqual(out.returncode, 0, out.stderr)
                names = out.stdout.decode().splitlines()
                self.assertIn("CERROJO_METRICS_HOST", names)

    def test_plaintext_rejected_outside_dev(self):
        # rpc_testd has only the gRPC options, so no other setting is
        # reported first.
        for profile in ("stage", "prod"):
            svc = h.Service(h.CONTROL, extra_env={"CERROJO_PROFILE": profile})
            out = subprocess.run([svc.binary(), "serve"], env=svc.env,
                                 capture_output=True, timeout=h.CALL_TIMEOUT_S)
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn(b"CERROJO_GRPC_PLAINTEXT", out.stderr)

    def test_tls_files_required_without_plaintext(self):
        svc = h.Service(h.CONTROL,
                        extra_env={"CERROJO_GRPC_PLAINTEXT": "false"})
        out = subprocess.run([svc.binary(), "serve"], env=svc.env,
                             capture_output=True, timeout=h.CALL_TIMEOUT_S)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn(b"CERROJO_TLS_CA: missing", out.stderr)

    def run_with_tls_files(self, name, command, certs, **files):
        """Runs `name command` with the development TLS files, `files`
        replacing some of them (ca, cert, key)."""
        prefix = h.SERVICES[name][0]
        paths = {"ca": "ca.pem", "cert": name + ".pem", "key": name + ".key"}
        paths.update(files)
        env = binary_env(name)
        env.update(CLOSED_STORES)
        env.update({
            "CERROJO_TLS_CA": os.path.join(certs, paths["ca"]),
            prefix + "_TLS_CERT": os.path.join(certs, paths["cert"]),
            prefix + "_TLS_KEY": os.path.join(certs, paths["key"]),
        })
        svc = h.Service(name, certs=certs, extra_env=env)
        return subprocess.run([svc.binary(), command], env=svc.env,
                              capture_output=True, timeout=h.CALL_TIMEOUT_S,
                              cwd=h.work_dir())

    def print_config(self, name, certs, **files):
        return self.run_with_tls_files(name, "--print-config", certs, **files)

    def test_print_config_checks_tls_files(self):
        certs = h.make_certs()
        for name, (prefix, _) in h.SERVICES.items():
            with self.subTest(service=name):
                out = self.print_config(name, certs)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertIn((prefix + "_TLS_KEY=").encode(), out.stdout)

                other = "kms.key" if name != "kms" else "auth.key"
                out = self.print_config(name, certs, key=other)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn((prefix + "_TLS_KEY: ").encode(), out.stderr)
                self.assertIn(b"is not the key of the certificate",
                              out.stderr)
                self.assertEqual(out.stdout, b"")

                out = self.print_config(name, certs, cert="other.pem",
                                        key="other.key")
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(b"does not verify against CERROJO_TLS_CA",
                              out.stderr)

                out = self.print_config(name, certs, ca="missing.pem")
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(b"CERROJO_TLS_CA: ", out.stderr)
                self.assertIn(b"cannot be read", out.stderr)

    def test_start_checks_tls_files_as_print_config(self):
        # gRPC alone fails the start for a wrong key or a file that is not
        # PEM with no message naming the file, and serves with a
        # certificate of another CA.
        certs = h.make_certs()
        cases = {
            "key of another certificate": {"key": "session.key"},
            "certificate of another CA": {"cert": "other.pem",
                                          "key": "other.key"},
            "certificate not PEM": {"cert": "ca.srl"},
            "missing key": {"key": "missing.key"},
            "folder as CA": {"ca": "."},
        }
        for name in h.SERVICES:
            for case, files in cases.items():
                if name == "session" and case == "key of another certificate":
                    files = {"key": "kms.key"}
                with self.subTest(service=name, case=case):
                    start = self.run_with_tls_files(name, "serve", certs,
                                                    **files)
                    check = self.print_config(name, certs, **files)
                    self.assertEqual(check.returncode, 2, check.stderr)
                    self.assertEqual(start.returncode, 2, start.stderr)
                    message = check.stderr.strip().splitlines()[-1]
                    self.assertTrue(message.startswith(
                        b"cerrojo-" + name.encode() + b": CERROJO_"), message)
                    self.assertIn(message, start.stderr.splitlines())

    def listen_result(self, name, command, listen):
        """Runs `name command` (plaintext dev) with the listen address
        `listen`."""
        svc = h.Service(name, extra_env=binary_env(name)
                        if name in h.SERVICES else None)
        svc.env.update(CLOSED_STORES)
        svc.env[svc.prefix + "_LISTEN"] = listen
        return svc, subprocess.run([svc.binary(), command], env=svc.env,
                                   capture_output=True,
                                   timeout=h.CALL_TIMEOUT_S, cwd=h.work_dir())

    def test_listen_without_port_rejected(self):
        # gRPC completes an address without a port with port 443.
        runs = [(name, command) for name in h.SERVICES
                for command in ("serve", "--print-config")]
        runs.append((h.CONTROL, "serve"))
        for name, command in runs:
            with self.subTest(service=name, command=command):
                svc, out = self.listen_result(name, command, "127.0.0.1")
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn((svc.prefix + "_LISTEN: expected host:port")
                              .encode(), out.stderr)
                self.assertIn(b"got '127.0.0.1': the port is missing",
                              out.stderr)
                self.assertNotIn(b'"port":443', out.stderr)

    def test_listen_address_forms(self):
        rejected = {
            ":50052": b"the host is empty",
            "127.0.0.1:65536": b"the port is not a decimal number",
            "127.0.0.1:http": b"the port is not a decimal number",
            "::1:50052": b"must be written in brackets",
            "[::1]": b"the port is missing",
            "[127.0.0.1]:50052": b"is not an IPv6 address",
        }
        for listen, reason in rejected.items():
            for name in h.SERVICES:
                with self.subTest(listen=listen, service=name):
                    svc, out = self.listen_result(name, "--print-config",
                                                  listen)
                    self.assertEqual(out.returncode, 2, out.stderr)
                    self.assertIn((svc.prefix + "_LISTEN: ").encode(),
                                  out.stderr)
                    self.assertIn(reason, out.stderr)
        for listen in ("[::1]:0", "localhost:0", "0.0.0.0:50052"):
            with self.subTest(listen=listen):
                _, out = self.listen_result("session", "--print-config",
                                            listen)
                self.assertEqual(out.returncode, 0, out.stderr)

    def test_session_key_file_errors_name_variable(self):
        # The message names the file's variable and path, not the
        # variable that contains a key inline.
        path = os.path.join(h.work_dir(), "no-such-session-key")
        for var in ("CERROJO_SESSION_KEY_FILE",
                    "CERROJO_SESSION_KEY_PREVIOUS_FILE"):
            for command in ("serve", "--print-config"):
                with self.subTest(variable=var, command=command):
                    env = binary_env("session")
                    env[var] = path
                    out = self.run_binary("session", command, env=env)
                    self.assertEqual(out.returncode, 2, out.stderr)
                    self.assertIn(("cerrojo-session: %s: cannot read the key "
                                   "file %s: No such file or directory"
                                   % (var, path)).encode(), out.stderr)

    def write_key_file(self, name, key):
        path = os.path.join(h.work_dir(), name)
        with open(path, "w") as f:
            f.write(key + "\n")
        os.chmod(path, 0o600)
        return path

    def test_key_and_key_file_both_set_rejected(self):
        key = base64.b64encode(os.urandom(32)).decode()
        path = self.write_key_file("both-set-key", key)
        for name, var in (("kms", "CERROJO_KMS_ROOT_KEY"),
                          ("session", "CERROJO_SESSION_KEY"),
                          ("session", "CERROJO_SESSION_KEY_PREVIOUS")):
            with self.subTest(variable=var):
                env = binary_env(name)
                env[var] = key
                env[var + "_FILE"] = path
                out = self.run_binary(name, "--print-config", env=env)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(("%s and %s_FILE are both set; set only one of "
                               "them" % (var, var)).encode(), out.stderr)
                self.assertNotIn(key.encode(), out.stderr)

    def test_session_previous_key_equal_to_key_rejected(self):
        key = base64.b64encode(os.urandom(32)).decode()
        path = self.write_key_file("same-as-current-key", key)
        cases = (
            ({"CERROJO_SESSION_KEY_PREVIOUS": key},
             "CERROJO_SESSION_KEY and CERROJO_SESSION_KEY_PREVIOUS"),
            ({"CERROJO_SESSION_KEY_PREVIOUS_FILE": path},
             "CERROJO_SESSION_KEY and CERROJO_SESSION_KEY_PREVIOUS_FILE"),
        )
        for previous, names in cases:
            with self.subTest(names=names):
                env = binary_env("session")
                env["CERROJO_SESSION_KEY"] = key
                env.update(previous)
                out = self.run_binary("session", "--print-config", env=env)
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn((names + " contain the same key").encode(),
                              out.stderr)

    def check_rejected_by_both(self, name, settings, message):
        """Runs --print-config and serve with `settings` and closed stores,
        and checks that both exit 2 with `message`."""
        for command in ("--print-config", "serve"):
            with self.subTest(service=name, settings=settings,
                              command=command):
                svc = h.Service(name, extra_env=binary_env(name))
                svc.env.update(CLOSED_STORES)
                svc.env.update(settings)
                out = subprocess.run([svc.binary(), command], env=svc.env,
                                     capture_output=True,
                                     timeout=h.CALL_TIMEOUT_S,
                                     cwd=h.work_dir())
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertIn(message.encode(), out.stderr)

    def test_metrics_settings_checked_before_start(self):
        for name in h.SERVICES:
            prefix = h.SERVICES[name][0]
            self.check_rejected_by_both(
                name, {"CERROJO_METRICS_HOST": "999.1.1.1"},
                "CERROJO_METRICS_HOST: expected an IPv4 literal")
            port = str(h.free_port())
            self.check_rejected_by_both(
                name, {prefix + "_METRICS_PORT": port,
                       prefix + "_LISTEN": "127.0.0.1:" + port},
                "%s_METRICS_PORT and %s_LISTEN both use port %s"
                % (prefix, prefix, port))

    def test_kms_signing_alg_checked_before_start(self):
        self.check_rejected_by_both(
            "kms", {"CERROJO_KMS_SIGNING_ALG": "HS256"},
            "CERROJO_KMS_SIGNING_ALG: expected RS256, ES256 or EdDSA, "
            "got 'HS256'")

    def test_auth_settings_checked_before_start(self):
        cases = (
            ({"CERROJO_AUTH_CRACKLIB_DICT": "/nonexistent/dict"},
             "CERROJO_AUTH_CRACKLIB_DICT: cannot read the cracklib "
             "dictionary /nonexistent/dict"),
            ({"CERROJO_AUTH_ISSUER": ""}, "CERROJO_AUTH_ISSUER: must not be "
             "empty"),
            ({"CERROJO_AUTH_AUDIENCE": ""}, "CERROJO_AUTH_AUDIENCE: must not "
             "be empty"),
            ({"CERROJO_AUTH_ISSUER": " \t "}, "CERROJO_AUTH_ISSUER: must not "
             "be empty or only whitespace"),
            ({"CERROJO_AUTH_AUDIENCE": "  "}, "CERROJO_AUTH_AUDIENCE: must "
             "not be empty or only whitespace"),
            ({"CERROJO_AUTH_LOGIN_BASE_DELAY_MS": "2000",
              "CERROJO_AUTH_LOGIN_MAX_DELAY_MS": "1000"},
             "CERROJO_AUTH_LOGIN_BASE_DELAY_MS (2000) is above "
             "CERROJO_AUTH_LOGIN_MAX_DELAY_MS (1000)"),
            ({"CERROJO_AUTH_REFRESH_TOKEN_LIFETIME": "2d",
              "CERROJO_AUTH_REFRESH_FAMILY_LIFETIME": "1d"},
             "CERROJO_AUTH_REFRESH_TOKEN_LIFETIME (172800 s) is above "
             "CERROJO_AUTH_REFRESH_FAMILY_LIFETIME (86400 s)"),
            ({"CERROJO_AUTH_ACCESS_TOKEN_LIFETIME": "2h",
              "CERROJO_AUTH_REFRESH_TOKEN_LIFETIME": "1h",
              "CERROJO_AUTH_REFRESH_FAMILY_LIFETIME": "1h"},
             "CERROJO_AUTH_ACCESS_TOKEN_LIFETIME (7200 s) is above "
             "CERROJO_AUTH_REFRESH_FAMILY_LIFETIME (3600 s)"),
            ({"CERROJO_AUTH_LOGIN_STREAK_TTL": "10m"},
             "CERROJO_AUTH_LOGIN_STREAK_TTL (600 s) is not above "
             "CERROJO_AUTH_LOGIN_MAX_DELAY_MS (900000)"),
            ({"CERROJO_AUTH_LOGIN_STREAK_TTL": "60",
              "CERROJO_AUTH_LOGIN_MAX_DELAY_MS": "60000"},
             "CERROJO_AUTH_LOGIN_STREAK_TTL (60 s) is not above "
             "CERROJO_AUTH_LOGIN_MAX_DELAY_MS (60000)"),
            ({"CERROJO_AUTH_LOGIN_FREE_ATTEMPTS": "20",
              "CERROJO_AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS": "10",
              "CERROJO_AUTH_LOGIN_KNOWN_ADDRESS_TTL": "0"},
             "CERROJO_AUTH_LOGIN_FREE_ATTEMPTS (20) is above "
             "CERROJO_AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS (10) while "
             "CERROJO_AUTH_LOGIN_KNOWN_ADDRESS_TTL is 0"),
            ({"CERROJO_AUTH_CACHE_WATCH_INTERVAL": "60",
              "CERROJO_AUTH_CACHE_RELOAD_INTERVAL": "30"},
             "CERROJO_AUTH_CACHE_RELOAD_INTERVAL (30 s) is below "
             "CERROJO_AUTH_CACHE_WATCH_INTERVAL (60 s)"),
        )
        for settings, message in cases:
            self.check_rejected_by_both("auth", settings, message)

    def test_auth_free_attempts_above_account_with_markers(self):
        # A known address skips the login name's wait, so more free
        # attempts per name and address is a valid setting while the
        # markers are on.
        env = binary_env("auth")
        env.update({"CERROJO_AUTH_LOGIN_FREE_ATTEMPTS": "20",
                    "CERROJO_AUTH_LOGIN_ACCOUNT_FREE_ATTEMPTS": "10",
                    "CERROJO_AUTH_LOGIN_KNOWN_ADDRESS_TTL": "1d"})
        out = self.run_binary("auth", "--print-config", env=env)
        self.assertEqual(out.returncode, 0, out.stderr)

    def test_session_idle_above_absolute_rejected(self):
        for var in ("CERROJO_SESSION_IDLE_SECONDS",
                    "CERROJO_SESSION_BOUND_IDLE_SECONDS"):
            self.check_rejected_by_both(
                "session", {var: "2h", "CERROJO_SESSION_ABSOLUTE_SECONDS":
                            "1h", "CERROJO_SESSION_EPOCH_SECONDS": "15m"},
                "%s (7200 s) is above CERROJO_SESSION_ABSOLUTE_SECONDS "
                "(3600 s)" % var)

    def test_dev_warns_of_shared_key_file(self):
        # Stage and prod reject such a file (tests/deploy/profile_check.sh).
        path = os.path.join(h.work_dir(), "world-readable-key")
        with open(path, "w") as f:
            f.write(base64.b64encode(os.urandom(32)).decode() + "\n")
        os.chmod(path, 0o644)
        for name, var in (("kms", "CERROJO_KMS_ROOT_KEY_FILE"),
                          ("session", "CERROJO_SESSION_KEY_FILE")):
            with self.subTest(service=name):
                env = binary_env(name)
                env[var] = path
                out = self.run_binary(name, "--print-config", env=env)
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertIn(b'"event":"config.key_file_insecure_mode"',
                              out.stderr)
                self.assertIn(('"variable":"%s"' % var).encode(), out.stderr)
                self.assertIn(b'"mode":"0644"', out.stderr)

    def test_healthcheck_fails_without_server(self):
        for name in h.SERVICES:
            with self.subTest(service=name):
                out = self.run_binary(name, "healthcheck")
                self.assertEqual(out.returncode, 1, out.stderr)
                self.assertIn(b"unavailable", out.stderr)

    def settled_healthcheck(self, svc, chan):
        """Runs the `healthcheck` subcommand between two health reads. A
        session that is still connecting to Redis turns SERVING at any
        moment, so the subcommand's exit code is checked only against a
        status that was the same before and after it ran."""
        pb2, _ = h.health_modules()
        for _ in range(SETTLE_ATTEMPTS):
            before = h.health_check(chan).status
            check = subprocess.run([svc.binary(), "healthcheck"], env=svc.env,
                                   capture_output=True,
                                   timeout=h.CALL_TIMEOUT_S * 2)
            if h.health_check(chan).status == before:
                return check, before == pb2.HealthCheckResponse.SERVING
        self.fail("health status kept changing around the healthcheck run")

    def check_running(self, name, sig):
        svc = self.start_or_skip(name)
        try:
            with svc.channel() as chan:
                status = h.health_check(chan).status
                self.assertIn(status, HEALTH_ANSWERS)
                desc = h.service_from_reflection(chan, svc.grpc_name)
                fn, req_cls = h.unary(chan, desc, desc.methods[0].name)
                code, details = h.call_code(fn, req_cls())
                self.assertTrue(h.passed_framework(code, details),
                                "%s %s" % (code, details))
                check, serving = self.settled_healthcheck(svc, chan)
                self.assertEqual(check.returncode, 0 if serving else 1,
                                 check.stderr)
        finally:
            exit_status = svc.stop(sig)
        self.assertEqual(exit_status, 0, svc.log())
        self.assertIsNotNone(svc.proc.poll())

    def test_kms_runs_and_stops(self):
        self.check_running("kms", signal.SIGTERM)

    def test_session_runs_and_stops(self):
        self.check_running("session", signal.SIGTERM)

    def test_session_stops_on_sigint(self):
        self.check_running("session", signal.SIGINT)

    def test_auth_runs_and_stops(self):
        self.check_running("auth", signal.SIGTERM)


if __name__ == "__main__":
    unittest.main(verbosity=2)
