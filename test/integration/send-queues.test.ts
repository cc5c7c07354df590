import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { startSendMessage } from '../../src/temporal/handoffs/send-message';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from '../support/stack';

/**
 * Send workflows run on the send task queue, everything else on the control queue (docs/sending.md,
 * "Tenant isolation"), and a send run started on the single queue before the split still finishes.
 */
let stack: Stack;
let peer: SmtpPeer;
let key: string;
let refuseStarts = false;

/** The API's workflow starts fail while `refuseStarts` is set, as when Temporal is unreachable. */
function switchableStarts(client: Client): Client {
  const workflow = new Proxy(client.workflow, {
    get(target, prop, receiver) {
      if (prop === 'start' && refuseStarts) return () => Promise.reject(new Error('Temporal unavailable (injected by the test)'));
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  return new Proxy(client, { get: (target, prop, receiver) => (prop === 'workflow' ? workflow : Reflect.get(target, prop, receiver)) });
}

before(async () => {
  const pki = makeTestPki(['localhost']);
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  stack = await startStack({}, { apiTemporal: switchableStarts });
  key = await createPeerTenant(stack, 'queues', peer, pki.caCert);
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

const post = (subject: string) =>
  api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'support@acme.example', to: ['alice@customer.example'], subject, text: 'hello' },
  });

test('the API starts a send on the send queue', async () => {
  assert.notEqual(stack.config.temporal.sendTaskQueue, stack.config.temporal.taskQueue);
  const r = await post('on the send queue');
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await messageUntil(stack, key, r.body.id, ['sent']);
  const doc = await stack.messages.get('queues', r.body.id);
  const d = await stack.temporal.workflow.getHandle(doc.workflowId).describe();
  assert.equal(d.taskQueue, stack.config.temporal.sendTaskQueue);
});

test('a send run on the control queue (started before the queues were split) still sends', async () => {
  refuseStarts = true;
  const r = await post('on the old queue');
  refuseStarts = false;
  assert.equal(r.status, 503, JSON.stringify(r.body));
  const doc = await eventually(() => stack.messages.col.findOne({ subject: 'on the old queue' }), 10_000, 'the stored message');
  await startSendMessage(stack.temporal, stack.config.temporal.taskQueue, {
    workflowId: doc.workflowId,
    input: {
      tenantId: doc.tenantId,
      id: doc._id,
      policy: stack.config.send.policy,
      permitMarginMs: stack.config.send.permitMarginMs,
      acceptedAt: doc.createdAt.getTime(),
    },
    status: doc.status,
    caseId: doc.caseId,
  });
  await messageUntil(stack, key, doc._id, ['sent']);
  const d = await stack.temporal.workflow.getHandle(doc.workflowId).describe();
  assert.equal(d.taskQueue, stack.config.temporal.taskQueue);
  assert.ok(peer.messages().some((m) => m.messageId === doc.messageId));
});
