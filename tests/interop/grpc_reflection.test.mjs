// grpc-reflection-js (npm) lists and describes every service of auth, kms
// and session through server reflection, as a platform service would. When
// the stack runs TLS, it connects over mutual TLS with the
// platform-service certificate. Runs under interop_stack.py, which sets
// CJ_*_ADDR, CJ_CERTS_DIR and CJ_GRPC_TLS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import grpcReflection from 'grpc-reflection-js';

const TLS = process.env.CJ_GRPC_TLS === '1';
const CERTS = process.env.CJ_CERTS_DIR;
const IDENTITY = 'platform-service';
// The certificates name localhost; an IP address is no TLS server name.
const OPTIONS = TLS ? { 'grpc.ssl_target_name_override': 'localhost' } : {};

// Every RPC of each service, from proto/cerrojo/v1/*.proto.
const SERVICES = {
  auth: { addr: process.env.CJ_AUTH_ADDR, name: 'cerrojo.v1.Auth',
          methods: ['Register', 'Login', 'Refresh', 'Logout', 'GetProfile',
                    'GetData', 'PutData', 'RecordAudit', 'Introspect'] },
  kms: { addr: process.env.CJ_KMS_ADDR, name: 'cerrojo.v1.Kms',
         methods: ['CreateUserKey', 'DecryptKey', 'RewrapKey',
                   'ForgetUserKey', 'ListOldKeyUsers', 'SignToken', 'GetJwks',
                   'OpenSealed', 'ListPublicKeys'] },
  session: { addr: process.env.CJ_SESSION_ADDR, name: 'cerrojo.v1.Session',
             methods: ['CreateSession', 'OpenRequest', 'BindUser',
                       'DeleteSession', 'DeleteUserSessions', 'RevokeToken',
                       'RevokeUser', 'IsRevoked', 'GetRevocationCacheStatus',
                       'LoadRevocations'] },
};

function credentials() {
  if (!TLS) return grpc.credentials.createInsecure();
  assert.ok(CERTS, 'CJ_CERTS_DIR is not set');
  return grpc.credentials.createSsl(
    readFileSync(path.join(CERTS, 'ca.pem')),
    readFileSync(path.join(CERTS, `${IDENTITY}.key`)),
    readFileSync(path.join(CERTS, `${IDENTITY}.pem`)));
}

for (const [short, svc] of Object.entries(SERVICES)) {
  test(`reflection lists and describes ${short}`, async () => {
    assert.ok(svc.addr, `the address of ${short} is not set`);
    const client = new grpcReflection.Client(svc.addr, credentials(), OPTIONS);
    try {
      const names = await client.listServices();
      assert.deepEqual(names.filter((n) => n.startsWith('cerrojo.')), [svc.name]);
      for (const required of [svc.name, 'grpc.health.v1.Health',
                              'grpc.reflection.v1alpha.ServerReflection']) {
        assert.ok(names.includes(required), `${required} in ${names}`);
      }
      const root = await client.fileContainingSymbol(svc.name);
      const service = root.lookupService(svc.name);
      assert.deepEqual(Object.keys(service.methods).sort(), [...svc.methods].sort());
      for (const method of Object.values(service.methods)) {
        method.resolve();
        assert.ok(method.resolvedRequestType, `${method.name} request type`);
        assert.ok(method.resolvedResponseType, `${method.name} response type`);
      }
    } finally {
      client.grpcClient.close();
    }
  });
}

test('caller without certificate is rejected',
     { skip: !TLS && 'the stack runs plaintext gRPC' }, async () => {
  const client = new grpcReflection.Client(
    SERVICES.kms.addr,
    grpc.credentials.createSsl(readFileSync(path.join(CERTS, 'ca.pem'))),
    OPTIONS);
  try {
    await assert.rejects(client.listServices());
  } finally {
    client.grpcClient.close();
  }
});
