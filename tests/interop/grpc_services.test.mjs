// Interop of cerrojo's gRPC framework with Node @grpc/grpc-js: health
// Check, reflection (list_services, file_containing_symbol) on every
// service, a client built from reflection alone, and mutual TLS with access
// rules. Each of kms, session and auth is served by rpc_testd from its own
// method table with stub handlers, so no Postgres or Redis is needed.
// Reads CJ_BIN_DIR (build/bin) and CJ_SOURCE_DIR (the repository).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, createWriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';

const SOURCE_DIR = process.env.CJ_SOURCE_DIR ?? path.resolve('../..');
const BIN_DIR = process.env.CJ_BIN_DIR ?? path.join(SOURCE_DIR, 'build/bin');
const GRPC_PROTO_DIR = '/usr/share/grpc-proto';
const CALL_TIMEOUT_MS = 10000;
const TESTD_PREFIX = 'CERROJO_RPC_TESTD';
const START_TIMEOUT_MS = 20000;

const SERVICES = {
  auth: { name: 'cerrojo.v1.Auth', first: 'Register',
          files: ['cerrojo/v1/auth.proto', 'cerrojo/v1/common.proto'] },
  kms: { name: 'cerrojo.v1.Kms', first: 'CreateUserKey',
         files: ['cerrojo/v1/kms.proto'] },
  session: { name: 'cerrojo.v1.Session', first: 'CreateSession',
             files: ['cerrojo/v1/session.proto', 'cerrojo/v1/common.proto'] },
};

const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String,
                         defaults: true, oneofs: true,
                         includeDirs: [GRPC_PROTO_DIR] };
const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(
  'grpc/health/v1/health.proto', LOADER_OPTIONS));
const reflectionPkgs = {
  v1alpha: grpc.loadPackageDefinition(protoLoader.loadSync(
    'grpc/reflection/v1alpha/reflection.proto', LOADER_OPTIONS))
    .grpc.reflection.v1alpha,
  v1: grpc.loadPackageDefinition(protoLoader.loadSync(
    'grpc/reflection/v1/reflection.proto', LOADER_OPTIONS))
    .grpc.reflection.v1,
};

