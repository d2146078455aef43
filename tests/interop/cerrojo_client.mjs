// An independent client of cerrojo's sealed HTTP API, written from
// docs/protocol.md with standard libraries only. @hpke/core (RFC 9180)
// seals the stateless requests. Node's crypto (HKDF, AES-GCM) opens the
// RFC 9458 section 4.4 responses and runs the stateful mode, and jose
// checks the key-list JWS. It shares no code with the C implementation.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import {
  Aes128Gcm, Aes256Gcm, CipherSuite, HkdfSha256,
} from '@hpke/core';
import { Chacha20Poly1305 } from '@hpke/chacha20poly1305';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import * as jose from 'jose';

export const GATEWAY_URL = process.env.CJ_GATEWAY_URL;

// HPKE identifiers (RFC 9180 section 7).
const KEM_X25519 = 0x0020;
const KDF_HKDF_SHA256 = 0x0001;
export const AEAD = { AES128GCM: 0x0001, AES256GCM: 0x0002, CHACHA: 0x0003 };

// Per AEAD: the @hpke/core implementation, Nk, Nn and Node's cipher name.
const AEADS = {
  [AEAD.AES128GCM]: { impl: () => new Aes128Gcm(), nk: 16, nn: 12,
                      node: 'aes-128-gcm' },
  [AEAD.AES256GCM]: { impl: () => new Aes256Gcm(), nk: 32, nn: 12,
                      node: 'aes-256-gcm' },
  [AEAD.CHACHA]: { impl: () => new Chacha20Poly1305(), nk: 32, nn: 12,
                   node: 'chacha20-poly1305' },
};
const TAG_LEN = 16;

const REQUEST_LABEL = 'cerrojo stateless request v1';
const RESPONSE_LABEL = 'cerrojo stateless response v1';
const ENVELOPE_VERSION = 1;
const KEY_LIST_TYP = 'cerrojo-keys+jws';
const HTTP_TIMEOUT_MS = 15000;

export const b64u = (buf) => Buffer.from(buf).toString('base64url');
export function unb64u(text) {
  assert.match(text, /^[A-Za-z0-9_-]*$/, 'base64url without padding');
  return Buffer.from(text, 'base64url');
}

const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
const u32 = (n) => { const b = Buffer.alloc(4); b.writeUInt32BE(n); return b; };
const u64 = (n) => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; };
const lp = (s) => { const b = Buffer.from(s); return Buffer.concat([u16(b.length), b]); };

// RFC 5869 with SHA-256, as separate steps.
const hkdfExtract = (salt, ikm) =>
  crypto.createHmac('sha256', salt.length ? salt : Buffer.alloc(32)).update(ikm).digest();
// HKDF-Expand (RFC 5869 section 2.3); Node's hkdfSync always extracts
// first, so the expand step is written out.
function expandOnly(prk, info, len) {
  const out = [];
  let block = Buffer.alloc(0);
  for (let i = 1; Buffer.concat(out).length < len; i++) {
    block = crypto.createHmac('sha256', prk)
      .update(Buffer.concat([block, Buffer.from(info), Buffer.from([i])])).digest();
    out.push(block);
  }
  return Buffer.concat(out).subarray(0, len);
}

function aeadSeal(name, key, nonce, aad, plaintext) {
  const c = crypto.createCipheriv(name, key, nonce, { authTagLength: TAG_LEN });
  c.setAAD(aad, { plaintextLength: plaintext.length });
  return Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
}

function aeadOpen(name, key, nonce, aad, sealed) {
  assert.ok(sealed.length >= TAG_LEN, 'ciphertext shorter than a tag');
  const d = crypto.createDecipheriv(name, key, nonce, { authTagLength: TAG_LEN });
  d.setAAD(aad, { plaintextLength: sealed.length - TAG_LEN });
  d.setAuthTag(sealed.subarray(sealed.length - TAG_LEN));
  return Buffer.concat([d.update(sealed.subarray(0, sealed.length - TAG_LEN)),
                        d.final()]);
}

// Sealed plaintexts are padded to a multiple of this many bytes (the
// Padding section of docs/protocol.md).
export const PAD_BLOCK_LEN = 256;

// u64(ts_ms) || u16(token_len) || token || body (docs/protocol.md). With
// pad, spaces follow the body, even an empty one, until the length is a
// multiple of PAD_BLOCK_LEN; padding is the sender's choice, so both forms
// must open.
export function sealedPlaintext(body, token = '', tsMs = Date.now(),
                                pad = false) {
  const tok = Buffer.from(token, 'ascii');
  const pt = Buffer.concat([u64(tsMs), u16(tok.length), tok,
                            Buffer.from(body ?? '')]);
  if (!pad) return pt;
  const fill = (PAD_BLOCK_LEN - (pt.length % PAD_BLOCK_LEN)) % PAD_BLOCK_LEN;
  return Buffer.concat([pt, Buffer.alloc(fill, 0x20)]);
}

