import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MongoBulkWriteError, MongoServerError, type BulkWriteResult, type Collection } from 'mongodb';
import { CoalescedInserts, CoalescedUpdates } from '../../src/store/coalesce';

type Doc = { _id: string; v?: number };

/** A collection that records each command and answers when the test says so. */
function fakeCollection() {
  const commands: Array<{ name: string; ids: string[] }> = [];
  const pending: Array<{ resolve: () => void; reject: (e: unknown) => void }> = [];
  const wait = () => new Promise<void>((resolve, reject) => pending.push({ resolve, reject }));
  const col = {
    insertOne: async (d: Doc) => {
      commands.push({ name: 'insertOne', ids: [d._id] });
      await wait();
    },
    insertMany: async (ds: Doc[]) => {
      commands.push({ name: 'insertMany', ids: ds.map((d) => d._id) });
      await wait();
    },
    updateOne: async (f: { _id: string }) => {
      commands.push({ name: 'updateOne', ids: [f._id] });
      await wait();
    },
    bulkWrite: async (ops: Array<{ updateOne: { filter: { _id: string } } }>) => {
      commands.push({ name: 'bulkWrite', ids: ops.map((o) => o.updateOne.filter._id) });
      await wait();
    },
  };
  /** Lets the oldest command finish (or fail with `err`) and the queue move on. */
  const answer = async (err?: unknown) => {
    const p = pending.shift();
    assert.ok(p, 'a command is in flight');
    if (err) p.reject(err);
    else p.resolve();
    await new Promise((r) => setImmediate(r));
  };
  return { col: col as unknown as Collection<Doc>, commands, answer, inFlight: () => pending.length };
}

/** The error the driver throws for an unordered bulk write that some writes failed (as the server reports them). */
const bulkError = (writeErrors: Array<{ index: number; code: number; errmsg: string }>) =>
  new MongoBulkWriteError(
    { message: 'bulk write failed', code: writeErrors[0]?.code ?? 1, writeErrors } as unknown as ConstructorParameters<
      typeof MongoBulkWriteError
    >[0],
    {} as BulkWriteResult,
  );

test('an idle store gets the write at once; writes issued meanwhile go out together in the next command', async () => {
  const f = fakeCollection();
  const inserts = new CoalescedInserts<Doc>(f.col, true);
  const first = inserts.insert({ _id: 'a' });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(f.commands, [{ name: 'insertMany', ids: ['a'] }]);
  const rest = ['b', 'c', 'd'].map((id) => inserts.insert({ _id: id }));
  await new Promise((r) => setImmediate(r));
  assert.equal(f.commands.length, 1, 'nothing else goes out while one is in flight');
  await f.answer();
  assert.equal(await first, 'inserted');
  assert.deepEqual(f.commands[1], { name: 'insertMany', ids: ['b', 'c', 'd'] });
  await f.answer();
  assert.deepEqual(await Promise.all(rest), ['inserted', 'inserted', 'inserted']);
  assert.equal(f.inFlight(), 0);
});

test('each write keeps its outcome: a duplicate, another refusal, a failed command', async () => {
  const f = fakeCollection();
  const inserts = new CoalescedInserts<Doc>(f.col, true);
  const block = inserts.insert({ _id: 'x' });
  const dup = inserts.insert({ _id: 'dup' });
  const refused = assert.rejects(
    inserts.insert({ _id: 'bad' }),
    (e: unknown) => e instanceof MongoServerError && e.code === 2 && /document refused/.test(e.message),
  );
  const ok = inserts.insert({ _id: 'ok' });
  await f.answer();
  await block;
  await f.answer(
    bulkError([
      { index: 0, code: 11000, errmsg: 'E11000 duplicate key' },
      { index: 1, code: 2, errmsg: 'document refused' },
    ]),
  );
  assert.equal(await dup, 'duplicate');
  await refused;
  assert.equal(await ok, 'inserted');
  // A command that fails as a whole (the connection dropped) fails every write it carried.
  const a = inserts.insert({ _id: 'p' });
  const b = assert.rejects(inserts.insert({ _id: 'q' }), /connection closed/);
  const c = assert.rejects(inserts.insert({ _id: 'r' }), /connection closed/);
  await f.answer();
  await a;
  await f.answer(new Error('connection closed'));
  await b;
  await c;
  // And the queue goes on after it.
  const d = inserts.insert({ _id: 's' });
  await f.answer();
  assert.equal(await d, 'inserted');
});

test("one caller's documents travel together; a batch never exceeds its bound", async () => {
  const f = fakeCollection();
  const inserts = new CoalescedInserts<Doc>(f.col, true, 3);
  const together = inserts.insertAll([{ _id: 'e1' }, { _id: 'e2' }]);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(f.commands[0], { name: 'insertMany', ids: ['e1', 'e2'] });
  const many = Array.from({ length: 5 }, (_, i) => inserts.insert({ _id: `m${i}` }));
  await f.answer();
  assert.deepEqual(await together, ['inserted', 'inserted']);
  assert.deepEqual(f.commands[1]?.ids, ['m0', 'm1', 'm2']);
  await f.answer();
  assert.deepEqual(f.commands[2]?.ids, ['m3', 'm4']);
  await f.answer();
  assert.deepEqual(await Promise.all(many), Array(5).fill('inserted'));
});

test('updates coalesce into one bulk write; a refused one fails alone', async () => {
  const f = fakeCollection();
  const updates = new CoalescedUpdates<Doc>(f.col, true);
  const first = updates.update({ filter: { _id: 'u0' }, update: { $set: { v: 1 } } });
  const u1 = updates.update({ filter: { _id: 'u1' }, update: { $set: { v: 1 } }, upsert: true });
  const u2 = assert.rejects(
    updates.update({ filter: { _id: 'u2' }, update: { $set: { v: 1 } }, upsert: true }),
    (e: unknown) => e instanceof MongoServerError && e.code === 11000,
  );
  await f.answer();
  await first;
  assert.deepEqual(f.commands[1], { name: 'bulkWrite', ids: ['u1', 'u2'] });
  await f.answer(bulkError([{ index: 1, code: 11000, errmsg: 'E11000 duplicate key' }]));
  await u1;
  await u2;
});

test('off: one command per write, with the same outcomes', async () => {
  const f = fakeCollection();
  const inserts = new CoalescedInserts<Doc>(f.col, false);
  const updates = new CoalescedUpdates<Doc>(f.col, false);
  const a = inserts.insert({ _id: 'a' });
  const b = inserts.insert({ _id: 'b' });
  const u = updates.update({ filter: { _id: 'a' }, update: { $set: { v: 2 } } });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(
    f.commands.map((c) => c.name),
    ['insertOne', 'insertOne', 'updateOne'],
  );
  await f.answer(new MongoServerError({ code: 11000, errmsg: 'E11000 duplicate key', message: 'E11000 duplicate key' }));
  await f.answer();
  await f.answer();
  assert.equal(await a, 'duplicate');
  assert.equal(await b, 'inserted');
  await u;
});
