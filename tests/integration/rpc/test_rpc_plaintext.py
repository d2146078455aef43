"""Interop of the gRPC framework in dev plaintext mode from Python grpcio:
health Check and Watch, server reflection (v1alpha and v1), a call built
from reflection alone, unknown methods, limits and caller context.

Each of kms, session and auth is served by rpc_testd from its own method
table with stub handlers, so no Postgres or Redis is needed. The real
binaries are started by test_rpc_binaries.py."""

import unittest

import grpc

import rpc_harness as h

# Every RPC of each service, from the .proto files.
METHODS = {
    "kms": ["CreateUserKey", "DecryptKey", "RewrapKey", "ForgetUserKey",
            "ListOldKeyUsers", "SignToken", "GetJwks", "OpenSealed",
            "ListPublicKeys"],
    "session": ["CreateSession", "OpenRequest", "BindUser", "DeleteSession",
                "DeleteUserSessions", "RevokeToken", "RevokeUser",
                "IsRevoked", "GetRevocationCacheStatus", "LoadRevocations"],
    "auth": ["Register", "Login", "Refresh", "Logout", "GetProfile",
             "GetData", "PutData", "RecordAudit", "Introspect"],
}

# The file declaring each service, with what it imports.
FILES = {
    "kms": {"cerrojo/v1/kms.proto"},
    "session": {"cerrojo/v1/session.proto", "cerrojo/v1/common.proto"},
    "auth": {"cerrojo/v1/auth.proto", "cerrojo/v1/common.proto"},
}


