"""Calls cerrojo-kms from Python grpcio over mutual TLS, for test_kms_rpc.

Usage: kms_python_client.py STUBS_DIR ADDRESS CERT_DIR C_USER C_WRAPPED_HEX

Creates a data key for user "py-user", unwraps the C client's wrapped key
for C_USER, and prints one JSON object with the hex of each result.
"""
import json
import sys


def main():
    stubs_dir, address, cert_dir, c_user, c_wrapped_hex = sys.argv[1:6]
    sys.path.insert(0, stubs_dir)
    import grpc
    from cerrojo.v1 import kms_pb2, kms_pb2_grpc

    def read(name):
        with open(f"{cert_dir}/{name}", "rb") as f:
            return f.read()

    creds = grpc.ssl_channel_credentials(
        root_certificates=read("ca.pem"),
        private_key=read("auth.key"),
        certificate_chain=read("auth.pem"),
    )
    with grpc.secure_channel(address, creds) as channel:
        kms = kms_pb2_grpc.KmsStub(channel)
        created = kms.CreateUserKey(
            kms_pb2.CreateUserKeyRequest(user_id="py-user"), timeout=10)
        opened = kms.DecryptKey(
            kms_pb2.DecryptKeyRequest(
                user_id=c_user, wrapped_key=bytes.fromhex(c_wrapped_hex)),
            timeout=10)
        try:
            kms.DecryptKey(
                kms_pb2.DecryptKeyRequest(
                    user_id="someone-else",
                    wrapped_key=bytes.fromhex(c_wrapped_hex)),
                timeout=10)
            other_user = "OK"
        except grpc.RpcError as e:
            other_user = e.code().name
    print(json.dumps({
        "data_key": created.data_key.hex(),
        "wrapped_key": created.wrapped_key.hex(),
        "kek_version": created.kek_version,
        "c_data_key": opened.data_key.hex(),
        "c_kek_version": opened.kek_version,
        "other_user": other_user,
    }))


if __name__ == "__main__":
    main()
