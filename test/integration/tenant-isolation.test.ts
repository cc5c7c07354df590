import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { buildOpenApi } from '../../src/api/openapi';
import { bounceWatchWorkflowId } from '../../src/temporal/handoffs/bounce-mailbox-watch';
import { eventually } from '../support/smtp-peer';
import { api, type Stack } from '../support/stack';
import { startWebhookStack, webhookTenant } from '../support/webhooks';
import type { WebhookReceiver } from '../support/webhook-receiver';

/**
 * Tenant A's key against tenant B's resources, on every operation of the OpenAPI document: each
 * answers 404 (no existence oracle, nothing changed). Operations that are not about a tenant's
 * resources (public tracking links, inbound webhooks keyed by URL, ops endpoints, the admin-only
 * tenant creation) are listed below with the reason, so a new route cannot be forgotten.
 */
const NOT_TENANT_SCOPED: Record<string, string> = {
  'POST /v1/tenants': 'creates a tenant (admin key only: a tenant key gets 403, it names nobody)',
  'GET /v1/oauth/callback': 'authenticated by the signed consent state, not by a key; tested in oauth.test.ts',
  'POST /v1/inbound/{provider}/{inboundKey}': "authenticated by the tenant's inbound key and provider credentials, not an API key",
  'POST /v1/inbound/mailgun/{inboundKey}/mime': 'as above',
  'POST /codec/decode': 'the Web UI codec: no tenant data in the request; admin-only when CODEC_ENDPOINT_AUTH requires it',
  'POST /codec/encode': 'as above',
  'GET /healthz': 'liveness, says nothing',
  'GET /readyz': 'readiness, says nothing of tenants',
  'GET /openapi.json': 'the document',
  'GET /t/o/{token}': 'the signed token is the credential (tracking.test.ts)',
  'GET /t/c/{token}': 'as above',
  'GET /u/{token}': 'as above',
  'POST /u/{token}': 'as above',
};

let stack: Stack;
let receiver: WebhookReceiver;
const suffix = randomBytes(3).toString('hex');
let A: { id: string; key: string };
let B: { id: string; key: string; inboundKey: string };
const res: Record<string, string> = {};
const MIME_SECRET = 'ibs_isolation_secret_00001';

before(async () => {
  ({ stack, receiver } = await startWebhookStack({}));
  A = await webhookTenant(stack, receiver, `iso-a-${suffix}`);
  const b = await webhookTenant(stack, receiver, `iso-b-${suffix}`);
  const view = await api(stack, 'GET', `/v1/tenants/${b.id}`, { key: b.key });
  B = { ...b, inboundKey: view.body.inbound.key };
  const m = await api(stack, 'POST', '/v1/messages', {
    key: B.key,
    body: {
      from: 'support@acme.example',
      to: ['bob@customer.example'],
      subject: 'B only',
      text: 'for B',
      sendAt: new Date(Date.now() + 3_600_000).toISOString(),
    },
  });
  assert.equal(m.status, 202, JSON.stringify(m.body));
  res.message = m.body.id;
  res.case = m.body.caseId;
  assert.equal(
    (await api(stack, 'PUT', `/v1/tenants/${B.id}/inbound/mime`, { key: B.key, body: { bearerToken: MIME_SECRET } })).status,
    200,
  );
  const raw = [
    'From: carol@customer.example',
    'To: support@acme.example',
    'Subject: hello B',
    `Message-ID: <iso-${suffix}@customer.example>`,
    'Content-Type: multipart/mixed; boundary=b1',
    '',
    '--b1',
    'Content-Type: text/plain',
    '',
    'body',
    '--b1',
    'Content-Type: text/plain; name=a.txt',
    'Content-Disposition: attachment; filename=a.txt',
    '',
    'attachment',
    '--b1--',
    '',
  ].join('\r\n');
  const inbound = await fetch(`${stack.baseUrl}/v1/inbound/mime/${B.inboundKey}`, {
    method: 'POST',
    headers: { 'content-type': 'message/rfc822', authorization: `Bearer ${MIME_SECRET}` },
    body: raw,
  });
  assert.equal(inbound.status, 200, await inbound.clone().text());
  res.inbound = ((await inbound.json()) as { received: Array<{ id: string }> }).received[0]!.id;
  assert.equal(
    (await api(stack, 'POST', '/v1/suppressions', { key: B.key, body: { address: 'gone@customer.example', reason: 'test' } })).status,
    201,
  );
  const put = await api(stack, 'PUT', `/v1/tenants/${B.id}/bounce-mailbox`, {
    key: B.key,
    body: { host: '127.0.0.1', port: 9, security: 'tls', user: 'bounces', password: 'imap-password' },
  });
  assert.equal(put.status, 201, JSON.stringify(put.body));
  assert.equal((await api(stack, 'POST', '/v1/webhooks/test', { key: B.key })).status, 202);
  res.delivery = await eventually(
    async () => {
      const r = await api(stack, 'GET', '/v1/webhooks/deliveries', { key: B.key });
      return (r.body.items as Array<{ id: string }>)[0]?.id;
    },
    30_000,
    "B's test delivery",
  );
});
after(async () => {
  await stack?.temporal.workflow
    .getHandle(bounceWatchWorkflowId(B.id))
    .terminate('test over')
    .catch(() => undefined);
  await Promise.all([stack?.stop(), receiver?.stop()]);
});

