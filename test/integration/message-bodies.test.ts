import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { EMBEDDED_BODY_MAX } from '../../src/store/messages';
import { startStack, type Stack } from '../support/stack';

/**
 * A message's MIME is stored in one of three places by size (in the message document, in
 * `message_bodies`, in GridFS); every attempt must read back exactly the bytes the API composed.
 */
let stack: Stack;

before(async () => {
  stack = await startStack({}, { worker: false });
});
after(async () => {
  await stack?.stop();
});

for (const [where, size, kind] of [
  ['in the message document', 2_000, 'mime'],
  ['at the embedded limit', EMBEDDED_BODY_MAX, 'mime'],
  ['in message_bodies', EMBEDDED_BODY_MAX + 1, 'inline'],
  ['in GridFS', 5 * 1024 * 1024, 'gridfsId'],
] as const) {
  test(`a ${size}-byte body ${where} reads back byte for byte, from the stored document`, async () => {
    const id = `m_body${randomBytes(8).toString('hex')}`;
    const mime = randomBytes(size);
    const ref = await stack.messages.storeBody(id, 'bodies', mime);
    assert.ok(kind in ref, `stored as ${Object.keys(ref).join(',')}`);
    // The worker reads the message from the database, not the object the API built.
    await stack.messages.col.insertOne({ _id: id, tenantId: 'bodies', body: ref } as never);
    const stored = await stack.messages.col.findOne({ _id: id });
    assert.ok(stored);
    const back = await stack.messages.loadBody(stored);
    assert.equal(back.length, size);
    assert.ok(back.equals(mime));
  });
}
