import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { after, before, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { CERT_URL, mailgunSigned, makeSnsSigner, snsEnvelope, TOPIC } from '../support/inbound-fixtures';
import { SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from '../support/stack';

/**
 * Relay events end to end (issue 15, docs/provider-events.md): messages sent through the API to a
 * real SMTP process for a tenant on a relay preset, then each relay's delivery / bounce / complaint /
 * delay webhook, in the shape its documentation shows and signed as it signs, posted to
 * `/v1/provider-events/:provider/:key`; the statuses, suppressions and `message.*` events are read
 * back from the store. Only Amazon's certificate download is replaced (the app's injectable fetcher).
 */
let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;
const sns = makeSnsSigner();
const MAILGUN_KEY = 'mailgun-signing-key-0123456789';
const POSTMARK = { username: 'postmark', password: 'postmark-pass-1' };
const BREVO_BEARER = 'brevo-bearer-secret-000001';
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const SENDGRID_KEY = ec.publicKey.export({ format: 'der', type: 'spki' }).toString('base64');
const TENANT = 'relay-a';
let key = '';
let inboundKey = '';

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack(
    {},
    {
      app: {
        snsCertFetcher: async (url) => {
          if (url !== CERT_URL) throw new Error(`unexpected ${url}`);
          return sns.cert;
        },
        snsConfirm: async () => undefined,
      },
    },
  );
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  // A SendGrid-preset tenant whose "relay" is the test server: the preset adds its correlation header.
  key = await createPeerTenant(stack, TENANT, peer, pki.caCert, { preset: 'sendgrid' });
  inboundKey = (await api(stack, 'GET', `/v1/tenants/${TENANT}`, { key })).body.inbound.key as string;
  for (const [provider, body] of [
    ['sendgrid', { eventVerificationKey: SENDGRID_KEY }],
    ['ses', { topicArns: [TOPIC] }],
    ['mailgun', { signingKey: MAILGUN_KEY }],
    ['postmark', POSTMARK],
    ['brevo', { bearerToken: BREVO_BEARER }],
  ] as const) {
    const r = await api(stack, 'PUT', `/v1/tenants/${TENANT}/inbound/${provider}`, { key, body });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

async function sent(to: string[]): Promise<{ id: string; messageId: string }> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'support@acme.example', to, subject: 'Your order', text: 'Shipped.' },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await messageUntil(stack, key, r.body.id, ['sent']);
  return { id: r.body.id, messageId: r.body.messageId };
}

async function post(provider: string, body: string, headers: Record<string, string>) {
  const res = await fetch(`${stack.baseUrl}/v1/provider-events/${provider}/${inboundKey}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function sendgridPost(events: unknown[], opts: { tamper?: boolean } = {}) {
  const body = JSON.stringify(events);
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = sign('sha256', Buffer.from(timestamp + body), ec.privateKey).toString('base64');
  return post('sendgrid', opts.tamper ? body.replace('bounce', 'delivered') : body, {
    'X-Twilio-Email-Event-Webhook-Signature': signature,
    'X-Twilio-Email-Event-Webhook-Timestamp': timestamp,
  });
}

const suppression = (address: string) =>
  stack.store.db
    .collection<{ _id: string; source: string; detail: string | null }>('suppressions')
    .findOne({ _id: `${TENANT}:${address}` });
const eventsOf = (messageId: string) =>
  stack.store.db.collection<{ type: string; data: Record<string, unknown> }>('events').find({ tenantId: TENANT, messageId }).toArray();

test('the relay preset adds its correlation header, and SendGrid’s signed events deliver, bounce and suppress', async () => {
  const ok = await sent(['ok@customer.example']);
  const dead = await sent(['dead@customer.example']);
  const delivered = peer.messages().find((m) => m.raw.includes(ok.messageId));
  assert.ok(delivered, 'the message reached the server');
  assert.match(delivered.raw.replace(/\r?\n[ \t]+/g, ' '), new RegExp(`X-SMTPAPI: \\{"unique_args":\\{"cartero_id":"${ok.id}"\\}\\}`));

  const batch = [
    {
      email: 'ok@customer.example',
      event: 'delivered',
      sg_event_id: 'sg-1',
      'smtp-id': ok.messageId,
      response: '250 2.0.0 OK',
      cartero_id: ok.id,
    },
    { email: 'ok@customer.example', event: 'open', sg_event_id: 'sg-2', cartero_id: ok.id },
    {
      email: 'dead@customer.example',
      event: 'bounce',
      type: 'bounce',
      sg_event_id: 'sg-3',
      status: '5.1.1',
      reason: '550 5.1.1 The email account that you tried to reach does not exist.',
      cartero_id: dead.id,
    },
  ];
  // A body changed after signing is refused, and changes nothing.
  const forged = await sendgridPost(batch, { tamper: true });
  assert.equal(forged.status, 401);
  assert.equal(await suppression('dead@customer.example'), null);

  const r = await sendgridPost(batch);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.received, 2);
  assert.equal(r.body.ignored, 1);
  assert.equal(r.body.unmatched, 0);
  assert.equal((await messageUntil(stack, key, dead.id, ['bounced'])).status, 'bounced');
  const s = await suppression('dead@customer.example');
  assert.equal(s?.source, 'bounce');
  assert.match(s?.detail ?? '', /provider:sendgrid: .*5\.1\.1.*notice sg-3/);
  assert.deepEqual(
    (await eventsOf(ok.id)).map((e) => e.type).filter((t) => t !== 'message.sent'),
    ['message.delivered'],
  );
  assert.ok((await eventsOf(dead.id)).some((e) => e.type === 'message.bounced' && e.data.suppressed === true));
  // The same batch again (SendGrid retries on any non-2xx) changes nothing more.
  const again = await sendgridPost(batch);
  assert.equal(again.status, 200);
  assert.equal((await eventsOf(dead.id)).filter((e) => e.type === 'message.bounced').length, 1);
});

test('a permanent refusal about the sender is a bounce, not a dead address; a relay report is trusted on a shared message', async () => {
  const m = await sent(['carol@customer.example', 'dave@customer.example']);
  const r = await sendgridPost([
    {
      email: 'carol@customer.example',
      event: 'bounce',
      type: 'blocked',
      sg_event_id: 'sg-10',
      reason: '550 5.7.1 Relaying denied',
      cartero_id: m.id,
    },
    {
      email: 'dave@customer.example',
      event: 'bounce',
      type: 'bounce',
      sg_event_id: 'sg-11',
      reason: '550 5.1.1 <dave@customer.example>: Recipient address rejected: User unknown',
      cartero_id: m.id,
    },
  ]);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(await suppression('carol@customer.example'), null, 'relaying denied is about the sender');
  // Two visible recipients: a mailed notice about dave would only be recorded (a co-recipient could
  // forge it); the relay's signed report acts.
  assert.equal((await suppression('dave@customer.example'))?.source, 'bounce');
  assert.equal((await messageUntil(stack, key, m.id, ['bounced'])).status, 'bounced');
});

test('SES through SNS: a permanent bounce found by the original headers, a complaint, a foreign topic refused', async () => {
  const m = await sent(['gone@customer.example']);
  const c = await sent(['angry@customer.example']);
  const bounce = {
    notificationType: 'Bounce',
    bounce: {
      bounceType: 'Permanent',
      bounceSubType: 'General',
      feedbackId: 'fb-1',
      bouncedRecipients: [
        { emailAddress: 'gone@customer.example', action: 'failed', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
      ],
    },
    mail: { messageId: 'ses-0001', headers: [{ name: 'X-Cartero-Id', value: m.id }], commonHeaders: { messageId: m.messageId } },
  };
  const env = snsEnvelope(sns.key, { Type: 'Notification', Message: JSON.stringify(bounce) });
  const r = await post('ses', JSON.stringify(env), { 'x-amz-sns-topic-arn': TOPIC });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.applied[0].matched, true);
  assert.equal((await suppression('gone@customer.example'))?.source, 'bounce');

  const complaint = {
    eventType: 'Complaint',
    complaint: { feedbackId: 'fb-2', complainedRecipients: [{ emailAddress: 'angry@customer.example' }] },
    mail: { messageId: 'ses-0002', tags: { cartero_id: [c.id] } },
  };
  const r2 = await post('ses', JSON.stringify(snsEnvelope(sns.key, { Type: 'Notification', Message: JSON.stringify(complaint) })), {
    'x-amz-sns-topic-arn': TOPIC,
  });
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  assert.equal((await suppression('angry@customer.example'))?.source, 'complaint');

  const other = 'arn:aws:sns:eu-west-1:999999999999:someone-else';
  const foreign = await post(
    'ses',
    JSON.stringify(snsEnvelope(sns.key, { Type: 'Notification', Message: JSON.stringify(bounce), TopicArn: other })),
    {
      'x-amz-sns-topic-arn': other,
    },
  );
  assert.equal(foreign.status, 401);
});

test('Mailgun: a temporary failure is a delay (no status change), a permanent one suppresses, a replayed token is refused', async () => {
  const m = await sent(['slow@customer.example']);
  const payload = (event: Record<string, unknown>, sig = mailgunSigned(MAILGUN_KEY)) =>
    JSON.stringify({ signature: sig, 'event-data': event });
  const temp = await post(
    'mailgun',
    payload({
      id: 'mg-1',
      event: 'failed',
      severity: 'temporary',
      recipient: 'slow@customer.example',
      message: { headers: { 'message-id': m.messageId.slice(1, -1) } },
      'delivery-status': { code: 452, message: '4.2.2 Mailbox full' },
    }),
    {},
  );
  assert.equal(temp.status, 200, JSON.stringify(temp.body));
  assert.equal(temp.body.applied[0].matched, true);
  assert.ok((await eventsOf(m.id)).some((e) => e.type === 'message.deferred' && e.data.source === 'provider:mailgun'));
  assert.equal((await messageUntil(stack, key, m.id, ['sent'])).status, 'sent');
  assert.equal(await suppression('slow@customer.example'), null);

  const sig = mailgunSigned(MAILGUN_KEY);
  const perm = payload(
    {
      id: 'mg-2',
      event: 'failed',
      severity: 'permanent',
      reason: 'bounce',
      recipient: 'slow@customer.example',
      'user-variables': { cartero_id: m.id },
      'delivery-status': { code: 550, message: '5.1.1 The email account that you tried to reach does not exist' },
    },
    sig,
  );
  assert.equal((await post('mailgun', perm, {})).status, 200);
  assert.equal((await suppression('slow@customer.example'))?.source, 'bounce');
  // The same signed token on another event is a replay.
  const replay = payload(
    { id: 'mg-3', event: 'complained', recipient: 'slow@customer.example', 'user-variables': { cartero_id: m.id } },
    sig,
  );
  assert.equal((await post('mailgun', replay, {})).status, 401);
});

test('Postmark and Brevo: credentials checked before the body; matched by metadata or Message-ID; other tenants’ ids match nothing', async () => {
  const p = await sent(['pm@customer.example']);
  const b = await sent(['br@customer.example']);
  const basic = `Basic ${Buffer.from(`${POSTMARK.username}:${POSTMARK.password}`).toString('base64')}`;
  const pmBounce = {
    RecordType: 'Bounce',
    ID: 4323372036854,
    Type: 'HardBounce',
    MessageID: '883953f4-6105-42a2-a16a-77a8eac79483',
    Email: 'pm@customer.example',
    Details: 'smtp;550 5.1.1 The email account that you tried to reach does not exist.',
    Metadata: { cartero_id: p.id },
  };
  assert.equal((await post('postmark', JSON.stringify(pmBounce), { authorization: 'Basic d3Jvbmc6d3Jvbmc=' })).status, 401);
  const r = await post('postmark', JSON.stringify(pmBounce), { authorization: basic });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal((await suppression('pm@customer.example'))?.source, 'bounce');
  // Without the metadata Postmark's own MessageID names nothing of ours.
  const stray = await post('postmark', JSON.stringify({ ...pmBounce, ID: 2, Metadata: {}, Email: 'x@customer.example' }), {
    authorization: basic,
  });
  assert.equal(stray.body.unmatched, 1);
  // A message id of another tenant (or none at all) is not this tenant's.
  const foreign = await post('postmark', JSON.stringify({ ...pmBounce, ID: 3, Metadata: { cartero_id: 'm_0000000000000000notours' } }), {
    authorization: basic,
  });
  assert.equal(foreign.body.unmatched, 1);

  const spam = { event: 'spam', email: 'br@customer.example', id: 1, 'message-id': b.messageId, ts_event: 1700000000 };
  const r2 = await post('brevo', JSON.stringify(spam), { authorization: `Bearer ${BREVO_BEARER}` });
  assert.equal(r2.status, 200, JSON.stringify(r2.body));
  assert.equal((await suppression('br@customer.example'))?.source, 'complaint');
  assert.equal((await post('brevo', JSON.stringify(spam), {})).status, 401);
  assert.equal((await post('nosuch', '{}', {})).status, 404);
});
