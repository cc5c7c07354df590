import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { deliveryIdFor } from '../../src/store/webhook-deliveries';
import { eventually } from '../support/smtp-peer';
import { api, type Stack } from '../support/stack';
import type { WebhookReceiver } from '../support/webhook-receiver';
import { startWebhookStack, webhookTenant } from '../support/webhooks';

/**
 * The ends of a delivery: giving up after WEBHOOK_GIVE_UP_MS (here 2 s instead of 3 days) lets the
 * next event of the case go; 410 Gone disables the webhook. Real Temporal, store and receiver.
 */
let stack: Stack;
let receiver: WebhookReceiver;

before(async () => {
  ({ stack, receiver } = await startWebhookStack({
    WEBHOOK_RETRY_INITIAL_MS: '200',
    WEBHOOK_RETRY_MAX_MS: '500',
    WEBHOOK_GIVE_UP_MS: '2000',
    WEBHOOK_TIMEOUT_MS: '1000',
  }));
});
after(async () => {
  await Promise.all([stack?.stop(), receiver?.stop()]);
});

const tenant = (id: string) => webhookTenant(stack, receiver, id);

const delivery = async (key: string, eventId: string, states: string[]) =>
  eventually(
    async () => {
      const g = await api(stack, 'GET', `/v1/webhooks/deliveries/${deliveryIdFor(eventId)}`, { key });
      return states.includes(g.body?.state) ? g.body : undefined;
    },
    30_000,
    `${eventId} to be ${states.join('|')}`,
  );

test('a delivery that keeps failing is recorded failed after the give-up time, then the case moves on; redelivery sends it', async () => {
  const t = await tenant('wh-giveup');
  receiver.configure({ mode: 'ok', failTypes: ['message.failed'] });
  const failing = {
    id: 'message.failed:wh-giveup:1',
    tenantId: 'wh-giveup',
    type: 'message.failed' as const,
    caseId: 'k1',
    data: { n: 1 },
  };
  const next = { id: 'case.updated:wh-giveup:2', tenantId: 'wh-giveup', type: 'case.updated' as const, caseId: 'k1', data: { n: 2 } };
  await stack.events.append(failing);
  await stack.events.append(next);

  const failed = await delivery(t.key, failing.id, ['failed']);
  assert.match(failed.reason, /^HTTP 500; gave up after \d+ attempts/);
  assert.ok(failed.attemptCount >= 2);
  await delivery(t.key, next.id, ['delivered']);
  const reqs = receiver.to(t.path);
  const lastFailing = reqs.map((r) => r.webhookId).lastIndexOf(deliveryIdFor(failing.id));
  const firstNext = reqs.findIndex((r) => r.webhookId === deliveryIdFor(next.id));
  assert.ok(lastFailing < firstNext, 'the next event of the case waited for the failed one to be given up');

  receiver.configure({ failTypes: [] });
  assert.equal((await api(stack, 'POST', `/v1/webhooks/deliveries/${deliveryIdFor(failing.id)}/redeliver`, { key: t.key })).status, 202);
  const redelivered = await delivery(t.key, failing.id, ['delivered']);
  assert.equal(redelivered.redeliveries, 1);
  const failedList = await api(stack, 'GET', '/v1/webhooks/deliveries?state=failed', { key: t.key });
  assert.equal(failedList.body.items.length, 0);
});

test('410 Gone fails the delivery at once and disables the webhook; later events are not sent', async () => {
  const t = await tenant('wh-gone');
  receiver.configure({ mode: 'ok', failTypes: [], goneTypes: ['tenant.needs_reauth'] });
  const gone = { id: 'tenant.needs_reauth:wh-gone:1', tenantId: 'wh-gone', type: 'tenant.needs_reauth' as const, data: {} };
  await stack.events.append(gone);
  const d = await delivery(t.key, gone.id, ['failed']);
  assert.equal(d.attemptCount, 1, 'no retries after 410');
  assert.equal(d.reason, 'HTTP 410: the endpoint is gone; webhook disabled');
  const tenantView = await api(stack, 'GET', '/v1/tenants/wh-gone', { key: t.key });
  assert.equal(tenantView.body.webhook, null);

  const later = { id: 'case.updated:wh-gone:2', tenantId: 'wh-gone', type: 'case.updated' as const, caseId: 'x', data: {} };
  await stack.events.append(later);
  await eventually(async () => (await stack.events.undispatchedForTenant('wh-gone')).length === 0, 30_000, 'handover');
  assert.equal(receiver.to(t.path).filter((r) => r.webhookId === deliveryIdFor(later.id)).length, 0);
  assert.equal(
    (await api(stack, 'POST', `/v1/webhooks/deliveries/${deliveryIdFor(gone.id)}/redeliver`, { key: t.key })).status,
    409,
    'no URL to redeliver to',
  );
});