export async function http(method, path, { body, headers = {} } = {}) {
  const resp = await fetch(GATEWAY_URL + path, {
    method, body, headers, signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  const text = await resp.text();
  return { status: resp.status, headers: resp.headers, text,
           json: text && resp.headers.get('content-type')?.startsWith('application/')
             ? JSON.parse(text) : undefined };
}

// ---- the key list ----

// Fetches GET /v1/keys and checks its JWS with jose: EdDSA only, typ, the
// signer named in the payload, whose RFC 7638 thumbprint must be the
// fingerprint the server lists first (a client would pin it), and expiry.
// Returns { keys, signer, payload, raw }.
export async function fetchKeyList() {
  const r = await http('GET', '/v1/keys');
  assert.equal(r.status, 200, r.text);
  const raw = r.json;
  const unverified = jose.decodeJwt(raw.key_list_jws);
  const signer = unverified.signer;
  assert.equal(signer.kty, 'OKP');
  assert.equal(signer.crv, 'Ed25519');
  assert.equal(signer.d, undefined, 'no private member in the signer');
  const thumbprint = await jose.calculateJwkThumbprint(signer, 'sha256');
  assert.equal(thumbprint, raw.signer_fingerprints[0]);
  const key = await jose.importJWK(signer, 'EdDSA');
  const { payload, protectedHeader } = await jose.compactVerify(
    raw.key_list_jws, key, { algorithms: ['EdDSA'] });
  assert.equal(protectedHeader.typ, KEY_LIST_TYP);
  const list = JSON.parse(Buffer.from(payload).toString('utf8'));
  assert.ok(list.exp * 1000 > Date.now(), 'key list expired');
  assert.ok(list.iat <= list.exp);
  // The decoded list beside the JWS must say the same as the signed one.
  assert.deepEqual(list.keys, raw.keys);
  return { keys: list.keys, signer: thumbprint, payload: list, raw };
}

export function pickKey(keys, aeadId = AEAD.AES256GCM) {
  const key = keys.find((k) => k.state === 'active' && k.aead_id === aeadId);
  assert.ok(key, `no active key with AEAD ${aeadId}`);
  assert.equal(key.kem_id, KEM_X25519);
  assert.equal(key.kdf_id, KDF_HKDF_SHA256);
  return key;
}

// ---- stateless mode ----

// Seals one request to `key` as docs/protocol.md's stateless mode says.
// Returns { envelope (object), aad, context } where context opens the
// response.
export async function sealStateless(key, method, path, plaintext,
                                    label = REQUEST_LABEL) {
  const aead = AEADS[key.aead_id];
  const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(),
                                  kdf: new HkdfSha256(), aead: aead.impl() });
  const hdr = Buffer.concat([Buffer.from([ENVELOPE_VERSION, key.key_id]),
                             u16(key.kem_id), u16(key.kdf_id),
                             u16(key.aead_id)]);
  const info = Buffer.concat([Buffer.from(label), Buffer.from([0]), hdr]);
  const aad = Buffer.concat([lp(method), lp(path)]);
  const pkR = await suite.kem.importKey('raw', unb64u(key.public_key), true);
  const sender = await suite.createSenderContext({ recipientPublicKey: pkR, info });
  const ct = Buffer.from(await sender.seal(plaintext, aad));
  const enc = Buffer.from(sender.enc);
  const secret = Buffer.from(await sender.export(
    Buffer.from(RESPONSE_LABEL), Math.max(aead.nn, aead.nk)));
  const envelope = { v: ENVELOPE_VERSION, kid: key.key_id, kdf: key.kdf_id,
                     aead: key.aead_id, enc: b64u(enc), ct: b64u(ct) };
  return { envelope, info, aad, context: { aead, enc, secret } };
}

// Opens a stateless response envelope (RFC 9458 section 4.4 with
// cerrojo's export label).
export function openStatelessResponse(context, envelope) {
  const { aead, enc, secret } = context;
  assert.deepEqual(Object.keys(envelope).sort(), ['ct', 'nonce', 'v']);
  assert.equal(envelope.v, ENVELOPE_VERSION);
  const nonce = unb64u(envelope.nonce);
  assert.equal(nonce.length, Math.max(aead.nn, aead.nk));
  const { key, iv } = responseKeys(aead, enc, nonce, secret);
  return aeadOpen(aead.node, key, iv, Buffer.alloc(0), unb64u(envelope.ct));
}

// Derives the response AEAD key and nonce of RFC 9458 section 4.4 from the
// exported secret, enc and the response nonce.
export function responseKeys(aead, enc, nonce, secret) {
  const prk = hkdfExtract(Buffer.concat([enc, nonce]), secret);
  return { key: expandOnly(prk, 'key', aead.nk),
           iv: expandOnly(prk, 'nonce', aead.nn) };
}

