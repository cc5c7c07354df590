import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startStack, type Stack } from '../support/stack';

/**
 * What the store code assumes of the database, checked against the real one (the embedded FerretDB
 * carries a patch for it, docs/decisions.md): every single-document update is atomic, so `$inc`
 * counters and compare-and-set updates stay exact under concurrent writers, as on MongoDB.
 */
let stack: Stack;

before(async () => {
  stack = await startStack({}, { worker: false });
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
