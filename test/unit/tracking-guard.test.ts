import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HitGuard, sourceOf } from '../../src/api/tracking/hit-guard';

test('a repeat of the same hit within the window is not recorded; after it, it is', () => {
  const g = new HitGuard({ ratePerSec: 0, burst: 1, repeatWindowMs: 1000 });
  assert.equal(
    g.admit('tok', '81.44.12.7', () => 'GET  Chrome', 0),
    'recorded',
  );
  assert.equal(
    g.admit('tok', '81.44.12.7', () => 'GET  Chrome', 999),
    'repeat',
  );
  // Another client, another token, another method or purpose: another hit.
  assert.equal(
    g.admit('tok', '81.44.12.8', () => 'GET  Chrome', 10),
    'recorded',
  );
  assert.equal(
    g.admit('tok2', '81.44.12.7', () => 'GET  Chrome', 10),
    'recorded',
  );
  assert.equal(
    g.admit('tok', '81.44.12.7', () => 'HEAD  Chrome', 10),
    'recorded',
  );
  assert.equal(
    g.admit('tok', '81.44.12.7', () => 'GET prefetch Chrome', 10),
    'recorded',
  );
  // The window starts at the first hit and is not stretched by repeats.
  assert.equal(
    g.admit('tok', '81.44.12.7', () => 'GET  Chrome', 1000),
    'recorded',
  );
  assert.equal(
    g.admit('tok', '81.44.12.7', () => 'GET  Chrome', 1500),
    'repeat',
  );
});

test('the per-IP bucket: a burst, then the sustained rate; IPv6 by /64, IPv4-mapped as IPv4', () => {
  const g = new HitGuard({ ratePerSec: 2, burst: 3, repeatWindowMs: 0 });
  const at = (ip: string, t: number) => g.admit('tok', ip, () => 'ua', t);
  assert.deepEqual(
    [0, 0, 0, 0].map(() => at('203.0.113.5', 0)),
    ['recorded', 'recorded', 'recorded', 'rate_limited'],
  );
  assert.equal(at('203.0.113.5', 499), 'rate_limited');
  assert.equal(at('203.0.113.5', 500), 'recorded'); // one token back after 500 ms at 2/s
  assert.equal(at('::ffff:203.0.113.5', 501), 'rate_limited', 'the same IPv4 address, mapped');
  assert.equal(at('203.0.113.6', 0), 'recorded', 'another address has its own bucket');
  for (let i = 0; i < 3; i++) assert.equal(at(`2001:db8:1:2::${i + 1}`, 0), 'recorded');
  assert.equal(at('2001:db8:1:2:ffff::9', 0), 'rate_limited', 'one /64 is one source');
  assert.equal(sourceOf('2001:db8:1:2:3:4:5:6'), sourceOf('2001:0db8:0001:0002::'));
});

test('both maps stay bounded', () => {
  const g = new HitGuard({ ratePerSec: 1, burst: 5, repeatWindowMs: 60_000, maxEntries: 100 });
  for (let i = 0; i < 1000; i++) g.admit(`tok${i}`, `10.0.${i >> 8}.${i & 255}`, () => 'ua', i);
  assert.ok(g.size.buckets <= 100, `buckets ${g.size.buckets}`);
  assert.ok(g.size.seen <= 101, `seen ${g.size.seen}`);
});
