import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, test } from 'node:test';
import pino from 'pino';
import { HitBuffer, type PendingHit } from '../../src/api/tracking/hit-buffer';

/** The store is faked here (a function that fails on demand); the real writer is covered by the integration suite. */
const logger = pino({ level: 'silent' });
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});
const tmp = () => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'cartero-spool-test-'));
  dirs.push(d);
  return d;
};

let n = 0;
const hit = (): PendingHit => ({
  id: `h${++n}`,
  tenantId: 't',
  messageId: 'm_1',
  kind: 'open',
  recipient: 0,
  link: null,
  at: n,
  method: 'GET',
  userAgent: 'ua',
  ip: '1.2.3.4',
  purpose: null,
});

/** A fake store: records what was written; `down` makes every write fail. */
function fakeStore() {
  const written: string[] = [];
  const state = { down: false, calls: 0 };
  return {
    written,
    state,
    write: async (batch: PendingHit[]) => {
      state.calls++;
      if (state.down) throw new Error('store unavailable');
      written.push(...batch.map((h) => h.id));
    },
  };
}

describe('hit buffer', () => {
  test('batches by size: a full batch is written without waiting for the timer', async () => {
    const store = fakeStore();
    const b = new HitBuffer({ flushMs: 60_000, flushHits: 3, maxBuffered: 100, spoolDir: null, write: store.write, logger });
    const ids = [hit(), hit(), hit()].map((h) => (b.record(h), h.id));
    await b.flush();
    assert.deepEqual(store.written, ids);
    assert.equal(b.size, 0);
  });

  test('a store outage loses nothing: failed batches are retried in order once it is back', async () => {
    const store = fakeStore();
    const b = new HitBuffer({ flushMs: 1, flushHits: 2, maxBuffered: 100, spoolDir: null, write: store.write, logger, maxRetryDelayMs: 1 });
    store.state.down = true;
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const h = hit();
      ids.push(h.id);
      b.record(h);
    }
    await b.flush();
    assert.equal(store.written.length, 0);
    assert.equal(b.size, 5);
    assert.ok(b.stats.failedFlushes >= 1);
    store.state.down = false;
    await new Promise((r) => setTimeout(r, 5));
    await b.flush();
    assert.deepEqual(store.written, ids);
    assert.equal(b.stats.dropped, 0);
  });

  test('bounded memory: past maxBuffered the oldest half spills to disk and is replayed after recovery', async () => {
    const store = fakeStore();
    const dir = tmp();
    const b = new HitBuffer({ flushMs: 1, flushHits: 50, maxBuffered: 10, spoolDir: dir, write: store.write, logger, maxRetryDelayMs: 1 });
    store.state.down = true;
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) {
      const h = hit();
      ids.push(h.id);
      b.record(h);
    }
    assert.ok(b.size <= 10, `in memory: ${b.size}`);
    await b.close(); // store still down: the rest is spilled too
    assert.equal(b.stats.dropped, 0);
    assert.equal(b.stats.spilled, 25);
    assert.ok(readdirSync(dir).filter((f) => f.endsWith('.ndjson')).length >= 2);

    // A new process (a restart) on the same directory replays every spilled hit once the store is back.
    store.state.down = false;
    const b2 = new HitBuffer({ flushMs: 1, flushHits: 50, maxBuffered: 10, spoolDir: dir, write: store.write, logger });
    for (let i = 0; i < 10 && readdirSync(dir).length > 0; i++) await b2.flush();
    assert.deepEqual([...store.written].sort(), [...ids].sort());
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(b2.stats.replayed, 25);
  });

  test('a spool file cut short by a crash is replayed as far as it can be read, and never stops the buffer', async () => {
    const store = fakeStore();
    const dir = tmp();
    const good = [hit(), hit()];
    writeFileSync(path.join(dir, 'hits-1-crashed0.ndjson'), good.map((h) => JSON.stringify(h)).join('\n') + '\n{"id":"h-cut","tenan');
    const b = new HitBuffer({ flushMs: 1, flushHits: 50, maxBuffered: 10, spoolDir: dir, write: store.write, logger });
    await b.flush();
    assert.deepEqual(
      store.written,
      good.map((h) => h.id),
    );
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(b.stats.replayed, 2);
    // The buffer still works afterwards.
    const next = hit();
    b.record(next);
    await b.flush();
    assert.ok(store.written.includes(next.id));
    await b.close();
  });

  test('without a spool directory, overflow is dropped and counted (never silent)', async () => {
    const store = fakeStore();
    store.state.down = true;
    const b = new HitBuffer({ flushMs: 60_000, flushHits: 100, maxBuffered: 4, spoolDir: null, write: store.write, logger });
    for (let i = 0; i < 5; i++) b.record(hit());
    assert.equal(b.stats.dropped, 2);
    assert.equal(b.size, 3);
  });

  test('a write that never settles (a hung store) times out and the batch is retried', async () => {
    const written: string[] = [];
    let hang = true;
    const b = new HitBuffer({
      flushMs: 1,
      flushHits: 10,
      maxBuffered: 100,
      spoolDir: null,
      logger,
      maxRetryDelayMs: 1,
      writeTimeoutMs: 20,
      write: (batch) => (hang ? new Promise<void>(() => undefined) : Promise.resolve(void written.push(...batch.map((h) => h.id)))),
    });
    const h = hit();
    b.record(h);
    await b.flush();
    assert.equal(b.stats.failedFlushes, 1);
    assert.equal(b.size, 1);
    hang = false;
    await new Promise((r) => setTimeout(r, 5));
    await b.flush();
    assert.deepEqual(written, [h.id]);
  });

  test('hit ids are unique within a process and across buffers', () => {
    const a = new HitBuffer({ flushMs: 1000, flushHits: 1, maxBuffered: 1, spoolDir: null, write: async () => undefined, logger });
    const c = new HitBuffer({ flushMs: 1000, flushHits: 1, maxBuffered: 1, spoolDir: null, write: async () => undefined, logger });
    const ids = new Set([...Array.from({ length: 1000 }, () => a.nextId()), ...Array.from({ length: 1000 }, () => c.nextId())]);
    assert.equal(ids.size, 2000);
  });
});
