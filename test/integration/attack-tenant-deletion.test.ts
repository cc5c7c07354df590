import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import type { Document } from 'mongodb';
import { DecryptionError } from '../../src/security/crypto';
import { SealedCredentialsError } from '../../src/errors';
import { sealScopeOf } from '../../src/store/tenant-seal';
import { bounceWatchWorkflowId } from '../../src/temporal/handoffs/bounce-mailbox-watch';
import { caseWorkflowId } from '../../src/temporal/handoffs/case';
import { tokenWorkflowId } from '../../src/temporal/handoffs/oauth-token';
import { rateLimiterWorkflowId } from '../../src/temporal/handoffs/rate-limiter';
import { tenantDeletionWorkflowId, type TenantDeletionResult } from '../../src/temporal/handoffs/tenant-deletion';
import { webhookWorkflowId } from '../../src/temporal/handoffs/webhook-delivery';
import { makeTestPki, type TestPki } from '../support/certs';
import { startImapRecorder, type RecordingListener } from '../support/recording-listener';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, messageUntil, startStack, type Stack } from '../support/stack';
import { WebhookReceiver } from '../support/webhook-receiver';

/**
 * Attack (issue 12, item 6): a deleted tenant used to leave everything behind (messages, cases,
 * inbound mail and files, suppressions, sealed secrets, tokens, events, deliveries, its bounce
 * mailbox, idempotency keys, GridFS bodies, tracking hits), and a new tenant created with the same
 * id inherited it all and could decrypt the old secrets (their associated data named only the id).
 * Here a tenant with all of that, and running workflows, is deleted through the API; the deletion
 * workflow must leave nothing of it in any collection of the database, no workflow of it running,
 * its key dead, and a new tenant of the same id must see nothing and open nothing old, even when an
 * old sealed record is written back.
 */
const ID = 'doomed-7q';
const TRACK_BASE = 'https://track.doomed.test';
const MIME_SECRET = 'inbound-bearer-secret-0123456789';
let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;
let receiver: WebhookReceiver;
let imap: RecordingListener;

before(async () => {
  pki = makeTestPki(['localhost']);
  [peer, receiver, imap] = await Promise.all([
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } }),
    WebhookReceiver.start(),
    startImapRecorder({ key: pki.serverKey, cert: pki.serverCert }),
  ]);
  stack = await startStack({
    TRACKING_BASE_URL: TRACK_BASE,
    TRACKING_FLUSH_MS: '100',
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'loopback',
    // Long enough to see the id still taken while the deletion runs.
    TENANT_DELETION_SETTLE_MS: '3000',
  });
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop(), receiver?.stop(), imap?.stop()]);
});

const tenantBody = () => ({
  id: ID,
  name: 'Doomed',
  domains: ['acme.example'],
  smtp: { host: 'localhost', port: peer.port, security: 'starttls', tls: { ca: pki.caCert } },
  auth: { type: 'password', user: 'u', password: 'p' },
  tracking: { opens: true, clicks: true },
  webhook: { url: receiver.url(`/hooks/${ID}`) },
});

async function send(key: string, body: Record<string, unknown>): Promise<{ id: string; messageId: string; caseId: string }> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'support@acme.example', to: ['alice@customer.example'], subject: 'Order 42', ...body },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((await messageUntil(stack, key, r.body.id as string, ['sent', 'failed'], 60_000)).status, 'sent');
  return r.body as { id: string; messageId: string; caseId: string };
}

/** The tracked URLs in a received message (quoted-printable undone). */
function trackedUrls(raw: string): string[] {
  const decoded = raw.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return [...decoded.matchAll(/https:\/\/track\.doomed\.test\/[\w\-./?=&%]+/g)].map((m) => m[0]);
}