// Returns the HPKE parameters and Node cipher name of an AEAD id.
export function aeadParams(aeadId) {
  assert.ok(AEADS[aeadId], `unknown AEAD id ${aeadId}`);
  return AEADS[aeadId];
}

export { aeadOpen, aeadSeal };

// Sends a stateless sealed request; returns the HTTP answer and, when the
// answer is a sealed envelope, its opened JSON in `opened` and the opened
// plaintext's length in `openedLength`. options.pad pads the request.
export async function statelessCall(key, method, path, body, token = '',
                                    options = {}) {
  const pt = sealedPlaintext(body === undefined ? '' : JSON.stringify(body),
                             token, Date.now(), options.pad);
  const sealed = await sealStateless(key, method, path, pt);
  const text = JSON.stringify(sealed.envelope);
  const opts = method === 'GET'
    ? { headers: { 'Cerrojo-Seal': b64u(Buffer.from(text)) } }
    : { body: text, headers: { 'Content-Type': 'application/json' } };
  const r = await http(method, path, opts);
  if (r.json && 'nonce' in r.json && 'ct' in r.json) {
    const opened = openStatelessResponse(sealed.context, r.json);
    r.openedLength = opened.length;
    r.opened = JSON.parse(opened.toString('utf8'));
  }
  return { ...r, sealed, sent: text };
}

// ---- stateful mode ----

export class Session {
  // info: the SessionInfo JSON from the handshake; secret: 32 bytes.
  constructor(info, secret) {
    this.sid = info.session_id;
    this.created = Number(info.created_at_ms);
    this.epochMs = info.epoch_seconds * 1000;
    this.offset = Number(info.server_time_ms) - Date.now();
    this.epoch0 = expandOnly(hkdfExtract(Buffer.from(this.sid, 'ascii'), secret),
                             'cerrojo epoch key v1', 32);
    this.seq = 0;
  }

  epochKey(n) {
    let k = this.epoch0;
    for (let i = 0; i < n; i++) k = expandOnly(k, 'cerrojo epoch ratchet v1', 32);
    return k;
  }

  prefix(epoch, seq) {
    return Buffer.concat([Buffer.from([ENVELOPE_VERSION]), lp(this.sid),
                          u32(epoch), u64(seq)]);
  }

  // The epoch the server's clock is in now, from the handshake's offset.
  currentEpoch() {
    return Math.floor((Date.now() + this.offset - this.created) / this.epochMs);
  }

  // Sends a sealed request; options.epoch overrides the current epoch and
  // options.pad pads the plaintext.
  async call(method, path, body, options = {}) {
    const now = Date.now() + this.offset;
    const epoch = options.epoch ?? Math.floor((now - this.created) / this.epochMs);
    const seq = ++this.seq;
    const ek = this.epochKey(epoch);
    const c2s = expandOnly(ek, 'cerrojo client-to-server key v1', 32);
    const s2c = expandOnly(ek, 'cerrojo server-to-client key v1', 32);
    const aad = Buffer.concat([this.prefix(epoch, seq), lp(method), lp(path)]);
    const pt = sealedPlaintext(body === undefined ? '' : JSON.stringify(body), '',
                               now, options.pad);
    const ct = aeadSeal('aes-256-gcm', c2s, Buffer.concat([u32(epoch), u64(seq)]), aad, pt);
    const text = JSON.stringify({ v: ENVELOPE_VERSION, epoch, seq, ct: b64u(ct) });
    const headers = { 'Cerrojo-Session': this.sid };
    const opts = method === 'GET'
      ? { headers: { ...headers, 'Cerrojo-Seal': b64u(Buffer.from(text)) } }
      : { body: text, headers: { ...headers, 'Content-Type': 'application/json' } };
    const r = await http(method, path, opts);
    r.sent = text;
    if (r.json && 'nonce' in r.json && 'ct' in r.json) {
      const respKey = expandOnly(s2c, Buffer.concat([
        Buffer.from('cerrojo response key v1'), u64(seq)]), 32);
      const opened = aeadOpen('aes-256-gcm', respKey, unb64u(r.json.nonce),
                              this.prefix(epoch, seq), unb64u(r.json.ct));
      r.openedLength = opened.length;
      r.opened = JSON.parse(opened.toString('utf8'));
    }
    return r;
  }
}

// ---- test data ----

const NAME_LETTERS = 'abcdefghjkmnpqrstuvwxyz';
export function randomUser() {
  let name = 'n';
  for (const b of crypto.randomBytes(12)) name += NAME_LETTERS[b % NAME_LETTERS.length];
  return { username: name, email: `${name}@example.com`,
           password: `Pw-${crypto.randomBytes(15).toString('base64url')}!9` };
}
