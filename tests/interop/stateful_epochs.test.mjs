// The stateful key ratchet across epochs, between the Node client and
// cerrojo-session: with 2-second epochs the client derives later epoch
// keys on its own and the server must agree. An epoch beyond the grace
// period is rejected. Runs under interop_stack.py with
// CERROJO_SESSION_EPOCH_SECONDS=2 and CERROJO_SESSION_GRACE_SECONDS=1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Session, b64u, fetchKeyList, pickKey, randomUser, statelessCall,
} from './cerrojo_client.mjs';

const EPOCH_SECONDS = 2;
// Epochs to move past before checking: each one is a ratchet step.
const EPOCHS_AHEAD = 3;

test('session keys follow the epochs', async () => {
  const key = pickKey((await fetchKeyList()).keys);
  const user = randomUser();
  assert.equal((await statelessCall(key, 'POST', '/v1/register', user)).status, 200);
  const secret = crypto.randomBytes(32);
  const login = await statelessCall(key, 'POST', '/v1/login',
    { login: user.username, password: user.password, client_secret: b64u(secret) });
  assert.equal(login.status, 200, login.text);
  const session = new Session(login.opened.session, secret);
  assert.equal(login.opened.session.epoch_seconds, EPOCH_SECONDS,
               'the stack runs short epochs');

  const start = session.currentEpoch();
  const first = await session.call('GET', '/v1/me');
  assert.equal(first.status, 200, first.text);

  // Wait until the middle of an epoch EPOCHS_AHEAD later.
  while (session.currentEpoch() < start + EPOCHS_AHEAD) await sleep(100);
  await sleep(EPOCH_SECONDS * 500);
  const now = session.currentEpoch();
  const later = await session.call('GET', '/v1/me');
  assert.equal(later.status, 200, later.text);
  assert.equal(later.opened.username, user.username);

  const next = await session.call('GET', '/v1/me', undefined, { epoch: now + 1 });
  assert.equal(next.status, 200, `next epoch within the leeway: ${next.text}`);

  const stale = await session.call('GET', '/v1/me', undefined, { epoch: now - 2 });
  assert.equal(stale.status, 400, stale.text);
  assert.equal(stale.json.error.code, 'decryption_failed');
});
