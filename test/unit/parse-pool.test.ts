import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { problemFor } from '../../src/api/problem';
import { DependencyUnavailableError, ValidationError } from '../../src/errors';
import { fromRawMime } from '../../src/inbound/mime';
import { ParsePool } from '../../src/inbound/parse-pool';

/** The parse pool's limits: a stuck thread is terminated (400), a full queue is a 503, a dead thread is replaced. */
const STUCK = path.join(__dirname, '..', 'support', 'stuck-thread.js');

test('a job past its time limit fails with a 400 and its thread is replaced', async () => {
  const pool = new ParsePool({ threads: 1, queueMax: 5, timeoutMs: 300 }, STUCK);
  try {
    const stuck = pool.run({ op: 'spin' });
    const next = pool.run({ op: 'echo', value: 'after' });
    const err = await stuck.then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof ValidationError, String(err));
    assert.match(err.message, /could not be parsed within 300 ms/);
    assert.equal(problemFor(err).status, 400);
    // The job that waited behind it runs on a new thread.
    assert.equal(await next, 'after');
  } finally {
    await pool.close();
  }
});

test('beyond the queue a job is refused with a 503, and a dead thread fails only its own job', async () => {
  const pool = new ParsePool({ threads: 1, queueMax: 1, timeoutMs: 60_000 }, STUCK);
  const running = pool.run({ op: 'spin' });
  const waiting = pool.run({ op: 'echo', value: 1 });
  const refused = await pool.run({ op: 'echo', value: 2 }).then(
    () => null,
    (e: unknown) => e,
  );
  assert.ok(refused instanceof DependencyUnavailableError, String(refused));
  assert.equal(problemFor(refused).status, 503);
  const outcomes = Promise.allSettled([running, waiting]);
  await pool.close();
  for (const o of await outcomes) assert.match(o.status === 'rejected' ? String(o.reason) : 'fulfilled', /closed/);

  const crashing = new ParsePool({ threads: 1, queueMax: 5, timeoutMs: 60_000 }, STUCK);
  try {
    await assert.rejects(crashing.run({ op: 'crash' }), /thread exited \(code 3\)/);
    assert.equal(await crashing.run({ op: 'echo', value: 'again' }), 'again');
  } finally {
    await crashing.close();
  }
});

test('fromRawMime through the pool: Buffers and Dates come back as such, the raw bytes are the caller’s own', async () => {
  const raw = readFileSync(path.join(__dirname, '..', '..', '..', 'test', 'fixtures', 'mail', 'gmail-mailboxfull.eml'));
  const mail = await fromRawMime(raw, 'mime', { maxAttachmentBytes: 1024 * 1024, maxMimeParts: 100 });
  assert.equal(mail.raw, raw);
  assert.ok(mail.date instanceof Date);
  assert.ok(mail.parts.length > 0);
  for (const p of mail.parts) assert.ok(Buffer.isBuffer(p.content));
  await assert.rejects(fromRawMime(Buffer.from('not mail at all'), 'mime', { maxAttachmentBytes: 1, maxMimeParts: 10 }), ValidationError);
});
