// Interop of the sealed HTTP API with an independent Node client
// (cerrojo_client.mjs on @hpke/core, Node crypto and jose). It checks the
// signed key list, stateless register, login and me with every offered
// AEAD, and a stateful session opened by login, with and without padding
// of the sealed plaintexts. It also checks that
// tampered and replayed envelopes are rejected, and that a stateless
// logout with a refresh token alone ends only that token's family. Runs
// under interop_stack.py, which sets CJ_GATEWAY_URL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AEAD, PAD_BLOCK_LEN, Session, b64u, fetchKeyList, http, pickKey, randomUser,
  sealStateless, sealedPlaintext, statelessCall, unb64u,
} from './cerrojo_client.mjs';
import crypto from 'node:crypto';

assert.ok(process.env.CJ_GATEWAY_URL, 'CJ_GATEWAY_URL is not set');

const ERROR_CODES = new Set(['invalid_request', 'invalid_credentials',
  'invalid_token', 'decryption_failed', 'replayed', 'rate_limited',
  'unavailable', 'not_found', 'method_not_allowed', 'conflict', 'forbidden',
  'payload_too_large', 'unsupported_media_type', 'uri_too_long',
  'headers_too_large', 'internal']);

function assertError(body, code) {
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(),
                   ['code', 'message', 'request_id']);
  assert.equal(body.error.code, code);
  assert.ok(ERROR_CODES.has(body.error.code));
}

const keyList = await fetchKeyList();

test('key list is an EdDSA JWS of X25519 keys', () => {
  assert.ok(keyList.keys.length >= 1);
  for (const k of keyList.keys) {
    assert.equal(unb64u(k.public_key).length, 32);
    assert.ok([AEAD.AES128GCM, AEAD.AES256GCM, AEAD.CHACHA].includes(k.aead_id));
  }
  assert.ok(pickKey(keyList.keys, AEAD.AES256GCM));
});

test('stateless register, login, me per AEAD', async () => {
  const aeads = [...new Set(keyList.keys.filter((k) => k.state === 'active')
    .map((k) => k.aead_id))];
  assert.ok(aeads.includes(AEAD.AES256GCM));
  for (const aeadId of aeads) {
    const key = pickKey(keyList.keys, aeadId);
    const user = randomUser();
    const reg = await statelessCall(key, 'POST', '/v1/register', user);
    assert.equal(reg.status, 200, `aead ${aeadId}: ${reg.text}`);
    assert.equal(reg.headers.get('cache-control'), 'no-store');
    assert.equal(reg.opened.token_type, 'Bearer');
    assert.ok(reg.opened.access_token.split('.').length === 3);
    assert.equal(reg.opened.session, undefined, 'no handshake, no session');

    const login = await statelessCall(key, 'POST', '/v1/login',
      { login: user.username, password: user.password });
    assert.equal(login.status, 200, login.text);
    assert.equal(login.opened.user_id, reg.opened.user_id);
    assert.ok(login.opened.refresh_token.length >= 43);

    const me = await statelessCall(key, 'GET', '/v1/me', undefined,
                                   login.opened.access_token);
    assert.equal(me.status, 200, me.text);
    assert.equal(me.opened.user_id, reg.opened.user_id);
    assert.equal(me.opened.username, user.username);
    assert.equal(me.opened.email, user.email);
  }
});

test('wrong password gets sealed invalid_credentials', async () => {
  const key = pickKey(keyList.keys);
  const user = randomUser();
  assert.equal((await statelessCall(key, 'POST', '/v1/register', user)).status, 200);
  const r = await statelessCall(key, 'POST', '/v1/login',
    { login: user.username, password: user.password + 'x' });
  assert.equal(r.status, 401);
  assertError(r.opened, 'invalid_credentials');
});

test('stateless logout with refresh token alone ends its family', async () => {
  const key = pickKey(keyList.keys);
  const reg = await statelessCall(key, 'POST', '/v1/register', randomUser());
  assert.equal(reg.status, 200, reg.text);
  const logout = await statelessCall(key, 'POST', '/v1/logout',
    { refresh_token: reg.opened.refresh_token });
  assert.equal(logout.status, 200, logout.text);
  const refreshed = await statelessCall(key, 'POST', '/v1/refresh',
    { refresh_token: reg.opened.refresh_token });
  assert.equal(refreshed.status, 401, refreshed.text);
  const me = await statelessCall(key, 'GET', '/v1/me', undefined,
                                 reg.opened.access_token);
  assert.equal(me.status, 401, me.text);
});