/** B's value for each path parameter. */
function pathFor(template: string): string {
  const values: Record<string, string> = {
    '/v1/tenants/{id}': B.id,
    '/v1/messages/{id}': res.message!,
    '/v1/cases/{id}': res.case!,
    '/v1/inbound-messages/{id}': res.inbound!,
    '/v1/webhooks/deliveries/{id}': res.delivery!,
  };
  let out = template;
  for (const [prefix, v] of Object.entries(values)) if (template.startsWith(prefix)) out = out.replace('{id}', v);
  return out
    .replace('{provider}', 'mime')
    .replace('{index}', '0')
    .replace('{address}', encodeURIComponent('gone@customer.example'))
    .replace('{inboundKey}', B.inboundKey);
}

/** A body the operation would accept from B itself: A must be refused for who it is, not for what it sent. */
const BODIES: Record<string, unknown> = {
  'PATCH /v1/tenants/{id}': { name: 'taken over' },
  'PUT /v1/tenants/{id}/inbound/{provider}': { bearerToken: 'ibs_attacker_secret_000001' },
  'PUT /v1/tenants/{id}/bounce-mailbox': { host: '127.0.0.1', port: 9, security: 'tls', user: 'x', password: 'attacker' },
  'POST /v1/messages': { from: 'support@acme.example', to: ['x@customer.example'], subject: 's', text: 't' },
  'POST /v1/suppressions': { address: 'victim@customer.example', reason: 'attack' },
};

describe('tenant A key on tenant B resources, every operation', { timeout: 300_000 }, () => {
  test('each tenant-scoped operation answers 404 and changes nothing of B', async () => {
    const doc = buildOpenApi('test') as { paths: Record<string, Record<string, unknown>> };
    const seen: string[] = [];
    const answers: string[] = [];
    for (const [template, item] of Object.entries(doc.paths)) {
      for (const method of ['get', 'post', 'put', 'patch', 'delete']) {
        if (!item[method]) continue;
        const op = `${method.toUpperCase()} ${template}`;
        seen.push(op);
        if (NOT_TENANT_SCOPED[op]) continue;
        const query = `tenantId=${B.id}`;
        const body = BODIES[op] ?? (method === 'get' || method === 'delete' ? undefined : {});
        const withTenant =
          body && typeof body === 'object' && ['POST /v1/messages', 'POST /v1/suppressions', 'POST /v1/webhooks/test'].includes(op)
            ? { ...body, tenantId: B.id }
            : body;
        const r = await api(stack, method.toUpperCase(), `${pathFor(template)}?${query}`, {
          key: A.key,
          ...(withTenant !== undefined ? { body: withTenant } : {}),
        });
        answers.push(`${op} → ${r.status}`);
      }
    }
    assert.deepEqual(
      answers.filter((a) => !a.endsWith('→ 404')),
      [],
      `every tenant-scoped operation must answer 404:\n${answers.join('\n')}`,
    );
    assert.deepEqual(
      Object.keys(NOT_TENANT_SCOPED).filter((op) => !seen.includes(op)),
      [],
      'the exemption list names only operations the document has',
    );

    // B's resources are as they were.
    assert.equal((await api(stack, 'GET', `/v1/messages/${res.message}`, { key: B.key })).body.status, 'scheduled');
    assert.equal((await api(stack, 'GET', `/v1/cases/${res.case}`, { key: B.key })).status, 200);
    assert.equal((await api(stack, 'GET', `/v1/tenants/${B.id}`, { key: B.key })).body.name, B.id);
    assert.equal((await api(stack, 'GET', '/v1/suppressions/gone%40customer.example', { key: B.key })).status, 200);
    assert.equal((await api(stack, 'GET', `/v1/tenants/${B.id}/bounce-mailbox`, { key: B.key })).body.user, 'bounces');
    assert.equal((await api(stack, 'GET', `/v1/inbound-messages/${res.inbound}`, { key: B.key })).status, 200);
    assert.equal((await api(stack, 'GET', `/v1/suppressions/victim%40customer.example`, { key: B.key })).status, 404);
  });
});
