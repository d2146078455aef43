#!/usr/bin/env python3
"""Recomputes the worked examples of docs/protocol.md from the layouts it
specifies, independently of the C code, and prints every intermediate value
in hex. Needs the Python `cryptography` package (Debian: python3-cryptography).

    python3 docs/protocol_example.py
"""
import base64
import hashlib
import hmac
import json
import struct

from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey, X25519PublicKey)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives import serialization


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def extract(salt, ikm):
    return hmac.new(salt or bytes(32), ikm, hashlib.sha256).digest()


def expand(prk, info, length):
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]),
                         hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def raw_public(private):
    return private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def show(name, value):
    if isinstance(value, bytes):
        value = value.hex()
    print(f"{name:28} {value}")


# ---- HPKE (RFC 9180) base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 --
KEM_ID, KDF_ID = 0x0020, 0x0001


def labeled_extract(suite_id, salt, label, ikm):
    return extract(salt, b"HPKE-v1" + suite_id + label + ikm)


def labeled_expand(suite_id, prk, label, info, length):
    labeled = struct.pack(">H", length) + b"HPKE-v1" + suite_id + label + info
    return expand(prk, labeled, length)


def hpke_setup_base_s(pk_r, sk_e, info, aead_id, nk):
    kem_suite = b"KEM" + struct.pack(">H", KEM_ID)
    enc = raw_public(sk_e)
    dh = sk_e.exchange(X25519PublicKey.from_public_bytes(pk_r))
    eae_prk = labeled_extract(kem_suite, b"", b"eae_prk", dh)
    shared = labeled_expand(kem_suite, eae_prk, b"shared_secret",
                            enc + pk_r, 32)
    suite = b"HPKE" + struct.pack(">HHH", KEM_ID, KDF_ID, aead_id)
    psk_id_hash = labeled_extract(suite, b"", b"psk_id_hash", b"")
    info_hash = labeled_extract(suite, b"", b"info_hash", info)
    context = b"\x00" + psk_id_hash + info_hash
    secret = labeled_extract(suite, shared, b"secret", b"")
    key = labeled_expand(suite, secret, b"key", context, nk)
    base_nonce = labeled_expand(suite, secret, b"base_nonce", context, 12)
    exporter = labeled_expand(suite, secret, b"exp", context, 32)
    return enc, dh, shared, key, base_nonce, exporter, suite


def stateless_example():
    print("== stateless request and response ==")
    sk_r = X25519PrivateKey.from_private_bytes(bytes([0x11]) * 32)
    sk_e = X25519PrivateKey.from_private_bytes(bytes([0x22]) * 32)
    pk_r = raw_public(sk_r)
    version, key_id, aead_id, nk = 1, 7, 0x0002, 32
    method, path = b"POST", b"/v1/login"
    ts_ms = 1764806400000
    token = b""
    body = b'{"login":"ana"}'

    info = (b"cerrojo stateless request v1" + b"\x00" +
            struct.pack(">BBHHH", version, key_id, KEM_ID, KDF_ID, aead_id))
    aad = (struct.pack(">H", len(method)) + method +
           struct.pack(">H", len(path)) + path)
    plaintext = struct.pack(">QH", ts_ms, len(token)) + token + body
    enc, dh, shared, key, base_nonce, exporter, suite = hpke_setup_base_s(
        pk_r, sk_e, info, aead_id, nk)
    ct = AESGCM(key).encrypt(base_nonce, plaintext, aad)
    envelope = json.dumps({"v": version, "kid": key_id, "kdf": KDF_ID,
                           "aead": aead_id, "enc": b64u(enc), "ct": b64u(ct)},
                          separators=(",", ":"))
    show("skR", bytes([0x11]) * 32)
    show("pkR", pk_r)
    show("skE", bytes([0x22]) * 32)
    show("enc (pkE)", enc)
    show("info", info)
    show("aad", aad)
    show("plaintext", plaintext)
    show("dh", dh)
    show("shared_secret", shared)
    show("key", key)
    show("base_nonce", base_nonce)
    show("exporter_secret", exporter)
    show("ct (ciphertext || tag)", ct)
    show("request envelope", envelope)

    # Response: RFC 9458 4.4 with cerrojo's export label.
    secret = labeled_expand(suite, exporter, b"sec",
                            b"cerrojo stateless response v1", max(12, nk))
    response_nonce = bytes([0x33]) * max(12, nk)
    salt = enc + response_nonce
    prk = extract(salt, secret)
    aead_key = expand(prk, b"key", nk)
    aead_nonce = expand(prk, b"nonce", 12)
    response_body = b'{"ok":true}'
    response_ct = AESGCM(aead_key).encrypt(aead_nonce, response_body, b"")
    response = json.dumps({"v": 1, "nonce": b64u(response_nonce),
                           "ct": b64u(response_ct)}, separators=(",", ":"))
    show("response secret", secret)
    show("response_nonce", response_nonce)
    show("salt", salt)
    show("prk", prk)
    show("aead_key", aead_key)
    show("aead_nonce", aead_nonce)
    show("response body", response_body)
    show("response ct", response_ct)
    show("response envelope", response)
    show("Cerrojo-Seal (GET form)", b64u(envelope.encode()))


