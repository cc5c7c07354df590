import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SharedReads, TenantReadCache } from '../../src/store/tenant-cache';
import type { TenantDoc } from '../../src/store/tenants';

const doc = (id: string, apiKeyHash = `h-${id}`, settingsVersion = 1): TenantDoc =>
  ({ _id: id, apiKeyHash, settingsVersion }) as unknown as TenantDoc;

function clock() {
  let t = 1_000;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('a tenant read is answered from memory for the time to live, then read again', () => {
  const c = clock();
  const cache = new TenantReadCache<TenantDoc>(1000, 100, c.now);
  cache.put(cache.generation, doc('a'));
  assert.equal(cache.tenant('a')?._id, 'a');
  c.advance(999);
  assert.equal(cache.tenant('a')?._id, 'a');
  c.advance(1);
  assert.equal(cache.tenant('a'), undefined, 'expired');
});

test('a key is answered only while it is still the tenant’s current key', () => {
  const c = clock();
  const cache = new TenantReadCache<TenantDoc>(1000, 100, c.now);
  cache.put(cache.generation, doc('a', 'old'), 'old');
  assert.equal(cache.tenantOfKey('old')?._id, 'a');
  assert.equal(cache.tenantOfKey('guess'), undefined, 'an unknown key is never answered');
  // Another read of the tenant (by id) finds it rotated: the old key entry no longer opens it.
  cache.put(cache.generation, doc('a', 'new'));
  assert.equal(cache.tenantOfKey('old'), undefined);
  c.advance(1000);
  assert.equal(cache.tenantOfKey('new'), undefined, 'never put by key, and expired');
});

test('a write clears it, and a read that began before the write is not kept', () => {
  const cache = new TenantReadCache<TenantDoc>(1000);
  cache.put(cache.generation, doc('a'), 'h-a');
  const before = cache.generation; // a read begins …
  cache.clear(); // … a write of this process finishes meanwhile …
  cache.put(before, doc('a'), 'h-a'); // … and the read's (possibly old) answer arrives.
  assert.equal(cache.tenant('a'), undefined);
  assert.equal(cache.tenantOfKey('h-a'), undefined);
  cache.put(cache.generation, doc('a', 'h-a', 2), 'h-a');
  assert.equal(cache.tenant('a')?.settingsVersion, 2);
});

test('off at 0, and bounded in size', () => {
  const off = new TenantReadCache<TenantDoc>(0);
  off.put(off.generation, doc('a'), 'h-a');
  assert.equal(off.tenant('a'), undefined);
  assert.equal(off.tenantOfKey('h-a'), undefined);
  const small = new TenantReadCache<TenantDoc>(60_000, 3);
  for (const id of ['a', 'b', 'c', 'd']) small.put(small.generation, doc(id), `h-${id}`);
  assert.equal(small.tenant('a'), undefined, 'the oldest went');
  assert.deepEqual(
    ['b', 'c', 'd'].map((id) => small.tenantOfKey(`h-${id}`)?._id),
    ['b', 'c', 'd'],
  );
});

test('concurrent misses share one read; a caller after a write (new generation) starts its own; a failed read is not kept', async () => {
  const reads = new SharedReads<string>();
  let loads = 0;
  const release: Array<(v: string) => void> = [];
  const load = () =>
    new Promise<string>((resolve) => {
      loads++;
      release.push(resolve);
    });
  const a = reads.run('t1', 0, load);
  const b = reads.run('t1', 0, load);
  const other = reads.run('t2', 0, load);
  const afterWrite = reads.run('t1', 1, load);
  assert.equal(loads, 3);
  release[0]!('first');
  release[1]!('other');
  release[2]!('after write');
  assert.deepEqual(await Promise.all([a, b, other, afterWrite]), ['first', 'first', 'other', 'after write']);
  // Done: the next miss reads again.
  const c = reads.run('t1', 1, load);
  assert.equal(loads, 4);
  release[3]!('again');
  assert.equal(await c, 'again');
  const failing = reads.run('t3', 0, () => Promise.reject(new Error('store down')));
  const joined = reads.run('t3', 0, load);
  await assert.rejects(failing, /store down/);
  await assert.rejects(joined, /store down/);
  const retried = reads.run('t3', 0, () => Promise.resolve('up'));
  assert.equal(await retried, 'up');
});
