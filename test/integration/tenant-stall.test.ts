import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { MessageStatus } from '../../src/domain/message';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * One tenant's stalled server must not stall anyone else (docs/sending.md, "Tenant isolation").
 * Tenant A's server takes every message and never answers DATA; A queues twice as many messages as the
 * send worker has workflow-task slots. Tenant B then sends 200 messages to a healthy server. All of B's are
 * delivered while A is still stalled (none of A's delivered, some of A's attempts still open at A's
 * server), A never has more attempts in flight on the worker than its connection limit, and a control
 * workflow (a verify) answers meanwhile.
 */
const A_CONNECTIONS = 2;
const B_MESSAGES = 200;

let stack: Stack;
let stalled: SmtpPeer;
let healthy: SmtpPeer;
let keyA: string;
let keyB: string;

before(async () => {
  const pki = makeTestPki(['localhost']);
  const base = { implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } };
  [stalled, healthy] = await Promise.all([SmtpPeer.start({ ...base, stallData: true }), SmtpPeer.start(base)]);
  // The production defaults: 40 send workflow-task slots, 20 of them for local SMTP attempts.
  stack = await startStack();
  keyA = await createPeerTenant(stack, 'stalled-a', stalled, pki.caCert, { limits: { maxConnections: A_CONNECTIONS } });
  keyB = await createPeerTenant(stack, 'healthy-b', healthy, pki.caCert, { limits: { maxConnections: A_CONNECTIONS } });
});
after(async () => {
  // The stalled server first: its open transactions then fail at once instead of holding the worker's shutdown.
  await stalled?.stop();
  await Promise.all([stack?.stop(), healthy?.stop()]);
});

const post = async (key: string, subject: string): Promise<string> => {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'support@acme.example', to: ['alice@customer.example'], subject, text: 'hello' },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.id as string;
};

const count = (tenantId: string, status: MessageStatus) => stack.messages.col.countDocuments({ tenantId, status });

test('a tenant whose server never answers DATA stalls neither other tenants nor control workflows', { timeout: 600_000 }, async () => {
  const gate = stack.workers!.gate;
  const A_MESSAGES = 2 * stack.config.worker.send.workflowTaskSlots;
  const aIds: string[] = [];
  for (let i = 0; i < A_MESSAGES; i += 10) {
    aIds.push(...(await Promise.all(Array.from({ length: Math.min(10, A_MESSAGES - i) }, (_, j) => post(keyA, `a-${i + j}`)))));
  }
  await eventually(
    () => stalled.events.filter((e) => e.type === 'stalled').length >= A_CONNECTIONS,
    120_000,
    "A's server holding its connections' messages",
  );

  // B sends at an ordinary pace: ten requests at a time.
  const bIds: string[] = [];
  for (let i = 0; i < B_MESSAGES; i += 10) {
    bIds.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => post(keyB, `b-${i + j}`)))));
  }
  // A control workflow (verify, on the control queue) answers while A is stalled.
  const verified = await api(stack, 'POST', '/v1/tenants/healthy-b/verify', { key: stack.adminKey });
  assert.equal(verified.status, 200, JSON.stringify(verified.body));
  assert.equal(verified.body.ok, true, JSON.stringify(verified.body));

  await eventually(
    async () => {
      const sent = await count('healthy-b', 'sent');
      if (sent === B_MESSAGES) return true;
      // What the failure message shows: how far B got, and where the rest are.
      const byStatus = await stack.messages.col
        .aggregate([{ $match: { tenantId: 'healthy-b' } }, { $group: { _id: '$status', n: { $sum: 1 } } }])
        .toArray();
      throw new Error(`B: ${JSON.stringify(byStatus)}, ${healthy.messages().length} at B's server`);
    },
    300_000,
    `all ${B_MESSAGES} of B's messages sent`,
  );
  const delivered = new Set(healthy.messages().map((m) => m.messageId));
  assert.equal(delivered.size, B_MESSAGES, "B's server received each of B's messages");

  // A is still stalled: nothing of A delivered, its attempts still open, never more than its connections.
  assert.equal(stalled.messages().length, 0);
  assert.equal(await count('stalled-a', 'sent'), 0);
  assert.ok(gate.inFlight('stalled-a') >= 1, 'A still has attempts in flight');
  assert.ok(gate.inFlight('stalled-a') <= A_CONNECTIONS, `A holds at most ${A_CONNECTIONS} attempts: ${gate.inFlight('stalled-a')}`);
  const locked = await Promise.all(aIds.map(async (id) => (await stack.messages.lockOf(id))?.state === 'sending'));
  assert.ok(locked.filter(Boolean).length >= 1, 'A has messages inside an SMTP transaction');
  const aWaiting = await stack.messages.col.countDocuments({ tenantId: 'stalled-a', status: { $in: ['queued', 'retrying', 'sending'] } });
  assert.equal(aWaiting, A_MESSAGES, 'every one of A’s messages is still on its way');
});
