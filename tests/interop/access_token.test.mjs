// jose (npm) verifies cerrojo's access tokens against the gateway's
// /.well-known/jwks.json, checking RFC 9068 typ at+jwt, iss, aud and the
// claims. Tokens tampered three ways (a flipped payload byte, a changed
// alg, alg none) must be rejected by jose and by the gateway alike. Runs
// under interop_stack.py, which sets CJ_GATEWAY_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import * as jose from 'jose';
import {
  GATEWAY_URL, fetchKeyList, http, pickKey, randomUser, statelessCall,
} from './cerrojo_client.mjs';

assert.ok(GATEWAY_URL, 'CJ_GATEWAY_URL is not set');

const ISSUER = 'https://cerrojo.local';
const AUDIENCE = 'cerrojo';
const ALGORITHMS = ['RS256', 'ES256', 'EdDSA'];
const VERIFY = { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt',
                 algorithms: ALGORITHMS };

const jwks = jose.createRemoteJWKSet(new URL('/.well-known/jwks.json', GATEWAY_URL));
const serverKey = pickKey((await fetchKeyList()).keys);
const user = randomUser();
const reg = await statelessCall(serverKey, 'POST', '/v1/register', user);
assert.equal(reg.status, 200, reg.text);
const login = await statelessCall(serverKey, 'POST', '/v1/login',
  { login: user.username, password: user.password });
assert.equal(login.status, 200, login.text);
const TOKEN = login.opened.access_token;

const b64json = (obj) => Buffer.from(JSON.stringify(obj)).toString('base64url');

// Returns whether the gateway accepts a token in a sealed GET /v1/me.
async function gatewayAccepts(token) {
  const r = await statelessCall(serverKey, 'GET', '/v1/me', undefined, token);
  if (r.status === 200) return true;
  assert.equal(r.status, 401, r.text);
  assert.equal(r.opened.error.code, 'invalid_token');
  return false;
}

async function assertRejected(token, what) {
  await assert.rejects(jose.jwtVerify(token, jwks, VERIFY), jose.errors.JOSEError,
                       `jose accepted ${what}`);
  assert.equal(await gatewayAccepts(token), false, `gateway accepted ${what}`);
}

test('JWKS is a public JWK set with kids', async () => {
  const r = await http('GET', '/.well-known/jwks.json');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/jwk-set\+json/);
  assert.ok(r.json.keys.length >= 1);
  for (const k of r.json.keys) {
    assert.ok(k.kid);
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
      assert.equal(k[member], undefined, `private member ${member}`);
    }
  }
});

test('jose verifies the login access token', async () => {
  const { payload, protectedHeader } = await jose.jwtVerify(TOKEN, jwks, VERIFY);
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.ok(ALGORITHMS.includes(protectedHeader.alg));
  assert.ok(protectedHeader.kid);
  assert.equal(payload.iss, ISSUER);
  assert.ok(payload.aud === AUDIENCE ||
            (Array.isArray(payload.aud) && payload.aud.includes(AUDIENCE)));
  assert.equal(payload.sub, reg.opened.user_id);
  assert.ok(payload.jti);
  assert.equal(payload.sid, undefined, 'a stateless login has no sid');
  assert.equal(payload.exp - payload.iat, login.opened.expires_in);
  assert.ok(payload.nbf <= payload.iat + 1);
  assert.equal(await gatewayAccepts(TOKEN), true);
});

test('jose checks iss, aud and typ', async () => {
  await assert.rejects(jose.jwtVerify(TOKEN, jwks, { ...VERIFY, issuer: 'https://other' }),
                       jose.errors.JWTClaimValidationFailed);
  await assert.rejects(jose.jwtVerify(TOKEN, jwks, { ...VERIFY, audience: 'other' }),
                       jose.errors.JWTClaimValidationFailed);
  await assert.rejects(jose.jwtVerify(TOKEN, jwks, { ...VERIFY, typ: 'JWT' }),
                       jose.errors.JWTClaimValidationFailed);
});

test('flipped payload byte is rejected', async () => {
  const [h, p, s] = TOKEN.split('.');
  const payload = Buffer.from(p, 'base64url');
  const at = payload.indexOf(Buffer.from(reg.opened.user_id));
  assert.ok(at > 0);
  payload[at] ^= 0x01; // another sub, still valid JSON
  await assertRejected(`${h}.${payload.toString('base64url')}.${s}`,
                       'a flipped payload byte');
});

test('changed alg is rejected', async () => {
  const [h, p, s] = TOKEN.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  // Each other asymmetric alg with the original signature.
  for (const alg of ALGORITHMS.filter((a) => a !== header.alg)) {
    await assertRejected(`${b64json({ ...header, alg })}.${p}.${s}`, `alg ${alg}`);
  }
  // HS256 keyed with the public key's bytes: the classic confusion.
  const jwk = (await http('GET', '/.well-known/jwks.json')).json.keys
    .find((k) => k.kid === header.kid);
  assert.ok(jwk, 'the signing key is in the JWKS');
  const forgedHeader = b64json({ ...header, alg: 'HS256' });
  const mac = crypto.createHmac('sha256', Buffer.from(JSON.stringify(jwk)))
    .update(`${forgedHeader}.${p}`).digest('base64url');
  await assertRejected(`${forgedHeader}.${p}.${mac}`, 'alg HS256');
});

test('alg none is rejected', async () => {
  const [h, p] = TOKEN.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const none = `${b64json({ ...header, alg: 'none' })}.${p}.`;
  await assertRejected(none, 'alg none');
  // jose's own unsecured JWT helper builds the same kind of token.
  const unsecured = new jose.UnsecuredJWT(jose.decodeJwt(TOKEN))
    .setIssuer(ISSUER).setAudience(AUDIENCE).encode();
  await assertRejected(unsecured, 'an unsecured JWT');
});