def stateful_example():
    print("== stateful request and response ==")
    sid = b"AAECAwQFBgcICQoLDA0ODw"
    client_secret = bytes([0x44]) * 32
    created_ms, epoch_len_ms = 1764806400000, 900000
    now_ms = created_ms + 2 * epoch_len_ms + 1234
    epoch = (now_ms - created_ms) // epoch_len_ms
    seq = 5
    method, path = b"GET", b"/v1/me"
    plaintext = struct.pack(">QH", now_ms, 0)

    key = expand(extract(sid, client_secret), b"cerrojo epoch key v1", 32)
    show("session id (ASCII)", sid)
    show("client secret", client_secret)
    show("epoch 0 key", key)
    for n in range(1, epoch + 1):
        key = expand(key, b"cerrojo epoch ratchet v1", 32)
        show(f"epoch {n} key", key)
    c2s = expand(key, b"cerrojo client-to-server key v1", 32)
    s2c = expand(key, b"cerrojo server-to-client key v1", 32)
    nonce = struct.pack(">IQ", epoch, seq)
    aad = (struct.pack(">BH", 1, len(sid)) + sid +
           struct.pack(">IQ", epoch, seq) +
           struct.pack(">H", len(method)) + method +
           struct.pack(">H", len(path)) + path)
    ct = AESGCM(c2s).encrypt(nonce, plaintext, aad)
    envelope = json.dumps({"v": 1, "epoch": epoch, "seq": seq,
                           "ct": b64u(ct)}, separators=(",", ":"))
    show("now_ms", str(now_ms))
    show("epoch", str(epoch))
    show("c2s key", c2s)
    show("s2c key", s2c)
    show("nonce", nonce)
    show("aad", aad)
    show("plaintext", plaintext)
    show("ct (ciphertext || tag)", ct)
    show("request envelope", envelope)

    response_key = expand(s2c, b"cerrojo response key v1" +
                          struct.pack(">Q", seq), 32)
    response_nonce = bytes([0x55]) * 12
    response_aad = (struct.pack(">BH", 1, len(sid)) + sid +
                    struct.pack(">IQ", epoch, seq))
    response_body = b'{"user":"ana"}'
    response_ct = AESGCM(response_key).encrypt(response_nonce, response_body,
                                               response_aad)
    response = json.dumps({"v": 1, "nonce": b64u(response_nonce),
                           "ct": b64u(response_ct)}, separators=(",", ":"))
    show("response key", response_key)
    show("response nonce", response_nonce)
    show("response aad", response_aad)
    show("response body", response_body)
    show("response ct", response_ct)
    show("response envelope", response)


if __name__ == "__main__":
    stateless_example()
    print()
    stateful_example()
