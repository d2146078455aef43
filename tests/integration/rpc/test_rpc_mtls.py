"""Mutual TLS and access rules: every method of kms, session and auth
against every platform identity, callers without a certificate or with one
from another CA, and the caller context accepted only from the gateway.
rpc_testd serves each service's own method table with stub handlers, so the
rules checked are the ones the services declare."""

import json
import unittest

import grpc

import rpc_harness as h

ANY = "any platform certificate"
IDENTITIES = ["gateway", "auth", "kms", "session", "platform-service"]

# The access rule of every RPC, as the design fixes them.
ACCESS = {
    "kms": {
        "CreateUserKey": {"auth"}, "DecryptKey": {"auth"},
        "RewrapKey": {"auth"}, "ForgetUserKey": {"auth"},
        "ListOldKeyUsers": {"auth"}, "SignToken": {"auth"},
        "GetJwks": {"auth", "gateway"}, "OpenSealed": {"gateway"},
        "ListPublicKeys": {"gateway"},
    },
    "session": {
        "OpenRequest": {"gateway"}, "CreateSession": {"gateway", "auth"},
        "BindUser": {"auth"}, "DeleteSession": {"auth"},
        "DeleteUserSessions": {"auth"}, "RevokeToken": {"auth"},
        "RevokeUser": {"auth"}, "GetRevocationCacheStatus": {"auth"},
        "LoadRevocations": {"auth"}, "IsRevoked": {"gateway", "auth"},
    },
    "auth": {
        "Register": {"gateway"}, "Login": {"gateway"},
        "Refresh": {"gateway"}, "Logout": {"gateway"},
        "GetProfile": {"gateway"}, "GetData": {"gateway"},
        "PutData": {"gateway"}, "RecordAudit": {"gateway"},
        "Introspect": ANY,
    },
}


class MutualTls(unittest.TestCase):
    services = {}

    @classmethod
    def setUpClass(cls):
        h.load_stubs()
        cls.certs = h.make_certs()
        for name in h.SERVICES:
            cls.services[name] = h.Service(name, certs=cls.certs,
                                           testd=True).start()
        cls.testd = h.Service(h.CONTROL, certs=cls.certs).start()

    @classmethod
    def tearDownClass(cls):
        for svc in list(cls.services.values()) + [cls.testd]:
            status = svc.stop()
            assert status == 0, "%s exited with %s:\n%s" % (
                svc.name, status, svc.log())

    def test_access_rules_of_every_method(self):
        for name, svc in self.services.items():
            for identity in IDENTITIES:
                with svc.channel(identity) as chan:
                    desc = h.service_from_reflection(chan, svc.grpc_name)
                    self.assertEqual({m.name for m in desc.methods},
                                     set(ACCESS[name]))
                    for method, allowed in ACCESS[name].items():
                        with self.subTest(service=name, identity=identity,
                                          method=method):
                            fn, req_cls = h.unary(chan, desc, method)
                            code, details = h.call_code(fn, req_cls())
                            path = "/%s/%s" % (svc.grpc_name, method)
                            if allowed == ANY or identity in allowed:
                                self.assertEqual(
                                    code, grpc.StatusCode.UNIMPLEMENTED)
                                self.assertEqual(details, h.stub_message(
                                    svc.grpc_name, method))
                            else:
                                self.assertEqual(
                                    code, grpc.StatusCode.PERMISSION_DENIED)
                                self.assertEqual(
                                    details, "caller '%s' may not call %s" %
                                    (identity, path))

    def test_denial_is_logged_with_identity_and_method(self):
        svc = self.services["kms"]
        with svc.channel("gateway") as chan:
            fn = chan.unary_unary("/cerrojo.v1.Kms/DecryptKey")
            self.assertEqual(h.call_code(fn, b"")[0],
                             grpc.StatusCode.PERMISSION_DENIED)
        events = [json.loads(line) for line in svc.log().splitlines()
                  if line.startswith("{")]
        denials = [e for e in events
                   if e.get("event") == "rpc.permission_denied"]
        # The denials of the other tests may take this second's line, so
        # this call may be among the suppressed repeats; test_rpc_limits
        # checks the line of a single denial.
        self.assertTrue(denials)
        for e in denials:
            # Identity, method and the count of lines left out, besides
            # the standard fields.
            self.assertEqual(set(e), {"ts", "level", "service", "event",
                                      "request_id", "identity", "method",
                                      "suppressed_repeats"})
            self.assertEqual(e["level"], "warn")

    def test_health_and_reflection_for_any_platform_identity(self):
        pb2, _ = h.health_modules()
        msgs = h.reflection_messages()
        for name, svc in self.services.items():
            with svc.channel("platform-service") as chan:
                self.assertEqual(h.health_check(chan).status,
                                 pb2.HealthCheckResponse.SERVING)
                [resp] = h.reflect(chan, [msgs.ServerReflectionRequest(
                    list_services="")])
                self.assertIn(svc.grpc_name, [
                    s.name for s in resp.list_services_response.service])

    def test_caller_without_certificate_fails(self):
        for name, svc in self.services.items():
            with svc.channel(None) as chan:
                with self.assertRaises(grpc.RpcError) as ctx:
                    h.health_check(chan)
                self.assertEqual(ctx.exception.code(),
                                 grpc.StatusCode.UNAVAILABLE)

    def test_certificate_of_other_ca_fails(self):
        # other.pem claims CN=gateway but comes from an unrelated CA; the
        # client trusts the real CA so only the server's check can fail.
        for name, svc in self.services.items():
            with svc.channel("other") as chan:
                with self.assertRaises(grpc.RpcError) as ctx:
                    h.health_check(chan)
                self.assertEqual(ctx.exception.code(),
                                 grpc.StatusCode.UNAVAILABLE)

    def test_caller_context_validated_from_gateway(self):
        with self.testd.channel("gateway") as chan:
            good = [("cerrojo-session-id", "s-1"),
                    ("cerrojo-channel", "stateful"),
                    ("cerrojo-user-agent", "cerrojo-cli/0.1"),
                    ("cerrojo-request-id", "req-7")]
            self.assertEqual(h.testd_call(chan, "Hold", "x", "0", good)[0],
                             grpc.StatusCode.OK)
            code, details = h.testd_call(
                chan, "Hold", "x", "0", [("cerrojo-client-ip", "999.1.1.1")])
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("cerrojo-client-ip", details)

    def test_caller_context_ignored_from_other_services(self):
        for identity in ("auth", "kms", "session", "platform-service"):
            with self.testd.channel(identity) as chan:
                code, _ = h.testd_call(chan, "Hold", "x", "0",
                                       [("cerrojo-client-ip", "999.1.1.1"),
                                        ("cerrojo-user-id", "bad id")])
                # Not parsed at all, so not rejected.
                self.assertEqual(code, grpc.StatusCode.OK, identity)


if __name__ == "__main__":
    unittest.main(verbosity=2)
