import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { TrackingTokens, type TokenClaims, type TokenKeySource } from '../../src/domain/tracking/token';

const keys = (active: string, map: Record<string, Buffer>): TokenKeySource => ({ activeKeyId: active, key: (kid) => map[kid] });
const k1 = randomBytes(32);
const k2 = randomBytes(32);
const tokens = new TrackingTokens(keys('k1', { k1 }));

const click: TokenClaims = {
  kind: 'click',
  tenantId: 'acme',
  messageId: 'm_0abcdefghijklmnop',
  recipient: 0,
  link: 2,
  url: 'https://shop.example/p?id=7&x=%20y',
};
const open: TokenClaims = { kind: 'open', tenantId: 'acme', messageId: 'm_0abcdefghijklmnop', recipient: null };

/** Rebuilds a token's payload field by field so each one can be tampered with on its own. */
function fields(token: string): Buffer {
  return Buffer.from(token, 'base64url');
}
function reencode(b: Buffer): string {
  return b.toString('base64url');
}

describe('tracking tokens', () => {
  test('round-trip: claims come back exactly, URL-safe and compact', () => {
    const t = tokens.sign(click);
    assert.match(t, /^[\w-]+$/);
    assert.deepEqual(tokens.verify(t, 'click'), { ...click, keyId: 'k1' });
    const o = tokens.sign(open);
    assert.deepEqual(tokens.verify(o, 'open'), { ...open, keyId: 'k1' });
    assert.ok(o.length < 80, `open token is ${o.length} chars`);
  });

  test('a token of one kind is refused at another endpoint', () => {
    assert.equal(tokens.verify(tokens.sign(open), 'click'), null);
    assert.equal(tokens.verify(tokens.sign(click), 'open'), null);
    assert.equal(tokens.verify(tokens.sign({ ...open, kind: 'unsubscribe', recipient: 0 }), 'open'), null);
  });

  test('flipping any bit of any byte (version, kind, key id, tenant, message, recipient, link, URL, MAC) is refused', () => {
    const raw = fields(tokens.sign(click));
    let refused = 0;
    for (let i = 0; i < raw.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const b = Buffer.from(raw);
        b[i] = b[i]! ^ bit;
        assert.equal(tokens.verify(reencode(b), 'click'), null, `byte ${i} ^ ${bit} accepted`);
        refused++;
      }
    }
    assert.equal(refused, raw.length * 2);
  });

  test('each field replaced by a plausible value with the original MAC is refused', () => {
    const t = tokens.sign(click);
    const tampered: TokenClaims[] = [
      { ...click, tenantId: 'evil' },
      { ...click, messageId: 'm_0abcdefghijklmnoq' },
      { ...click, recipient: 1 },
      { ...click, recipient: null },
      { ...click, link: 3 },
      { ...click, url: 'https://evil.example/' },
    ];
    const mac = fields(t).subarray(-16);
    for (const c of tampered) {
      const forged = Buffer.from(fields(tokens.sign(c)));
      mac.copy(forged, forged.length - 16);
      assert.equal(tokens.verify(reencode(forged), 'click'), null, JSON.stringify(c));
    }
  });

  test('truncated, extended, garbage and non-canonical spellings are refused without throwing', () => {
    const t = tokens.sign(click);
    for (const bad of ['', 'x', '!!!!', t.slice(0, -1), t + 'A', t.slice(1), 'A'.repeat(5000), `${t}=`, t.replace(/.$/, '.')]) {
      assert.equal(tokens.verify(bad, 'click'), null, bad.slice(0, 20));
    }
    // Same bytes, different spelling: the last character's unused bits changed.
    const last = t.at(-1)!;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = [...alphabet]
      .map((c) => t.slice(0, -1) + c)
      .filter((s) => s !== t && Buffer.from(s, 'base64url').equals(Buffer.from(t, 'base64url')));
    assert.ok(sameBytes.length > 0 || t.length % 4 === 0, 'expected a non-canonical twin');
    for (const s of sameBytes) assert.equal(tokens.verify(s, 'click'), null, `non-canonical ${last}→${s.at(-1)}`);
  });

  test('forged with another key, or with a key id we do not have: refused', () => {
    const other = new TrackingTokens(keys('k1', { k1: randomBytes(32) }));
    assert.equal(tokens.verify(other.sign(click), 'click'), null);
    const unknown = new TrackingTokens(keys('k9', { k9: k1 }));
    assert.equal(tokens.verify(unknown.sign(click), 'click'), null);
  });

  test('rotation: tokens signed with the previous active key still verify while that key is configured', () => {
    const before = new TrackingTokens(keys('k1', { k1 })).sign(click);
    const rotated = new TrackingTokens(keys('k2', { k1, k2 }));
    assert.equal(rotated.verify(before, 'click')?.keyId, 'k1');
    assert.equal(rotated.verify(rotated.sign(click), 'click')?.keyId, 'k2');
    const retired = new TrackingTokens(keys('k2', { k2 }));
    assert.equal(retired.verify(before, 'click'), null);
  });

  test('the tracking key is derived, not the encryption key itself', () => {
    const t = fields(tokens.sign(open));
    const payload = t.subarray(0, -16);
    const withMaster = createHmac('sha256', k1).update('cartero/tracking-token/v1\0').update(payload).digest().subarray(0, 16);
    assert.notDeepEqual(withMaster, t.subarray(-16));
  });

  test('signing refuses what it cannot encode', () => {
    assert.throws(() => tokens.sign({ ...click, url: '' }));
    assert.throws(() => tokens.sign({ ...click, url: `https://x.example/${'a'.repeat(2100)}` }));
    assert.throws(() => tokens.sign({ ...open, recipient: 70_000 }));
  });
});