test('stateless logout of all devices with refresh token alone is 400',
  async () => {
    const key = pickKey(keyList.keys);
    const reg = await statelessCall(key, 'POST', '/v1/register', randomUser());
    assert.equal(reg.status, 200, reg.text);
    const logout = await statelessCall(key, 'POST', '/v1/logout',
      { refresh_token: reg.opened.refresh_token, all: true });
    assert.equal(logout.status, 400, logout.text);
    assertError(logout.opened, 'invalid_request');
    assert.match(logout.opened.error.message, /needs the access token/);
    // Nothing was revoked, so the refresh token still works.
    const refreshed = await statelessCall(key, 'POST', '/v1/refresh',
      { refresh_token: reg.opened.refresh_token });
    assert.equal(refreshed.status, 200, refreshed.text);
  });

test('flipped ciphertext byte gets plain decryption_failed', async () => {
  const key = pickKey(keyList.keys);
  const r0 = await statelessCall(key, 'POST', '/v1/login',
    { login: 'nobody', password: 'irrelevant-password' });
  const env = JSON.parse(r0.sent);
  const ct = unb64u(env.ct);
  ct[0] ^= 0x01;
  env.ct = b64u(ct);
  env.enc = b64u(crypto.randomBytes(32)); // a fresh enc: not a replay
  const r = await http('POST', '/v1/login', {
    body: JSON.stringify(env), headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 400, r.text);
  assertError(r.json, 'decryption_failed');
});

test('envelope for another path is rejected', async () => {
  const key = pickKey(keyList.keys);
  const sealed = await statelessCall(key, 'POST', '/v1/login',
    { login: 'nobody', password: 'irrelevant-password' });
  // The same ciphertext presented for another path fails the AAD check.
  const r = await http('POST', '/v1/register', {
    body: sealed.sent, headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 400, r.text);
  assertError(r.json, 'decryption_failed');
});

test('request sealed with another info is rejected', async () => {
  // The gateway must derive the HPKE context from the documented info, so
  // a request sealed under any other info does not open.
  const key = pickKey(keyList.keys);
  const body = JSON.stringify({ login: 'nobody', password: 'irrelevant-password' });
  const sealed = await sealStateless(key, 'POST', '/v1/login',
                                     sealedPlaintext(body),
                                     'cerrojo stateless request v2');
  const r = await http('POST', '/v1/login', {
    body: JSON.stringify(sealed.envelope),
    headers: { 'Content-Type': 'application/json' } });
  assert.equal(r.status, 400, r.text);
  assertError(r.json, 'decryption_failed');
});

test('replayed envelope is rejected', async () => {
  const key = pickKey(keyList.keys);
  const user = randomUser();
  const first = await statelessCall(key, 'POST', '/v1/register', user);
  assert.equal(first.status, 200, first.text);
  const again = await http('POST', '/v1/register', {
    body: first.sent, headers: { 'Content-Type': 'application/json' } });
  assert.equal(again.status, 409, again.text);
  // Raised after opening: sealed to the original request's context.
  assert.ok('nonce' in again.json, again.text);
  assert.ok('ct' in again.json, again.text);
});

test('login with handshake opens a session', async () => {
  const key = pickKey(keyList.keys);
  const user = randomUser();
  assert.equal((await statelessCall(key, 'POST', '/v1/register', user)).status, 200);
  const secret = crypto.randomBytes(32);
  const login = await statelessCall(key, 'POST', '/v1/login',
    { login: user.email, password: user.password, client_secret: b64u(secret) });
  assert.equal(login.status, 200, login.text);
  const info = login.opened.session;
  assert.ok(info, 'session in the token set');
  assert.ok(info.session_id, 'session id in the token set');
  const session = new Session(info, secret);
  const me = await session.call('GET', '/v1/me');
  assert.equal(me.status, 200, me.text);
  assert.equal(me.opened.username, user.username);
  const put = await session.call('PUT', '/v1/me/data/protected',
                                 { fields: { note: 'kept sealed' } });
  assert.equal(put.status, 200, put.text);
  const got = await session.call('GET', '/v1/me/data/protected');
  assert.equal(got.status, 200, got.text);
  assert.equal(got.opened.fields.note, 'kept sealed');
  assert.equal(got.opened.class, 'protected');
});

test('handshake then stateful login and logout', async () => {
  const key = pickKey(keyList.keys);
  const user = randomUser();
  assert.equal((await statelessCall(key, 'POST', '/v1/register', user)).status, 200);
  const secret = crypto.randomBytes(32);
  const hs = await statelessCall(key, 'POST', '/v1/handshake',
                                 { client_secret: b64u(secret) });
  assert.equal(hs.status, 200, hs.text);
  assert.equal(hs.headers.get('cache-control'), 'no-store');
  const session = new Session(hs.opened, secret);

  // Before login the session has no user.
  const anonymous = await session.call('GET', '/v1/me');
  assert.equal(anonymous.status, 401, anonymous.text);
  assert.equal(anonymous.opened.error.code, 'invalid_token');

  const login = await session.call('POST', '/v1/login',
    { login: user.username, password: user.password });
  assert.equal(login.status, 200, login.text);
  const refreshed = await session.call('POST', '/v1/refresh',
    { refresh_token: login.opened.refresh_token });
  assert.equal(refreshed.status, 200, refreshed.text);
  assert.notEqual(refreshed.opened.refresh_token, login.opened.refresh_token);
  const me = await session.call('GET', '/v1/me');
  assert.equal(me.status, 200, me.text);
  assert.equal(me.opened.username, user.username);

  // A replayed stateful envelope is rejected by the session's window.
  const again = await http('GET', '/v1/me', {
    headers: { 'Cerrojo-Session': session.sid,
               'Cerrojo-Seal': b64u(Buffer.from(me.sent)) } });
  assert.equal(again.status, 409, again.text);

  const logout = await session.call('POST', '/v1/logout', {});
  assert.equal(logout.status, 200, logout.text);
  assert.deepEqual(logout.opened, {});
  const after = await session.call('GET', '/v1/me');
  assert.equal(after.status, 401, after.text);
});

test('padded requests open and every sealed answer is padded', async () => {
  const key = pickKey(keyList.keys);
  const user = randomUser();
  const pad = { pad: true };
  const reg = await statelessCall(key, 'POST', '/v1/register', user, '', pad);
  assert.equal(reg.status, 200, reg.text);
  assert.equal(reg.openedLength % PAD_BLOCK_LEN, 0, 'register answer padded');
  const bad = await statelessCall(key, 'POST', '/v1/login',
    { login: user.email, password: user.password + 'x' }, '', pad);
  assert.equal(bad.status, 401, bad.text);
  assertError(bad.opened, 'invalid_credentials');
  assert.equal(bad.openedLength % PAD_BLOCK_LEN, 0, 'error answer padded');

  const secret = crypto.randomBytes(32);
  const login = await statelessCall(key, 'POST', '/v1/login',
    { login: user.email, password: user.password, client_secret: b64u(secret) },
    '', pad);
  assert.equal(login.status, 200, login.text);
  const me = await statelessCall(key, 'GET', '/v1/me', undefined,
                                 login.opened.access_token, pad);
  // A GET seals no body: its padding is spaces alone.
  assert.equal(me.status, 200, me.text);
  assert.equal(me.opened.username, user.username);
  assert.equal(me.openedLength % PAD_BLOCK_LEN, 0, 'stateless me padded');

  const session = new Session(login.opened.session, secret);
  const put = await session.call('PUT', '/v1/me/data/private',
                                 { fields: { city: 'Lima' } }, pad);
  assert.equal(put.status, 200, put.text);
  const got = await session.call('GET', '/v1/me/data/private', undefined, pad);
  assert.equal(got.status, 200, got.text);
  assert.equal(got.opened.fields.city, 'Lima');
  assert.equal(got.openedLength % PAD_BLOCK_LEN, 0, 'stateful answer padded');
});
