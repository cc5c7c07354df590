import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { DefaultPayloadConverter } from '@temporalio/common';
import { DecryptionError, Keyring, hashApiKey } from '../../src/security/crypto';
import { EncryptionCodec } from '../../src/temporal/codec';

const k1 = randomBytes(32);
const k2 = randomBytes(32);

test('seal/open round-trips and the ciphertext does not contain the plaintext', () => {
  const ring = new Keyring(new Map([['k1', k1]]), 'k1');
  const sealed = ring.seal('hunter2-app-password', 'tenant:a:auth.password');
  assert.match(sealed, /^v1\.k1\./);
  assert.ok(!sealed.includes('hunter2'));
  assert.equal(ring.open(sealed, 'tenant:a:auth.password'), 'hunter2-app-password');
  // Fresh IV every time.
  assert.notEqual(ring.seal('x', 'a'), ring.seal('x', 'a'));
});

test('a value moved to another tenant or field does not decrypt (AAD binding)', () => {
  const ring = new Keyring(new Map([['k1', k1]]), 'k1');
  const sealed = ring.seal('secret', 'tenant:a:auth.password');
  assert.throws(() => ring.open(sealed, 'tenant:b:auth.password'), DecryptionError);
});

test('tampering is detected', () => {
  const ring = new Keyring(new Map([['k1', k1]]), 'k1');
  const parts = ring.seal('secret', 'x').split('.');
  const ct = Buffer.from(parts[4]!, 'base64url');
  ct[0]! ^= 1;
  parts[4] = ct.toString('base64url');
  assert.throws(() => ring.open(parts.join('.'), 'x'), DecryptionError);
});

test('rotation: new key encrypts, old ciphertexts still open, removed key fails clearly', () => {
  const old = new Keyring(new Map([['k1', k1]]), 'k1');
  const sealedOld = old.seal('secret', 'x');
  const rotated = new Keyring(
    new Map([
      ['k2', k2],
      ['k1', k1],
    ]),
    'k2',
  );
  assert.equal(rotated.open(sealedOld, 'x'), 'secret');
  assert.equal(Keyring.keyIdOf(rotated.seal('secret', 'x')), 'k2');
  const without = new Keyring(new Map([['k2', k2]]), 'k2');
  assert.throws(() => without.open(sealedOld, 'x'), /unknown encryption key id "k1"/);
});

test('API keys are stored as SHA-256, not in clear', () => {
  const h = hashApiKey('ck_abc');
  assert.match(h, /^[0-9a-f]{64}$/);
  assert.notEqual(h, 'ck_abc');
});

test('payload codec: encrypted payloads hide the data and decode back exactly', async () => {
  const ring = new Keyring(new Map([['k1', k1]]), 'k1');
  const codec = new EncryptionCodec(ring);
  const conv = new DefaultPayloadConverter();
  const original = conv.toPayload({ password: 'hunter2', n: 1 });
  const [enc] = await codec.encode([original]);
  assert.equal(Buffer.from(enc!.metadata!.encoding!).toString(), 'binary/encrypted');
  assert.equal(Buffer.from(enc!.metadata!['encryption-key-id']!).toString(), 'k1');
  assert.ok(!Buffer.from(enc!.data!).toString('latin1').includes('hunter2'));
  const [dec] = await codec.decode([enc!]);
  assert.deepEqual(conv.fromPayload(dec!), { password: 'hunter2', n: 1 });
  // Unencrypted payloads (older histories) pass through untouched.
  const [plain] = await codec.decode([original]);
  assert.deepEqual(conv.fromPayload(plain!), { password: 'hunter2', n: 1 });
});
