import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Client } from '@temporalio/client';
import { reconcileScheduleId } from '../../src/temporal/handoffs/ids';
import { ensureReconcileSchedule, triggerReconcile } from '../../src/temporal/handoffs/reconciler';
import { sendRunState } from '../../src/temporal/handoffs/send-message';
import { makeTestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from '../support/stack';

/**
 * Messages whose send workflow never started: the API's Temporal client is made to fail every
 * workflow start (the worker's is real), so POST /v1/messages stores the message and answers 503.
 * The reconciler's Schedule then finds them: a message the API refused and nobody repeated ends
 * `failed` with that reason; a message whose request died between the insert and the start (the 503
 * was never marked) is started and reaches the SMTP server.
 */
let stack: Stack;
let peer: SmtpPeer;
let key: string;

/** Every workflow start of the API fails, as when Temporal is unreachable at that moment. */
function failingStarts(client: Client): Client {
  const workflow = new Proxy(client.workflow, {
    get(target, prop, receiver) {
      if (prop === 'start') return () => Promise.reject(new Error('Temporal unavailable (injected by the test)'));
      return Reflect.get(target, prop, receiver) as unknown;
    },
  });
  return new Proxy(client, { get: (target, prop, receiver) => (prop === 'workflow' ? workflow : Reflect.get(target, prop, receiver)) });
}

before(async () => {
  const pki = makeTestPki(['localhost']);
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  stack = await startStack({}, { apiTemporal: failingStarts });
  key = await createPeerTenant(stack, 'orphans', peer, pki.caCert);
});
after(async () => {
  await stack?.temporal.schedule
    .getHandle(reconcileScheduleId(stack.config.temporal.taskQueue))
    .delete()
    .catch(() => undefined);
  await Promise.all([stack?.stop(), peer?.stop()]);
});

test(
  'the reconciler starts accepted messages whose workflow never started and fails refused ones with their reason',
  { timeout: 180_000 },
  async () => {
    const post = (subject: string) =>
      api(stack, 'POST', '/v1/messages', {
        key,
        body: { from: 'support@acme.example', to: ['alice@customer.example'], subject, text: 'hello' },
      });
    const refused = await post('refused');
    const diedBeforeMarking = await post('orphan');
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(diedBeforeMarking.status, 503);
    const [refusedDoc] = await stack.messages.col.find({ subject: 'refused' }).toArray();
    const [orphanDoc] = await stack.messages.col.find({ subject: 'orphan' }).toArray();
    assert.ok(refusedDoc?.notAcceptedAt && orphanDoc);
    // The request that inserted this one died before it could record the refusal.
    await stack.messages.col.updateOne({ _id: orphanDoc._id }, { $unset: { notAcceptedAt: 1 }, $set: { reason: null } });
    for (const d of [refusedDoc, orphanDoc]) assert.equal(await sendRunState(stack.temporal, d.workflowId), 'missing');

    const q = stack.config.temporal.taskQueue;
    await ensureReconcileSchedule(stack.temporal, q, 3_600_000, { graceMs: 0, notAcceptedGraceMs: 0 });
    await triggerReconcile(stack.temporal, q);

    const sent = await messageUntil(stack, key, orphanDoc._id, ['sent'], 60_000);
    assert.equal(sent.status, 'sent');
    // Started on the send queue, as the API would have.
    assert.equal((await stack.temporal.workflow.getHandle(orphanDoc.workflowId).describe()).taskQueue, stack.config.temporal.sendTaskQueue);
    await eventually(() => peer.messages().some((m) => m.messageId === orphanDoc.messageId), 30_000, 'the orphan at the SMTP server');
    const failed = await messageUntil(stack, key, refusedDoc._id, ['failed'], 60_000);
    assert.match(failed.reason, /never accepted: the API answered 503/);
    assert.equal(peer.messages().filter((m) => m.messageId === refusedDoc.messageId).length, 0, 'a refused message is never sent');
    const events = await stack.events.listForTenant('orphans', 100);
    assert.ok(events.some((e) => e.type === 'message.failed' && e.messageId === refusedDoc._id));

    // A second pass finds nothing more to do.
    await triggerReconcile(stack.temporal, q);
    await new Promise((r) => setTimeout(r, 2_000));
    assert.equal(peer.messages().filter((m) => m.messageId === orphanDoc.messageId).length, 1, 'sent once');
  },
);
