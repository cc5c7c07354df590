import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { tenantHealthScheduleInterval, triggerTenantHealthCheck } from '../../src/temporal/handoffs/verify-connection';
import { makeTestPki, type TestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, messageUntil, type Stack } from '../support/stack';
import type { WebhookReceiver } from '../support/webhook-receiver';
import { startWebhookStack } from '../support/webhooks';

/**
 * Tenant health end to end: real sends through the worker to an SMTP server process that starts
 * refusing AUTH, the per-tenant schedule's verify on the real Temporal server, and `tenant.health`
 * webhooks signed and posted to a receiver in another process. Also the worker's /metrics.
 */
const HEALTH_INTERVAL_MS = 3_600_000;
let stack: Stack;
let receiver: WebhookReceiver;
let pki: TestPki;
let peer: SmtpPeer;

before(async () => {
  pki = makeTestPki(['localhost']);
  [{ stack, receiver }, peer] = await Promise.all([
    startWebhookStack({
      TENANT_HEALTH_INTERVAL_MS: String(HEALTH_INTERVAL_MS),
      WEBHOOK_RETRY_INITIAL_MS: '200',
      WEBHOOK_RETRY_MAX_MS: '1000',
      WEBHOOK_SWEEP_INTERVAL_MS: '500',
    }),
    // Every message authenticates again, so a changed password is noticed by the next send.
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' }, closeAfterMessage: true }),
  ]);
});
after(async () => {
  await Promise.all([stack?.stop(), receiver?.stop(), peer?.stop()]);
});

const secrets: Record<string, string> = {};

async function healthTenant(): Promise<{ id: string; key: string; path: string }> {
  const id = `health-${randomBytes(4).toString('hex')}`;
  const path = `/hooks/${id}`;
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: id,
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: peer.port, security: 'starttls', tls: { ca: pki.caCert } },
      auth: { type: 'password', user: 'u', password: 'p' },
      webhook: { url: receiver.url(path) },
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  secrets[path] = r.body.webhookSecret as string;
  receiver.configure({ secrets: { ...secrets } });
  return { id, key: r.body.apiKey, path };
}

async function send(key: string): Promise<string> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: {
      from: { address: 'support@acme.example', name: 'Acme Support' },
      to: ['alice@customer.example'],
      subject: 'Health',
      text: 'Hello',
    },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.id as string;
}

const tenantView = async (id: string) => (await api(stack, 'GET', `/v1/tenants/${id}`, { key: stack.adminKey })).body;
const healthEvents = (path: string) => receiver.to(path).filter((r) => r.type === 'tenant.health' && r.answered === 204);
/** Waits for the n-th delivered `tenant.health` webhook, then a moment more for any extra one. */
async function healthEventsAfter(path: string, n: number) {
  await eventually(() => healthEvents(path).length >= n, 30_000, `${n} tenant.health webhooks`);
  // Nothing else is in flight: a duplicate would have been handed over with the first.
  await new Promise((r) => setTimeout(r, 1500));
  return healthEvents(path);
}

