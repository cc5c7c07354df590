import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { CoalescedInserts, CoalescedUpdates } from '../../src/store/coalesce';
import { upsertRetrying } from '../../src/store/upsert';
import { startStack, type Stack } from '../support/stack';

/**
 * What the store code assumes of the database, checked against the real one (the embedded FerretDB
 * carries a patch for it, docs/decisions.md): every single-document update is atomic, so `$inc`
 * counters and compare-and-set updates stay exact under concurrent writers, as on MongoDB.
 */
let stack: Stack;

before(async () => {
  stack = await startStack({}, { worker: false, monitorCommands: true });
});
after(async () => {
  await stack?.stop();
});

test('50 concurrent $inc of one field add 50', async () => {
  const col = stack.store.db.collection<{ _id: string; n: number }>('atomicity_inc');
  await col.insertOne({ _id: 'x', n: 0 });
  await Promise.all(Array.from({ length: 50 }, () => col.updateOne({ _id: 'x' }, { $inc: { n: 1 } })));
  assert.equal((await col.findOne({ _id: 'x' }))?.n, 50);
});

test('a compare-and-set on a version is won by exactly one of the writers that read that version', async () => {
  const col = stack.store.db.collection<{ _id: string; v: number; by: number[] }>('atomicity_cas');
  await col.insertOne({ _id: 'x', v: 0, by: [] });
  for (let round = 0; round < 5; round++) {
    let wins = 0;
    const seen = await col.findOne({ _id: 'x' });
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const r = await col.updateOne({ _id: 'x', v: seen!.v }, { $set: { v: seen!.v + 1 }, $push: { by: i } });
        wins += r.modifiedCount;
      }),
    );
    assert.equal(wins, 1, `round ${round}`);
  }
  const end = await col.findOne({ _id: 'x' });
  assert.equal(end?.v, 5);
  assert.equal(end?.by.length, 5);
});

test('findOneAndUpdate with a condition hands a document to one caller only', async () => {
  const col = stack.store.db.collection<{ _id: string; owner: number | null }>('atomicity_claim');
  await col.insertOne({ _id: 'x', owner: null });
  const got = await Promise.all(
    Array.from({ length: 20 }, (_, i) => col.findOneAndUpdate({ _id: 'x', owner: null }, { $set: { owner: i } })),
  );
  assert.equal(got.filter((d) => d !== null).length, 1);
});

test('coalesced writes: 60 concurrent inserts (10 repeat an id) and 30 upserts keep each outcome, in fewer commands', async () => {
  const col = stack.store.db.collection<{ _id: string; n: number }>('atomicity_coalesce');
  const inserts = new CoalescedInserts(col, true);
  const updates = new CoalescedUpdates(col, true);
  let commands = 0;
  const count = (e: { command: Record<string, unknown> }) => {
    if (e.command.insert === 'atomicity_coalesce' || e.command.update === 'atomicity_coalesce') commands++;
  };
  stack.store.client.on('commandStarted', count);
  try {
    const ids = Array.from({ length: 60 }, (_, i) => `d${i < 50 ? i : i - 50}`);
    const outcomes = await Promise.all(ids.map((id, i) => inserts.insert({ _id: id, n: i })));
    assert.equal(outcomes.filter((o) => o === 'inserted').length, 50);
    assert.equal(outcomes.filter((o) => o === 'duplicate').length, 10);
    // Whichever of two writers of an id came first is the one stored, and it said `inserted`.
    for (let k = 0; k < 10; k++) {
      const stored = await col.findOne({ _id: `d${k}` });
      assert.equal(stored?.n, outcomes[k] === 'inserted' ? k : 50 + k);
    }
    await Promise.all(
      // As the callers do: an upsert that lost the race to create its document runs again.
      Array.from({ length: 30 }, (_, i) =>
        upsertRetrying(() => updates.update({ filter: { _id: `u${i % 15}` }, update: { $inc: { n: 1 } }, upsert: true })),
      ),
    );
    const upserted = await col.find({ _id: { $regex: '^u' } } as never).toArray();
    assert.equal(upserted.length, 15);
    assert.ok(
      upserted.every((d) => d.n === 2),
      JSON.stringify(upserted),
    );
  } finally {
    stack.store.client.off('commandStarted', count);
  }
  assert.ok(commands < 60, `${commands} commands for 90 writes`);
});
