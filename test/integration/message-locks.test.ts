import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { api, startStack, type Stack } from '../support/stack';

/**
 * The message lock against the real store, in the states a worker crash leaves behind (the
 * worker-crash suite provokes them only when the kill lands between two writes).
 */
let stack: Stack;
let key: string;

before(async () => {
  stack = await startStack({}, { worker: false });
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id: 'locks',
      name: 'locks',
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: 2525, security: 'starttls' },
      auth: { type: 'password', user: 'u', password: 'p' },
    },
  });
  assert.equal(r.status, 201);
  key = r.body.apiKey;
});
after(async () => {
  await stack?.stop();
});

async function newMessage(): Promise<string> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'a@acme.example', to: ['b@customer.example'], subject: 's', text: 'x' },
  });
  assert.equal(r.status, 202);
  return r.body.id;
}

const locks = () => stack.store.db.collection<{ _id: string; state: string; attempt?: number }>('message_locks');

test('a later attempt takes over the lock an earlier attempt left behind; the same attempt re-claims; an older one cannot', async () => {
  const id = await newMessage();
  assert.equal(await stack.messages.claimForSending(id, 1), true);
  // The worker died after recording attempt 1 and before releasing its lock.
  assert.equal(await stack.messages.claimForSending(id, 2), true);
  assert.deepEqual(await stack.messages.lockOf(id).then((l) => [l?.state, l?.attempt]), ['sending', 2]);
  assert.equal(await stack.messages.claimForSending(id, 2), true, 'a retry of attempt 2 re-claims');
  assert.equal(await stack.messages.claimForSending(id, 1), false, 'attempt 1 is over');
});

test('a cancelled message is never claimed, whatever the attempt number', async () => {
  const id = await newMessage();
  const cancelled = await stack.messages.cancel('locks', id);
  assert.equal(cancelled.status, 'cancelled');
  assert.equal(await stack.messages.claimForSending(id, 1), false);
  assert.equal(await stack.messages.claimForSending(id, 5), false);
});

test('finish after a crash between its lock and its status write completes the write, and never rewrites a terminal status', async () => {
  const id = await newMessage();
  await locks().insertOne({ _id: id, state: 'done', at: new Date() } as never);
  assert.equal((await stack.messages.get('locks', id)).status, 'queued');
  await stack.messages.finish(id, 'failed', 'gave up');
  const done = await stack.messages.get('locks', id);
  assert.equal(done.status, 'failed');
  assert.equal(done.reason, 'gave up');
  await stack.messages.finish(id, 'suppressed', 'another ending');
  assert.equal((await stack.messages.get('locks', id)).status, 'failed');
});

test("a bounce recorded while a later attempt is on the wire survives that attempt's write", async () => {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'a@acme.example', to: ['one@customer.example', 'two@customer.example'], subject: 's', text: 'x' },
  });
  assert.equal(r.status, 202);
  const id = r.body.id as string;
  const at = new Date();
  // Attempt 1: one@ accepted, two@ deferred.
  await stack.messages.recordAttempt(
    id,
    { n: 1, at, durationMs: 5, outcome: 'partial', reply: '451 try later', recipients: ['one@customer.example', 'two@customer.example'] },
    [
      { address: 'one@customer.example', kind: 'to', status: 'sent', reply: '250 ok' },
      { address: 'two@customer.example', kind: 'to', status: 'pending', reply: '451 try later' },
    ],
    'retrying',
    { lastReply: '451 try later' },
  );
  // Attempt 2 reads the message, then a DSN for one@ is recorded while it talks to the server.
  const seenByAttempt2 = await stack.messages.get('locks', id);
  const feedback = {
    kind: 'bounce' as const,
    reason: 'userunknown',
    status: '5.1.1',
    hard: true,
    diagnostic: '550 5.1.1 no such user',
    source: 'mime',
    at: new Date(),
  };
  await stack.messages.recordFeedback(id, [{ index: 0, status: 'bounced', feedback }], null);
  await stack.messages.recordAttempt(
    id,
    { n: 2, at: new Date(), durationMs: 5, outcome: 'ok', reply: '250 ok', recipients: ['two@customer.example'] },
    seenByAttempt2.recipients.map((x) => (x.address === 'two@customer.example' ? { ...x, status: 'sent' as const, reply: '250 ok' } : x)),
    'sent',
    { lastReply: '250 ok' },
  );
  const after = await stack.messages.get('locks', id);
  assert.deepEqual(
    after.recipients.map((x) => [x.address, x.status]),
    [
      ['one@customer.example', 'bounced'],
      ['two@customer.example', 'sent'],
    ],
  );
  assert.equal(after.recipients[0]?.feedback?.reason, 'userunknown');
  assert.deepEqual(
    after.attempts.map((a) => a.n),
    [1, 2],
  );
});