const workDir = mkdtempSync(path.join(tmpdir(), 'cerrojo-node-'));
const running = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function waitListening(port, proc) {
  const deadline = Date.now() + START_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      if (proc.exitCode !== null) {
        reject(new Error(`service exited with ${proc.exitCode} at start`));
        return;
      }
      const sock = net.connect(port, '127.0.0.1');
      sock.on('connect', () => { sock.destroy(); resolve(); });
      sock.on('error', () => {
        sock.destroy();
        if (Date.now() > deadline) reject(new Error(`port ${port} not ready`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

async function startService(name, certs) {
  const svc = SERVICES[name];
  const port = await freePort();
  const env = { ...process.env, CERROJO_PROFILE: 'dev',
                CERROJO_ENV_FILE: '/dev/null',
                [`${TESTD_PREFIX}_TABLE`]: name,
                [`${TESTD_PREFIX}_LISTEN`]: `127.0.0.1:${port}` };
  if (certs) {
    Object.assign(env, {
      CERROJO_GRPC_PLAINTEXT: 'false',
      CERROJO_TLS_CA: path.join(certs, 'ca.pem'),
      [`${TESTD_PREFIX}_TLS_CERT`]: path.join(certs, `${name}.pem`),
      [`${TESTD_PREFIX}_TLS_KEY`]: path.join(certs, `${name}.key`),
    });
  } else {
    env.CERROJO_GRPC_PLAINTEXT = 'true';
  }
  const log = createWriteStream(path.join(workDir, `${name}-${port}.log`));
  const proc = spawn(path.join(BIN_DIR, 'rpc_testd'), ['serve'],
                     { env, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout.pipe(log);
  proc.stderr.pipe(log);
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
  const entry = { name, port, proc, exited, ...svc };
  running.push(entry);
  await waitListening(port, proc);
  return entry;
}

function credentials(certs, identity) {
  if (!certs) return grpc.credentials.createInsecure();
  return grpc.credentials.createSsl(
    readFileSync(path.join(certs, 'ca.pem')),
    readFileSync(path.join(certs, `${identity}.key`)),
    readFileSync(path.join(certs, `${identity}.pem`)));
}

function unaryCall(client, method, request) {
  return new Promise((resolve) => {
    client[method](request, { deadline: Date.now() + CALL_TIMEOUT_MS },
                   (err, resp) => resolve({ err, resp }));
  });
}

function reflect(target, creds, requests, version = 'v1alpha') {
  const client = new reflectionPkgs[version].ServerReflection(
    target, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  return new Promise((resolve, reject) => {
    const responses = [];
    const call = client.ServerReflectionInfo(
      { deadline: Date.now() + CALL_TIMEOUT_MS });
    call.on('data', (r) => responses.push(r));
    call.on('error', (e) => { client.close(); reject(e); });
    call.on('end', () => { client.close(); resolve(responses); });
    for (const r of requests) call.write(r);
    call.end();
  });
}

// Wraps FileDescriptorProto bytes into a FileDescriptorSet (field 1 each).
function descriptorSet(blobs) {
  const parts = [];
  for (const blob of blobs) {
    const len = [];
    let n = blob.length;
    do {
      let byte = n & 0x7f;
      n >>>= 7;
      if (n) byte |= 0x80;
      len.push(byte);
    } while (n);
    parts.push(Buffer.from([0x0a, ...len]), Buffer.from(blob));
  }
  return Buffer.concat(parts);
}

// Builds a client for a service from reflection alone, as grpcurl does.
async function clientFromReflection(target, creds, serviceName) {
  const options = { 'grpc.ssl_target_name_override': 'localhost' };
  const [resp] = await reflect(target, creds,
                               [{ file_containing_symbol: serviceName }]);
  assert.equal(resp.message_response, 'file_descriptor_response');
  const def = protoLoader.loadFileDescriptorSetFromBuffer(
    descriptorSet(resp.file_descriptor_response.file_descriptor_proto),
    { keepCase: true, defaults: true });
  let ctor = grpc.loadPackageDefinition(def);
  for (const part of serviceName.split('.')) ctor = ctor[part];
  return new ctor(target, creds, options);
}

let plain = {};
let tls = {};
let certs;

before(async () => {
  certs = path.join(workDir, 'certs');
  execFileSync(path.join(SOURCE_DIR, 'scripts/dev-certs.sh'), [certs],
               { stdio: 'ignore' });
  for (const name of Object.keys(SERVICES)) {
    plain[name] = await startService(name, null);
    tls[name] = await startService(name, certs);
  }
});

after(async () => {
  for (const svc of running) {
    if (svc.proc.exitCode === null) svc.proc.kill('SIGTERM');
    const code = await svc.exited;
    assert.equal(code, 0, `${svc.name} exited with ${code}`);
  }
  rmSync(workDir, { recursive: true, force: true });
});

// Returns the error message of rpc_testd's stub handlers, which a call
// reaches only after passing every check.
function stubMessage(serviceName, method) {
  return `/${serviceName}/${method} reached the test stub`;
}

test('health check is SERVING on every service', async () => {
  for (const svc of Object.values(plain)) {
    const client = new healthPkg.grpc.health.v1.Health(
      `127.0.0.1:${svc.port}`, grpc.credentials.createInsecure());
    for (const service of ['', svc.name]) {
      const { err, resp } = await unaryCall(client, 'Check', { service });
      assert.equal(err, null, `${svc.name} ${service}`);
      assert.equal(resp.status, 'SERVING');
    }
    client.close();
  }
});

test('reflection lists services and files on both versions', async () => {
  for (const svc of Object.values(plain)) {
    for (const version of ['v1alpha', 'v1']) {
      const [list, file] = await reflect(
        `127.0.0.1:${svc.port}`, grpc.credentials.createInsecure(),
        [{ list_services: '' }, { file_containing_symbol: svc.name }],
        version);
      const names = list.list_services_response.service.map((s) => s.name);
      assert.ok(names.includes(svc.name), names.join(','));
      assert.ok(names.includes('grpc.health.v1.Health'));
      assert.ok(names.includes('grpc.reflection.v1alpha.ServerReflection'));
      assert.equal(file.file_descriptor_response.file_descriptor_proto.length,
                   svc.files.length);
    }
  }
});

test('client built from reflection reaches the handler', async () => {
  for (const svc of Object.values(plain)) {
    const client = await clientFromReflection(
      `127.0.0.1:${svc.port}`, grpc.credentials.createInsecure(), svc.name);
    const { err } = await unaryCall(client, svc.first, {});
    assert.equal(err.code, grpc.status.UNIMPLEMENTED);
    assert.equal(err.details, stubMessage(svc.name, svc.first));
    client.close();
  }
});

test('unknown method gets UNIMPLEMENTED, not a hang', async () => {
  const svc = plain.kms;
  const client = new grpc.Client(`127.0.0.1:${svc.port}`,
                                 grpc.credentials.createInsecure());
  const err = await new Promise((resolve) => {
    client.makeUnaryRequest('/cerrojo.v1.Kms/NoSuchMethod', (x) => x,
                            (x) => x, Buffer.alloc(0),
                            { deadline: Date.now() + CALL_TIMEOUT_MS },
                            (e) => resolve(e));
  });
  assert.equal(err.code, grpc.status.UNIMPLEMENTED);
  client.close();
});

test('mutual TLS enforces access rules', async () => {
  const svc = tls.kms;
  const target = `127.0.0.1:${svc.port}`;
  const asAuth = await clientFromReflection(target,
                                            credentials(certs, 'auth'),
                                            svc.name);
  let { err } = await unaryCall(asAuth, 'SignToken', { user_id: 'u-1' });
  assert.equal(err.code, grpc.status.UNIMPLEMENTED);
  assert.equal(err.details, stubMessage(svc.name, 'SignToken'));
  asAuth.close();

  const asGateway = await clientFromReflection(target,
                                               credentials(certs, 'gateway'),
                                               svc.name);
  ({ err } = await unaryCall(asGateway, 'SignToken', { user_id: 'u-1' }));
  assert.equal(err.code, grpc.status.PERMISSION_DENIED);
  assert.equal(err.details,
               "caller 'gateway' may not call /cerrojo.v1.Kms/SignToken");
  asGateway.close();

  const health = new healthPkg.grpc.health.v1.Health(
    target, credentials(certs, 'other'),
    { 'grpc.ssl_target_name_override': 'localhost' });
  ({ err } = await unaryCall(health, 'Check', { service: '' }));
  assert.equal(err.code, grpc.status.UNAVAILABLE);
  health.close();
});
