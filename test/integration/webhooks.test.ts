import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { EventRepository } from '../../src/store/events';
import { deliveryIdFor } from '../../src/store/webhook-deliveries';
import { Worker } from '@temporalio/worker';
import { dataConverter } from '../../src/temporal/connection';
import { startWebhookDelivery, webhookWorkflowId } from '../../src/temporal/handoffs/webhook-delivery';
import { workflowSource } from '../../src/worker';
import { eventually } from '../support/smtp-peer';
import { api, type Stack } from '../support/stack';
import type { WebhookReceiver } from '../support/webhook-receiver';
import { startWebhookStack, webhookTenant } from '../support/webhooks';

/**
 * Event webhooks end to end: events appended to the outbox → handover → the tenant's delivery
 * workflow on the real Temporal server → signed HTTP POSTs to a receiver in another process that
 * fails, times out, recovers. Backoff and timeouts are shortened through the production settings.
 */
let stack: Stack;
let receiver: WebhookReceiver;

before(async () => {
  ({ stack, receiver } = await startWebhookStack({
    WEBHOOK_RETRY_INITIAL_MS: '200',
    WEBHOOK_RETRY_MAX_MS: '1000',
    WEBHOOK_TIMEOUT_MS: '800',
    WEBHOOK_SWEEP_INTERVAL_MS: '500',
  }));
});
after(async () => {
  await Promise.all([stack?.stop(), receiver?.stop()]);
});

const tenant = (withWebhook = true) => webhookTenant(stack, receiver, `wh-${randomBytes(4).toString('hex')}`, withWebhook);

const caseEvent = (tenantId: string, caseId: string, seq: number) => ({
  id: `case.updated:${tenantId}:${caseId}:${seq}`,
  tenantId,
  type: 'case.updated' as const,
  caseId,
  data: { caseId, seq },
});