class PlaintextServices(unittest.TestCase):
    services = {}

    @classmethod
    def setUpClass(cls):
        h.load_stubs()
        for name in h.SERVICES:
            cls.services[name] = h.Service(name, testd=True).start()
        cls.testd = h.Service(h.CONTROL).start()

    @classmethod
    def tearDownClass(cls):
        for svc in list(cls.services.values()) + [cls.testd]:
            status = svc.stop()
            assert status == 0, "%s exited with %s:\n%s" % (
                svc.name, status, svc.log())

    def each(self):
        for name, svc in self.services.items():
            with self.subTest(service=name):
                with svc.channel() as chan:
                    yield name, svc, chan

    def test_health_check_serving(self):
        pb2, _ = h.health_modules()
        for name, svc, chan in self.each():
            for target in ("", svc.grpc_name):
                resp = h.health_check(chan, target)
                self.assertEqual(resp.status,
                                 pb2.HealthCheckResponse.SERVING, target)

    def test_health_check_follows_status_changes(self):
        pb2, _ = h.health_modules()
        with self.testd.channel() as chan:
            self.assertEqual(h.health_check(chan).status,
                             pb2.HealthCheckResponse.SERVING)
            self.assertEqual(h.testd_call(chan, "SetHealth", "NOT_SERVING",
                                          "")[0], grpc.StatusCode.OK)
            self.assertEqual(h.health_check(chan).status,
                             pb2.HealthCheckResponse.NOT_SERVING)
            # The service's own name keeps its status.
            self.assertEqual(h.health_check(chan, "cerrojo.test.Control")
                             .status, pb2.HealthCheckResponse.SERVING)
            self.assertEqual(h.testd_call(chan, "SetHealth", "SERVING", "")[0],
                             grpc.StatusCode.OK)
            self.assertEqual(h.health_check(chan).status,
                             pb2.HealthCheckResponse.SERVING)

    def test_health_check_unknown_service_not_found(self):
        for name, svc, chan in self.each():
            with self.assertRaises(grpc.RpcError) as ctx:
                h.health_check(chan, "no.such.Service")
            self.assertEqual(ctx.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_health_watch_sends_current_status(self):
        pb2, grpc_mod = h.health_modules()
        for name, svc, chan in self.each():
            stream = grpc_mod.HealthStub(chan).Watch(
                pb2.HealthCheckRequest(service=""), timeout=h.CALL_TIMEOUT_S)
            self.assertEqual(next(stream).status,
                             pb2.HealthCheckResponse.SERVING)
            stream.cancel()

    def test_health_watch_sends_each_change(self):
        pb2, grpc_mod = h.health_modules()
        with self.testd.channel() as chan:
            stream = grpc_mod.HealthStub(chan).Watch(
                pb2.HealthCheckRequest(service="extra"),
                timeout=h.CALL_TIMEOUT_S)
            self.assertEqual(next(stream).status,
                             pb2.HealthCheckResponse.SERVICE_UNKNOWN)
            for status in ("NOT_SERVING", "SERVING", "NOT_SERVING"):
                self.assertEqual(h.testd_call(chan, "SetHealth", status,
                                              "extra")[0], grpc.StatusCode.OK)
                self.assertEqual(next(stream).status,
                                 pb2.HealthCheckResponse.ServingStatus.Value(status))
            stream.cancel()

    def test_health_watch_unknown_service(self):
        pb2, grpc_mod = h.health_modules()
        for name, svc, chan in self.each():
            stream = grpc_mod.HealthStub(chan).Watch(
                pb2.HealthCheckRequest(service="no.such.Service"),
                timeout=h.CALL_TIMEOUT_S)
            self.assertEqual(next(stream).status,
                             pb2.HealthCheckResponse.SERVICE_UNKNOWN)
            stream.cancel()

    def test_reflection_lists_services(self):
        for version in ("v1alpha", "v1"):
            msgs = h.reflection_messages(version)
            for name, svc, chan in self.each():
                [resp] = h.reflect(chan, [msgs.ServerReflectionRequest(
                    list_services="")], version)
                listed = {s.name for s in resp.list_services_response.service}
                self.assertEqual(listed, {
                    svc.grpc_name, "grpc.health.v1.Health",
                    "grpc.reflection.v1alpha.ServerReflection",
                    "grpc.reflection.v1.ServerReflection"}, version)

    def test_reflection_file_containing_symbol_has_dependencies(self):
        from google.protobuf import descriptor_pb2
        msgs = h.reflection_messages()
        for name, svc, chan in self.each():
            for symbol in (svc.grpc_name,
                           svc.grpc_name + "." + METHODS[name][0]):
                [resp] = h.reflect(chan, [msgs.ServerReflectionRequest(
                    file_containing_symbol=symbol)])
                blobs = resp.file_descriptor_response.file_descriptor_proto
                names = [descriptor_pb2.FileDescriptorProto.FromString(b).name
                         for b in blobs]
                self.assertEqual(set(names), FILES[name], symbol)
                self.assertEqual(len(names), len(set(names)))
                self.assertEqual(names[0], "cerrojo/v1/%s.proto" % name)
                self.assertEqual(resp.original_request.file_containing_symbol,
                                 symbol)

    def test_reflection_several_requests_on_one_stream(self):
        msgs = h.reflection_messages("v1")
        for name, svc, chan in self.each():
            responses = h.reflect(chan, [
                msgs.ServerReflectionRequest(list_services=""),
                msgs.ServerReflectionRequest(
                    file_by_filename="cerrojo/v1/common.proto"),
                msgs.ServerReflectionRequest(
                    file_containing_symbol="grpc.health.v1.Health"),
                msgs.ServerReflectionRequest(
                    all_extension_numbers_of_type="cerrojo.v1.TokenSet"),
                msgs.ServerReflectionRequest(
                    file_containing_symbol="cerrojo.v1.NoSuchThing"),
            ], "v1")
            self.assertEqual(len(responses), 5)
            self.assertTrue(responses[0].HasField("list_services_response"))
            self.assertEqual(len(responses[1].file_descriptor_response
                                 .file_descriptor_proto), 1)
            self.assertTrue(responses[2].HasField("file_descriptor_response"))
            ext = responses[3].all_extension_numbers_response
            self.assertEqual(ext.base_type_name, "cerrojo.v1.TokenSet")
            self.assertEqual(list(ext.extension_number), [])
            err = responses[4].error_response
            self.assertEqual(err.error_code, grpc.StatusCode.NOT_FOUND.value[0])
            self.assertIn("cerrojo.v1.NoSuchThing", err.error_message)

    def test_call_built_from_reflection_reaches_handler(self):
        for name, svc, chan in self.each():
            desc = h.service_from_reflection(chan, svc.grpc_name)
            self.assertEqual([m.name for m in desc.methods], METHODS[name])
            for method in METHODS[name]:
                fn, req_cls = h.unary(chan, desc, method)
                code, details = h.call_code(fn, req_cls())
                self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED, method)
                self.assertEqual(details,
                                 h.stub_message(svc.grpc_name, method))

    def test_reflection_v1_builds_same_service(self):
        for name, svc, chan in self.each():
            desc = h.service_from_reflection(chan, svc.grpc_name, "v1")
            self.assertEqual([m.name for m in desc.methods], METHODS[name])

    def test_unknown_method_is_unimplemented(self):
        for name, svc, chan in self.each():
            for path in ("/%s/NoSuchMethod" % svc.grpc_name,
                         "/no.such.Service/Call"):
                fn = chan.unary_unary(path)
                # A hang would end in DEADLINE_EXCEEDED instead.
                code, details = h.call_code(fn, b"")
                self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED, path)
                self.assertIn(path, details)

    def test_malformed_request_is_invalid_argument(self):
        for name, svc, chan in self.each():
            fn = chan.unary_unary("/%s/%s" % (svc.grpc_name, METHODS[name][0]))
            code, details = h.call_code(fn, b"\xff\xff\xff")
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("not a valid", details)

    def test_oversized_request_is_rejected(self):
        for name, svc, chan in self.each():
            fn = chan.unary_unary("/%s/%s" % (svc.grpc_name, METHODS[name][0]))
            code, _ = h.call_code(fn, b"\x0a\x80\x80\x80\x01" + b"a" * (2 << 20))
            self.assertEqual(code, grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_caller_context_trusted_and_validated_in_dev(self):
        with self.testd.channel() as chan:
            good = [("cerrojo-user-id", "u-1"), ("cerrojo-channel", "stateless"),
                    ("cerrojo-client-ip", "198.51.100.7"),
                    ("cerrojo-request-id", "req-42")]
            code, _ = h.testd_call(chan, "Hold", "x", "0", good)
            self.assertEqual(code, grpc.StatusCode.OK)
            for key, value in [("cerrojo-client-ip", "not-an-ip"),
                               ("cerrojo-channel", "sideways"),
                               ("cerrojo-user-id", "a b"),
                               ("cerrojo-token-expires-at", "-1")]:
                code, details = h.testd_call(chan, "Hold", "x", "0",
                                             [(key, value)])
                self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, key)
                self.assertIn(key, details)
                self.assertNotIn(value, details)


if __name__ == "__main__":
    unittest.main(verbosity=2)