describe('tenant health', () => {
  test('auth refused by the server: degraded with one event for several failing sends; recovered after the password is fixed', async () => {
    const t = await healthTenant();
    const first = await send(t.key);
    await messageUntil(stack, t.key, first, ['sent']);
    const healthy = await tenantView(t.id);
    assert.equal(healthy.health.status, 'healthy');
    assert.equal(healthy.health.reason, null);

    // The tenant's admin changed the mailbox password: the server refuses the stored one.
    await peer.configure({ users: { u: 'new-password' } });
    // The peer applies its configuration over IPC; let it land before the sends.
    await new Promise((r) => setTimeout(r, 200));
    const failing = await Promise.all([send(t.key), send(t.key), send(t.key)]);
    for (const id of failing) await messageUntil(stack, t.key, id, ['waiting_credentials']);
    const degraded = await tenantView(t.id);
    assert.equal(degraded.health.status, 'degraded', JSON.stringify(degraded.health));
    assert.match(degraded.health.reason, /authentication refused/);
    assert.ok(degraded.health.checkedAt);
    let events = await healthEventsAfter(t.path, 1);
    assert.equal(events.length, 1, JSON.stringify(events.map((e) => e.data)));
    assert.equal(events[0]!.data.status, 'degraded');
    assert.equal(events[0]!.data.source, 'send');
    assert.match(String(events[0]!.data.reason), /authentication refused/);
    assert.ok(events[0]!.validSignature);

    const patched = await api(stack, 'PATCH', `/v1/tenants/${t.id}`, {
      key: stack.adminKey,
      body: { auth: { type: 'password', user: 'u', password: 'new-password' } },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    for (const id of failing) await messageUntil(stack, t.key, id, ['sent']);
    const recovered = await tenantView(t.id);
    assert.equal(recovered.health.status, 'healthy');
    assert.equal(recovered.health.reason, null);
    assert.ok(Date.parse(recovered.health.since) > Date.parse(degraded.health.since));
    events = await healthEventsAfter(t.path, 2);
    assert.deepEqual(
      events.map((e) => e.data.status),
      ['degraded', 'healthy'],
    );
  });

  test('the schedule exists for a created tenant, its verify degrades and recovers the tenant, and deletion removes it', async () => {
    await peer.configure({ users: { u: 'p' } });
    const t = await healthTenant();
    assert.equal(await tenantHealthScheduleInterval(stack.temporal, stack.config.temporal.taskQueue, t.id), HEALTH_INTERVAL_MS);
    const before = await tenantView(t.id);
    assert.equal(before.health.checkedAt, null);

    await peer.configure({ users: { u: 'someone-else' } });
    await triggerTenantHealthCheck(stack.temporal, stack.config.temporal.taskQueue, t.id);
    const degraded = await eventually(async () => {
      const v = await tenantView(t.id);
      return v.health.status === 'degraded' ? v : undefined;
    });
    assert.match(degraded.health.reason, /verify failed at auth/);
    let events = await healthEventsAfter(t.path, 1);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.data.source, 'verify');

    // A second failing check changes nothing: no event, only checkedAt.
    const verifyAgain = await api(stack, 'POST', `/v1/tenants/${t.id}/verify`, { key: stack.adminKey });
    assert.equal(verifyAgain.body.ok, false);
    assert.equal((await tenantView(t.id)).health.since, degraded.health.since);

    await peer.configure({ users: { u: 'p' } });
    await triggerTenantHealthCheck(stack.temporal, stack.config.temporal.taskQueue, t.id);
    await eventually(async () => (await tenantView(t.id)).health.status === 'healthy');
    events = await healthEventsAfter(t.path, 2);
    assert.deepEqual(
      events.map((e) => [e.data.status, e.data.source]),
      [
        ['degraded', 'verify'],
        ['healthy', 'verify'],
      ],
    );

    const del = await api(stack, 'DELETE', `/v1/tenants/${t.id}`, { key: stack.adminKey });
    assert.equal(del.status, 202);
    await eventually(
      async () => (await tenantHealthScheduleInterval(stack.temporal, stack.config.temporal.taskQueue, t.id)) === null,
      30_000,
      'schedule removed',
    );
  });

  test('the worker /metrics shows the delivery, attempt, health and waiting series after a send; the API counts accepted messages', async () => {
    await peer.configure({ users: { u: 'p' } });
    const t = await healthTenant();
    await messageUntil(stack, t.key, await send(t.key), ['sent']);
    assert.ok(stack.workerMetricsUrl);
    const worker = await eventually(async () => {
      const text = await (await fetch(stack.workerMetricsUrl!)).text();
      // The store gauges refresh every second here; wait for one that saw tenants.
      return /cartero_tenants\{health="healthy"\} [1-9]/.test(text) ? text : undefined;
    });
    const value = (text: string, series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    assert.ok((value(worker, 'cartero_messages_sent_total{preset="custom"}') ?? 0) >= 1, worker);
    assert.ok((value(worker, 'cartero_send_attempts_total{class="accepted"}') ?? 0) >= 1);
    // The first test's refused attempts, and its two health changes.
    assert.ok((value(worker, 'cartero_send_attempts_total{class="auth"}') ?? 0) >= 1);
    assert.ok((value(worker, 'cartero_tenant_health_changes_total{preset="custom",status="degraded"}') ?? 0) >= 1);
    assert.notEqual(value(worker, 'cartero_oldest_waiting_message_age_seconds{status="queued"}'), undefined);
    assert.notEqual(value(worker, 'cartero_rate_limit_waiting_messages'), undefined);
    const apiMetrics = await (await fetch(`${stack.metricsUrl}/metrics`)).text();
    assert.ok((value(apiMetrics, 'cartero_messages_accepted_total{preset="custom"}') ?? 0) >= 1, apiMetrics.slice(0, 500));
  });
});