describe('event webhooks', () => {
  test('a receiver that fails, then times out, then recovers gets every event once, in order per case, signed', async () => {
    const t = await tenant();
    receiver.configure({ mode: 'fail' });
    const cases = ['c1', 'c2', 'c3'];
    const appended: string[] = [];
    for (let seq = 0; seq < 4; seq++) {
      for (const c of cases) {
        const e = caseEvent(t.id, c, seq);
        assert.equal(await stack.events.append(e), true);
        appended.push(e.id);
      }
    }
    for (const [i, m] of ['m_one', 'm_one', 'm_two'].entries()) {
      const id = `message.deferred:${m}:${i}`;
      await stack.events.append({ id, tenantId: t.id, type: 'message.deferred', messageId: m, data: { messageId: m, n: i } });
      appended.push(id);
    }
    await eventually(() => receiver.to(t.path).filter((r) => r.answered === 500).length >= 8, 30_000, '8 failed requests');
    receiver.configure({ mode: 'hang' });
    await eventually(() => receiver.to(t.path).filter((r) => r.answered === null).length >= 3, 30_000, '3 timed-out requests');
    receiver.configure({ mode: 'ok' });

    const expected = new Set(appended.map(deliveryIdFor));
    await eventually(
      () =>
        new Set(
          receiver
            .to(t.path)
            .filter((r) => r.answered === 204)
            .map((r) => r.webhookId),
        ).size === expected.size,
      60_000,
      'every event delivered',
    );
    const requests = receiver.to(t.path);
    assert.ok(
      requests.every((r) => r.validSignature),
      'every request carries a valid signature',
    );
    const delivered = requests.filter((r) => r.answered === 204);
    assert.equal(delivered.length, expected.size, 'each event accepted exactly once');
    assert.deepEqual(new Set(delivered.map((r) => r.webhookId)), expected);
    for (const c of cases) {
      const ofCase = requests.filter((r) => r.data.caseId === c).map((r) => r.data.seq as number);
      // Strictly in order: an event is not even attempted before the one before it got a 2xx.
      assert.deepEqual(
        [...ofCase].sort((a, b) => a - b),
        ofCase,
        `case ${c} attempted in order: ${ofCase.join(',')}`,
      );
      assert.deepEqual(
        delivered.filter((r) => r.data.caseId === c).map((r) => r.data.seq),
        [0, 1, 2, 3],
      );
    }
    const one = requests.filter((r) => r.data.messageId === 'm_one' && r.answered === 204).map((r) => r.data.n);
    assert.deepEqual(one, [0, 1], 'events of one message (no case) in order');
    const payload = delivered.find((r) => r.data.caseId === 'c2' && r.data.seq === 3)!;
    assert.equal(payload.type, 'case.updated');

    // The delivery log tells the same story, with every attempt (the receiver reports a request
    // before the worker has recorded its answer, hence the wait).
    const log = await eventually(
      async () => {
        const l = await api(stack, 'GET', '/v1/webhooks/deliveries?limit=200', { key: t.key });
        return l.status === 200 && l.body.items.every((d: { state: string }) => d.state === 'delivered') ? l : undefined;
      },
      30_000,
      'the log to show every delivery delivered',
    );
    assert.equal(log.body.items.length, expected.size);
    assert.equal(
      receiver.to(t.path).filter((r) => r.answered === 204).length,
      expected.size,
      'still exactly once after everything settled',
    );
    const attempts = log.body.items.flatMap((d: { attempts: Array<{ status: number | null; error: string | null }> }) => d.attempts);
    assert.ok(attempts.some((a: { status: number | null }) => a.status === 500));
    assert.ok(attempts.some((a: { error: string | null }) => a.error === 'no response within 800 ms'));
    assert.equal(attempts.filter((a: { status: number | null }) => a.status === 204).length, expected.size);
    const first = log.body.items.find((d: { eventId: string }) => d.eventId === appended[0]);
    assert.ok(first.attemptCount >= 2 && first.attempts[0].url === receiver.url(t.path) && first.attempts[0].durationMs >= 0);

    // Paginated, newest first, no overlap.
    const p1 = await api(stack, 'GET', '/v1/webhooks/deliveries?limit=5', { key: t.key });
    const p2 = await api(stack, 'GET', `/v1/webhooks/deliveries?limit=5&cursor=${p1.body.nextCursor}`, { key: t.key });
    assert.equal(p1.body.items.length, 5);
    assert.equal(p2.body.items.length, 5);
    const ids = [...p1.body.items, ...p2.body.items].map((d: { id: string }) => d.id);
    assert.equal(new Set(ids).size, 10);
  });

  test('continue-as-new mid-stream (retries waiting, events queued) loses and repeats nothing', async () => {
    const t = await tenant();
    receiver.configure({ mode: 'fail' });
    // Start the tenant's workflow ourselves with a tiny history limit; handovers signal this run.
    const first = await startWebhookDelivery(stack.temporal, stack.config.temporal.taskQueue, { tenantId: t.id, historyLimit: 60 });
    const appended: string[] = [];
    for (let seq = 0; seq < 6; seq++) {
      for (const c of ['a', 'b']) {
        const e = caseEvent(t.id, c, seq);
        await stack.events.append(e);
        appended.push(e.id);
      }
    }
    await eventually(() => receiver.to(t.path).filter((r) => r.answered === 500).length >= 6, 30_000, 'failures before recovery');
    receiver.configure({ mode: 'ok' });
    await eventually(
      () => receiver.to(t.path).filter((r) => r.answered === 204).length === appended.length,
      60_000,
      'every event delivered',
    );
    const delivered = receiver.to(t.path).filter((r) => r.answered === 204);
    assert.deepEqual(new Set(delivered.map((r) => r.webhookId)), new Set(appended.map(deliveryIdFor)), 'each exactly once');
    for (const c of ['a', 'b'])
      assert.deepEqual(
        delivered.filter((r) => r.data.caseId === c).map((r) => r.data.seq),
        [0, 1, 2, 3, 4, 5],
      );
    const history = await stack.temporal.workflow.getHandle(webhookWorkflowId(t.id), first.firstExecutionRunId).fetchHistory();
    const lastEvent = history.events?.at(-1);
    assert.ok(lastEvent?.workflowExecutionContinuedAsNewEventAttributes, 'the first run continued as new');
    // The recorded run replays against the current code without non-determinism.
    await Worker.runReplayHistory({ ...workflowSource(), dataConverter: dataConverter(stack.keyring) }, history, webhookWorkflowId(t.id));
  });

  test('manual redelivery sends a delivered event again with the same webhook-id; other tenants see 404', async () => {
    const t = await tenant();
    const other = await tenant();
    receiver.configure({ mode: 'ok' });
    const e = caseEvent(t.id, 'c9', 0);
    await stack.events.append(e);
    const id = deliveryIdFor(e.id);
    await eventually(
      async () => (await api(stack, 'GET', `/v1/webhooks/deliveries/${id}`, { key: t.key })).body?.state === 'delivered',
      30_000,
      'delivered',
    );
    assert.equal((await api(stack, 'POST', `/v1/webhooks/deliveries/${id}/redeliver`, { key: other.key })).status, 404);
    assert.equal((await api(stack, 'GET', `/v1/webhooks/deliveries/${id}`, { key: other.key })).status, 404);
    assert.equal((await api(stack, 'GET', '/v1/webhooks/deliveries/not-an-id', { key: t.key })).status, 400);

    const r = await api(stack, 'POST', `/v1/webhooks/deliveries/${id}/redeliver`, { key: t.key });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.state, 'pending');
    await eventually(
      () => receiver.to(t.path).filter((x) => x.webhookId === id && x.answered === 204).length === 2,
      30_000,
      'the redelivery',
    );
    const d = await eventually(async () => {
      const g = await api(stack, 'GET', `/v1/webhooks/deliveries/${id}`, { key: t.key });
      return g.body.state === 'delivered' ? g.body : undefined;
    });
    assert.equal(d.redeliveries, 1);
    assert.deepEqual(
      d.attempts.map((a: { round: number }) => a.round),
      [0, 1],
    );
    // The admin names the tenant; without it the request is incomplete.
    assert.equal((await api(stack, 'GET', '/v1/webhooks/deliveries', { key: stack.adminKey })).status, 400);
    assert.equal((await api(stack, 'GET', `/v1/webhooks/deliveries?tenantId=${t.id}`, { key: stack.adminKey })).body.items.length, 1);
  });

  test('a tenant without a webhook URL: events recorded, nothing sent', async () => {
    const t = await tenant(false);
    for (let seq = 0; seq < 3; seq++) await stack.events.append(caseEvent(t.id, 'c1', seq));
    // No handover marker is even written for a tenant without a webhook.
    assert.equal((await stack.events.undispatchedForTenant(t.id)).length, 0);
    assert.equal((await stack.events.listForTenant(t.id)).length, 3, 'the outbox keeps them');
    assert.equal((await api(stack, 'GET', '/v1/webhooks/deliveries', { key: t.key })).body.items.length, 0);
    assert.equal(receiver.to(t.path).length, 0);
    const test = await api(stack, 'POST', '/v1/webhooks/test', { key: t.key });
    assert.equal(test.status, 409);
  });

  test('events appended in a batch (tracking hits) are handed over and delivered like single ones', async () => {
    const t = await tenant();
    receiver.configure({ mode: 'ok' });
    const batch = [0, 1, 2].map((n) => ({
      id: `message.opened:m_batch:${n}`,
      tenantId: t.id,
      type: 'message.opened' as const,
      messageId: 'm_batch',
      data: { n },
    }));
    await stack.events.appendMany(batch);
    await stack.events.appendMany(batch); // a retried batch: nothing twice
    await eventually(
      () =>
        new Set(
          receiver
            .to(t.path)
            .filter((r) => r.answered === 204)
            .map((r) => r.webhookId),
        ).size === 3,
      30_000,
      'three batch events delivered',
    );
    assert.deepEqual(
      new Set(
        receiver
          .to(t.path)
          .filter((r) => r.answered === 204)
          .map((r) => r.webhookId),
      ),
      new Set(batch.map((e) => deliveryIdFor(e.id))),
    );
    assert.equal(receiver.to(t.path).filter((r) => r.answered === 204).length, 3);
  });

  test('an event whose handover never happened (producer without Temporal) is delivered by the sweeper', async () => {
    const t = await tenant();
    receiver.configure({ mode: 'ok' });
    // A repository with no listener installed: what an append looks like when Temporal was
    // unreachable or the process died right after writing.
    const bare = new EventRepository(stack.store.db);
    const e = caseEvent(t.id, 'swept', 0);
    await bare.append(e);
    assert.equal((await stack.events.undispatchedForTenant(t.id)).length, 1);
    await eventually(
      () => receiver.to(t.path).some((r) => r.webhookId === deliveryIdFor(e.id) && r.answered === 204),
      30_000,
      'swept event delivered',
    );
    await eventually(async () => (await stack.events.undispatchedForTenant(t.id)).length === 0, 30_000, 'marker removed');
  });

  test('POST /v1/webhooks/test sends a signed webhook.test event through the same path', async () => {
    const t = await tenant();
    receiver.configure({ mode: 'ok' });
    const r = await api(stack, 'POST', '/v1/webhooks/test', { key: t.key });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await eventually(
      () =>
        receiver
          .to(t.path)
          .some((x) => x.webhookId === r.body.deliveryId && x.answered === 204 && x.type === 'webhook.test' && x.validSignature),
      30_000,
      'test event',
    );
    const d = await eventually(async () => {
      const g = await api(stack, 'GET', `/v1/webhooks/deliveries/${r.body.deliveryId}`, { key: t.key });
      return g.body.state === 'delivered' ? g.body : undefined;
    });
    assert.equal(d.eventType, 'webhook.test');
  });
});