/** A reply with an attachment, in the `mime` inbound provider's format. */
function replyWithAttachment(inReplyTo: string): string {
  return [
    'From: Alice <alice@customer.example>',
    'To: support@acme.example',
    'Subject: Re: Order 42',
    `Date: ${new Date().toUTCString()}`,
    `Message-ID: <${randomBytes(6).toString('hex')}@customer.example>`,
    `In-Reply-To: ${inReplyTo}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="B"',
    '',
    '--B',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'The invoice is attached.',
    '--B',
    'Content-Type: application/pdf; name="invoice.pdf"',
    'Content-Disposition: attachment; filename="invoice.pdf"',
    'Content-Transfer-Encoding: base64',
    '',
    randomBytes(3000).toString('base64'),
    '--B--',
    '',
  ].join('\r\n');
}

/** Every document of every collection that names the tenant, by collection. */
async function leftovers(): Promise<Record<string, Document[]>> {
  const found: Record<string, Document[]> = {};
  for (const { name } of await stack.store.db.listCollections({}, { nameOnly: true }).toArray()) {
    const docs = (await stack.store.db.collection(name).find({}).toArray()).filter((d) => JSON.stringify(d).includes(ID));
    if (docs.length > 0) found[name] = docs;
  }
  return found;
}

const running = async (workflowId: string) =>
  (await stack.temporal.workflow
    .getHandle(workflowId)
    .describe()
    .then((d) => d.status.name)
    .catch(() => 'NOT_FOUND')) === 'RUNNING';

test('deleted from every collection, workflows stopped, key dead; a new tenant of the same id inherits nothing and opens nothing old', async () => {
  // --- A tenant with a bit of everything. ---
  const created = await api(stack, 'POST', '/v1/tenants', { key: stack.adminKey, body: tenantBody() });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const key = created.body.apiKey as string;
  const inboundKey = created.body.tenant.inbound.key as string;
  assert.equal((await api(stack, 'PUT', `/v1/tenants/${ID}/inbound/mime`, { key, body: { bearerToken: MIME_SECRET } })).status, 200);

  const tracked = await send(key, {
    html: '<p>Your <a href="https://shop.example/orders/42">order</a> shipped.</p>',
    track: { opens: true, clicks: true },
    idempotencyKey: 'order-42',
  });
  const big = await send(key, {
    text: 'The catalogue is attached.',
    attachments: [
      { filename: 'catalogue.bin', contentType: 'application/octet-stream', contentBase64: randomBytes(4_500_000).toString('base64') },
    ],
  });
  const raw = peer.messages().find((m) => m.messageId === tracked.messageId)?.raw ?? '';
  const urls = trackedUrls(raw);
  assert.ok(urls.length > 0, `no tracked URL in the message: ${raw.slice(0, 3000)}`);
  for (const url of urls) await fetch(url.replace(TRACK_BASE, stack.baseUrl), { redirect: 'manual' });
  await eventually(
    () => stack.store.db.collection('message_tracking_hits').findOne({ _id: `${tracked.id}#0` as never }),
    30_000,
    'tracking hits',
  );

  const reply = await fetch(`${stack.baseUrl}/v1/inbound/mime/${inboundKey}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MIME_SECRET}`, 'content-type': 'message/rfc822' },
    body: replyWithAttachment(tracked.messageId),
  });
  assert.equal(reply.status, 200, await reply.clone().text());
  await eventually(() => running(caseWorkflowId(ID, tracked.caseId)), 30_000, 'the case workflow');

  assert.equal(
    (await api(stack, 'POST', '/v1/suppressions', { key, body: { address: 'bob@customer.example', reason: 'asked' } })).status,
    201,
  );
  const tenantDoc = await stack.tenants.get(ID);
  await stack.repos.oauthTokens.save(
    stack.tenants.credentialBinding(tenantDoc),
    { accessToken: 'old-access-token', expiresAt: Date.now() + 3600_000 },
    1,
  );
  const mailbox = await api(stack, 'PUT', `/v1/tenants/${ID}/bounce-mailbox`, {
    key,
    body: {
      host: 'localhost',
      port: imap.port,
      security: 'tls',
      tls: { ca: pki.caCert },
      user: 'bounces@acme.example',
      password: 'imap-pass',
    },
  });
  assert.equal(mailbox.status, 201, JSON.stringify(mailbox.body));
  await eventually(() => running(bounceWatchWorkflowId(ID)), 30_000, 'the bounce-mailbox watch');
  await eventually(() => receiver.to(`/hooks/${ID}`).length > 0, 60_000, 'webhook deliveries');
  await eventually(() => stack.store.db.collection('webhook_deliveries').findOne({ tenantId: ID }), 30_000, 'a delivery record');

  const before = await leftovers();
  const gridfsIds = [
    ...(await stack.store.db.collection('message_bodies_large.files').find({ 'metadata.tenantId': ID }).toArray()),
    ...(await stack.store.db.collection('inbound_files.files').find({ 'metadata.tenantId': ID }).toArray()),
  ].map((f) => f._id);
  for (const name of [
    'tenants',
    'messages',
    'idempotency_keys',
    'message_bodies_large.files',
    'message_tracking',
    'inbound_messages',
    'inbound_files.files',
    'inbound_settings',
    'cases',
    'case_events',
    'message_ids',
    'suppressions',
    'events',
    'webhook_deliveries',
    'oauth_tokens',
    'bounce_mailboxes',
    'api_keys',
    'inbound_keys',
  ]) {
    assert.ok(before[name]?.length, `the setup left nothing of the tenant in ${name}`);
  }
  assert.ok(gridfsIds.length >= 2, 'a large body and an inbound attachment in GridFS');
  // Records to write back later, as if they had survived.
  const old = {
    tenant: await stack.store.db.collection('tenants').findOne({ _id: ID as never }),
    mailbox: await stack.store.db.collection('bounce_mailboxes').findOne({ _id: ID as never }),
    token: await stack.store.db.collection('oauth_tokens').findOne({ _id: ID as never }),
    inbound: await stack.store.db.collection('inbound_settings').findOne({ tenantId: ID }),
  };

  // --- DELETE. ---
  const del = await api(stack, 'DELETE', `/v1/tenants/${ID}`, { key: stack.adminKey });
  assert.equal(del.status, 202, JSON.stringify(del.body));
  assert.equal(del.body.workflowId, tenantDeletionWorkflowId(ID));
  // At once: the key is dead, the inbound key unknown, the tenant gone, its id still taken.
  assert.equal((await api(stack, 'GET', `/v1/tenants/${ID}`, { key })).status, 401);
  assert.equal(
    (await api(stack, 'POST', '/v1/messages', { key, body: { from: 'a@acme.example', to: ['b@x.example'], subject: 's', text: 't' } }))
      .status,
    401,
  );
  assert.equal((await api(stack, 'GET', `/v1/tenants/${ID}`, { key: stack.adminKey })).status, 404);
  const early = await api(stack, 'POST', '/v1/tenants', { key: stack.adminKey, body: tenantBody() });
  assert.equal(early.status, 409, JSON.stringify(early.body));
  assert.match(early.body.detail, /being deleted/);
  const lateInbound = await fetch(`${stack.baseUrl}/v1/inbound/mime/${inboundKey}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MIME_SECRET}`, 'content-type': 'message/rfc822' },
    body: replyWithAttachment(tracked.messageId),
  });
  assert.equal(lateInbound.status, 404);

  const result = (await stack.temporal.workflow.getHandle(tenantDeletionWorkflowId(ID)).result()) as TenantDeletionResult;
  assert.ok(result.workflowsStopped >= 3, JSON.stringify(result));
  assert.ok(result.deleted.messages === 2, JSON.stringify(result));

  // --- Nothing left. ---
  assert.deepEqual(await leftovers(), {}, 'documents naming the tenant survived');
  for (const m of [tracked.id, big.id]) {
    assert.equal(await stack.store.db.collection('message_locks').countDocuments({ _id: m as never }), 0);
    assert.equal(
      await stack.store.db.collection('message_tracking_hits').countDocuments({ _id: { $gte: `${m}#`, $lt: `${m}$` } as never }),
      0,
    );
  }
  for (const bucket of ['message_bodies_large', 'inbound_files']) {
    assert.equal(
      await stack.store.db.collection(`${bucket}.chunks`).countDocuments({ files_id: { $in: gridfsIds } }),
      0,
      `${bucket} chunks`,
    );
  }
  const stillRunning = [];
  for await (const wf of stack.temporal.workflow.list({ query: `TenantId = '${ID}' AND ExecutionStatus = 'Running'` }))
    stillRunning.push(wf.workflowId);
  assert.deepEqual(stillRunning, []);
  for (const id of [
    caseWorkflowId(ID, tracked.caseId),
    bounceWatchWorkflowId(ID),
    webhookWorkflowId(ID),
    rateLimiterWorkflowId(ID),
    tokenWorkflowId(ID),
  ]) {
    assert.equal(await running(id), false, `${id} still running`);
  }
  assert.equal((await api(stack, 'GET', `/v1/tenants/${ID}`, { key })).status, 401);

  // --- A new tenant under the same id: sees nothing, opens nothing old. ---
  const again = await api(stack, 'POST', '/v1/tenants', { key: stack.adminKey, body: tenantBody() });
  assert.equal(again.status, 201, JSON.stringify(again.body));
  const key2 = again.body.apiKey as string;
  assert.equal((await api(stack, 'GET', `/v1/tenants/${ID}`, { key })).status, 401, 'the old key works for the new tenant');
  assert.deepEqual((await api(stack, 'GET', '/v1/messages', { key: key2 })).body.items, []);
  assert.deepEqual((await api(stack, 'GET', '/v1/suppressions', { key: key2 })).body.items, []);
  assert.deepEqual((await api(stack, 'GET', '/v1/webhooks/deliveries', { key: key2 })).body.items, []);
  assert.equal((await api(stack, 'GET', `/v1/tenants/${ID}/bounce-mailbox`, { key: key2 })).status, 404);
  assert.equal((await api(stack, 'GET', `/v1/messages/${tracked.id}`, { key: key2 })).status, 404);
  assert.equal((await api(stack, 'GET', `/v1/tenants/${ID}/inbound/mime`, { key: key2 })).status, 404);

  // Old sealed records written back (as if they had survived): none opens for the new tenant.
  const fresh = await stack.tenants.get(ID);
  assert.notEqual(fresh.salt, old.tenant?.salt);
  await stack.store.db.collection('bounce_mailboxes').insertOne(old.mailbox!);
  const survivor = (await stack.repos.bounceMailboxes.get(ID))!;
  assert.throws(() => stack.repos.bounceMailboxes.openPassword(survivor, sealScopeOf(fresh)), SealedCredentialsError);
  await stack.store.db.collection('oauth_tokens').insertOne(old.token!);
  assert.equal(await stack.repos.oauthTokens.get(stack.tenants.credentialBinding(fresh)), null);
  await stack.store.db.collection('inbound_settings').insertOne(old.inbound!);
  const inboundSurvivor = (await stack.repos.inbound.getSettings(ID, 'mime'))!;
  assert.throws(() => stack.repos.inbound.openSettings(inboundSurvivor, sealScopeOf(fresh)), DecryptionError);
  // The old tenant's own sealed password and webhook secret, for the very same endpoint and field.
  const oldAuth = old.tenant as unknown as { auth: { sealed: { password: string } }; webhookSecretSealed: string };
  const withOldPassword = { ...fresh, auth: { ...fresh.auth, sealed: { password: oldAuth.auth.sealed.password } } };
  assert.throws(() => stack.tenants.openAuth(withOldPassword), SealedCredentialsError);
  assert.throws(() => stack.tenants.openWebhookSecret({ ...fresh, webhookSecretSealed: oldAuth.webhookSecretSealed }), DecryptionError);
  // The new tenant's own secrets open, of course.
  assert.equal((stack.tenants.openAuth(fresh) as { password: string }).password, 'p');
});
