// The Node client's building blocks against RFC 9458 Appendix A, read from
// the published vectors in $CERROJO_VECTORS (../shared/vectors by default):
// @hpke/core opens the RFC's encapsulated request and exports its secret,
// and the client's response derivation reproduces the RFC's response byte
// for byte. Since the same client interoperates with the gateway
// (sealed_http.test.mjs), the gateway's sealing is the RFC's with cerrojo's
// own labels. Needs no stack. Without the vectors it says loudly that it
// skipped them, as the repository's other vector tests do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Aes128Gcm, CipherSuite, HkdfSha256 } from '@hpke/core';
import { DhkemX25519HkdfSha256 } from '@hpke/dhkem-x25519';
import {
  AEAD, aeadOpen, aeadParams, aeadSeal, responseKeys,
} from './cerrojo_client.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const VECTORS = process.env.CERROJO_VECTORS ??
  path.resolve(HERE, '../../../shared/vectors');
const FILE = path.join(VECTORS, 'ohttp/rfc9458-appendix-a.json');
const MISSING = !existsSync(FILE) &&
  `${FILE} not found; set CERROJO_VECTORS to the published vectors`;
if (MISSING) console.log(`\n*** VECTOR TESTS SKIPPED: ${MISSING} ***\n`);
const v = MISSING ? {} : JSON.parse(readFileSync(FILE, 'utf8'));
const skip = { skip: MISSING };

const hex = (text) => Buffer.from(text, 'hex');
const u16 = (n) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };

test('vector uses the suite under test', skip, () => {
  assert.equal(v.kem_id, 0x0020);
  assert.equal(v.kdf_id, 0x0001);
  assert.equal(v.aead_id, AEAD.AES128GCM);
});

test('request info is label, zero, header', skip, () => {
  const hdr = Buffer.concat([Buffer.from([v.key_id]), u16(v.kem_id),
                             u16(v.kdf_id), u16(v.aead_id)]);
  assert.equal(hdr.toString('hex'), v.derived.hdr);
  const info = Buffer.concat([Buffer.from('message/bhttp request'),
                              Buffer.from([0]), hdr]);
  assert.equal(info.toString('hex'), v.info);
});

test('hpke opens the RFC request and exports its secret', skip, async () => {
  const suite = new CipherSuite({ kem: new DhkemX25519HkdfSha256(),
                                  kdf: new HkdfSha256(), aead: new Aes128Gcm() });
  const skR = await suite.kem.importKey('raw', hex(v.skR), false);
  const recipient = await suite.createRecipientContext({
    recipientKey: skR, enc: hex(v.derived.enc), info: hex(v.info) });
  const request = Buffer.from(await recipient.open(hex(v.derived.ct_request)));
  assert.equal(request.toString('hex'), v.request);

  const aead = aeadParams(v.aead_id);
  const secret = Buffer.from(await recipient.export(
    Buffer.from('message/bhttp response'), Math.max(aead.nn, aead.nk)));
  assert.equal(secret.toString('hex'), v.secret);
});

test('response derivation reproduces the RFC response', skip, () => {
  const aead = aeadParams(v.aead_id);
  const nonce = hex(v.derived.response_nonce);
  const enc = hex(v.derived.enc);
  assert.equal(Buffer.concat([enc, nonce]).toString('hex'), v.salt);
  const { key, iv } = responseKeys(aead, enc, nonce, hex(v.secret));
  assert.equal(key.toString('hex'), v.aead_key);
  assert.equal(iv.toString('hex'), v.aead_nonce);

  const sealed = aeadSeal(aead.node, key, iv, Buffer.alloc(0), hex(v.response));
  assert.equal(sealed.toString('hex'), v.derived.ct_response);
  assert.equal(Buffer.concat([nonce, sealed]).toString('hex'), v.enc_response);
  const opened = aeadOpen(aead.node, key, iv, Buffer.alloc(0), sealed);
  assert.equal(opened.toString('hex'), v.response);
});
