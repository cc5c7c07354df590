import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { recordCaseEvent } from '../../src/cases/record';
import type { CaseSummary } from '../../src/domain/cases';
import { caseWorkflowId, queryCaseSummary } from '../../src/temporal/handoffs/case';
import { Worker } from '@temporalio/worker';
import { dataConverter } from '../../src/temporal/connection';
import { CaseIdKey, TenantIdKey } from '../../src/temporal/search-attributes';
import { workflowSource } from '../../src/worker';
import { makeTestPki, type TestPki } from '../support/certs';
import {
  CERT_URL,
  inboundRequest,
  mailgunSigned,
  makeSnsSigner,
  multipart,
  replyMime,
  snsEnvelope,
  TOPIC,
  type InboundCredentials,
  type InboundReply,
} from '../support/inbound-fixtures';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';

/**
 * Inbound end to end on real servers: a message is sent through the API to a real SMTP process,
 * its reply comes back through each provider's webhook format, lands in the same case once, and
 * the case workflow's query shows it. Only the SNS certificate download and Brevo's attachment
 * API (Amazon's and Brevo's servers) are replaced, through the app's injectable fetchers.
 */
let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;
const signer = makeSnsSigner();
const MAILGUN_KEY = 'mailgun-signing-key-0123456789';
const MIME_SECRET = 'ibs_mime_secret_for_tests_0001';
const POSTMARK = { username: 'postmark', password: 'postmark-pass-1' };
const SENDGRID = { username: 'sendgrid', password: 'sendgrid-pass-1' };
const BREVO_BEARER = 'brevo-bearer-secret-000001';
const basic = (c: { username: string; password: string }) => `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
const confirmed: string[] = [];

interface T {
  id: string;
  key: string;
  inboundKey: string;
}
let t: T;

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack(
    { INBOUND_ATTACHMENT_MAX_BYTES: '100000', INBOUND_BODY_LIMIT_BYTES: '3000000', INBOUND_MAX_MIME_PARTS: '200' },
    {
      app: {
        snsCertFetcher: async (url) => {
          if (url !== CERT_URL) throw new Error(`unexpected ${url}`);
          return signer.cert;
        },
        snsConfirm: async (url) => {
          confirmed.push(url);
        },
        brevoAttachment: async (token) => {
          if (token === 'brevo-down') throw new Error('Brevo answered HTTP 502');
          return Buffer.from(`attachment for ${token}`);
        },
      },
    },
  );
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  t = await tenant('inbound-a');
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

async function tenant(id: string, extra: Record<string, unknown> = {}): Promise<T> {
  const key = await createPeerTenant(stack, id, peer, pki.caCert, extra);
  const view = await api(stack, 'GET', `/v1/tenants/${id}`, { key });
  // A provider takes posts only once the tenant enabled it with its authentication (docs/inbound.md).
  for (const [provider, body] of [
    ['brevo', { bearerToken: BREVO_BEARER, apiKey: 'xkeysib-test' }],
    ['sendgrid', SENDGRID],
    ['mailgun', { signingKey: MAILGUN_KEY }],
    ['mime', { bearerToken: MIME_SECRET }],
    ['postmark', POSTMARK],
    ['ses', { topicArns: [TOPIC] }],
  ] as const) {
    const r = await api(stack, 'PUT', `/v1/tenants/${id}/inbound/${provider}`, { key, body });
    assert.equal(r.status, 200, JSON.stringify(r.body));
  }
  return { id, key, inboundKey: view.body.inbound.key };
}

async function send(tt: T, over: Record<string, unknown> = {}) {
  const r = await api(stack, 'POST', '/v1/messages', {
    key: tt.key,
    body: { from: 'support@acme.example', to: ['alice@customer.example'], subject: 'Your case #42', text: 'Hello Alice', ...over },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body as { id: string; messageId: string; caseId: string };
}

async function sent(tt: T, id: string) {
  return eventually(
    async () => {
      const r = await api(stack, 'GET', `/v1/messages/${id}`, { key: tt.key });
      return r.body.status === 'sent' ? r.body : undefined;
    },
    30_000,
    `message ${id} sent`,
  );
}

type Reply = InboundReply;

const CREDS: InboundCredentials = {
  brevoBearer: BREVO_BEARER,
  postmark: POSTMARK,
  sendgrid: SENDGRID,
  mailgunKey: MAILGUN_KEY,
  mimeSecret: MIME_SECRET,
  snsKey: signer.key,
};

/** Posts `reply` to the tenant's webhook in `variant`'s documented format. */
async function deliver(tt: T, variant: string, reply: Reply, opts: { auth?: 'wrong' } = {}) {
  const r = inboundRequest(variant, reply, CREDS, { wrongAuth: opts.auth === 'wrong' });
  const url = `${stack.baseUrl}/v1/inbound/${r.provider}/${tt.inboundKey}${variant === 'mailgun-mime' ? '/mime' : ''}`;
  const res = await fetch(url, { method: 'POST', headers: r.headers, body: r.body });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function summary(tenantId: string, caseId: string): Promise<CaseSummary> {
  return queryCaseSummary(stack.temporal, tenantId, caseId);
}

async function summaryWhen(tenantId: string, caseId: string, ok: (s: CaseSummary) => boolean, what: string): Promise<CaseSummary> {
  return eventually(
    async () => {
      const s = await summary(tenantId, caseId).catch(() => undefined);
      return s && ok(s) ? s : undefined;
    },
    30_000,
    what,
  );
}

let seq = 0;
const newId = (tag: string) => `<${tag}-${++seq}-${Date.now()}@mail.customer.example>`;

describe("a reply through each provider lands in the sent message's case, once", () => {
  for (const variant of ['brevo', 'sendgrid-parsed', 'sendgrid-raw', 'ses', 'mailgun-parsed', 'mailgun-mime', 'postmark', 'mime']) {
    test(variant, async () => {
      const m = await send(t, { subject: `Your case ${variant}` });
      await sent(t, m.id);
      const reply = { messageId: newId(variant), inReplyTo: m.messageId, references: [m.messageId], subject: `Re: Your case ${variant}` };
      const first = await deliver(t, variant, reply);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.received.length, 1);
      const r = first.body.received[0];
      assert.equal(r.caseId, m.caseId);
      assert.equal(r.rule, 'in-reply-to');
      assert.equal(r.kind, 'human');
      assert.equal(r.duplicate, false);
      // The provider retries the same message: stored and signalled once.
      const again = await deliver(t, variant, reply);
      assert.equal(again.status, 200);
      assert.equal(again.body.received[0].duplicate, true);
      assert.equal(again.body.received[0].id, r.id);
      const s = await summaryWhen(t.id, m.caseId, (x) => x.counts.inbound >= 1 && x.counts.sent >= 1, `case ${m.caseId} to show the reply`);
      assert.equal(s.counts.inbound, 1);
      assert.equal(s.counts.sent, 1);
      assert.ok(s.participants.includes('alice@customer.example'));
      const stored = await stack.repos.inbound.get(t.id, r.id);
      assert.equal(stored.messageId, reply.messageId);
      assert.equal(stored.provider, variant.split('-')[0]);
      const timeline = await api(stack, 'GET', `/v1/cases/${m.caseId}/timeline`, { key: t.key });
      assert.deepEqual(timeline.body.items.map((e: { kind: string }) => e.kind).sort(), ['inbound', 'sent']);
    });
  }
});

describe('threading', () => {
  test('a reply to a reply: References chain through our reply to an inbound message', async () => {
    const m1 = await send(t, { subject: 'Chain test' });
    await sent(t, m1.id);
    const i1 = (
      await deliver(t, 'mime', { messageId: newId('i1'), inReplyTo: m1.messageId, references: [m1.messageId], subject: 'Re: Chain test' })
    ).body.received[0];
    const m2 = await send(t, { subject: 'Re: Chain test', inReplyTo: i1.id });
    assert.equal(m2.caseId, m1.caseId);
    await sent(t, m2.id);
    const i1Doc = await stack.repos.inbound.get(t.id, i1.id);
    const rawM2 = peer.messages().find((x) => x.messageId === m2.messageId)!.raw;
    assert.match(rawM2, new RegExp(`^In-Reply-To: ${i1Doc.messageId!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
    const refs = /^References: ([^\r\n]+(?:\r?\n[ \t][^\r\n]+)*)/m.exec(rawM2)![1]!.replace(/\s+/g, ' ');
    assert.equal(refs, `${m1.messageId} ${i1Doc.messageId}`);
    // The customer's client drops In-Reply-To but keeps References: still the same case, by References.
    const i2 = (
      await deliver(t, 'postmark', {
        messageId: newId('i2'),
        references: [m1.messageId, i1Doc.messageId!, m2.messageId],
        subject: 'Re: Chain test',
      })
    ).body.received[0];
    assert.equal(i2.caseId, m1.caseId);
    assert.equal(i2.rule, 'references');
    const s = await summaryWhen(t.id, m1.caseId, (x) => x.counts.inbound === 2 && x.counts.sent === 2, 'two replies and two sends');
    assert.equal(s.eventCount, 4);
  });

  test('out of order: the reply arrives before the send is recorded; both end up in the case', async () => {
    const m = await send(t, { subject: 'Scheduled', sendAt: new Date(Date.now() + 4000).toISOString() });
    const r = (await deliver(t, 'brevo', { messageId: newId('early'), inReplyTo: m.messageId, subject: 'Re: Scheduled' })).body.received[0];
    assert.equal(r.caseId, m.caseId);
    const early = await summaryWhen(t.id, m.caseId, (x) => x.counts.inbound === 1, 'reply first');
    assert.equal(early.counts.sent, 0);
    await sent(t, m.id);
    await summaryWhen(t.id, m.caseId, (x) => x.counts.sent === 1 && x.counts.inbound === 1, 'send recorded after the reply');
    const timeline = await api(stack, 'GET', `/v1/cases/${m.caseId}/timeline`, { key: t.key });
    assert.deepEqual(
      timeline.body.items.map((e: { kind: string }) => e.kind),
      ['inbound', 'sent'],
    );
  });

  test('our Message-ID names its message: no index entry is written, a reply still finds the case', async () => {
    const m = await send(t, { subject: 'Unindexed' });
    assert.equal(await stack.store.db.collection('message_ids').countDocuments({ _id: `${t.id}:${m.messageId}` } as never), 0);
    const r = (await deliver(t, 'mime', { messageId: newId('own'), inReplyTo: m.messageId, subject: 'Re: Unindexed' })).body.received[0];
    assert.equal(r.caseId, m.caseId);
    assert.equal(r.rule, 'in-reply-to');
    // A client that changed the domain's case still names the message.
    const at = m.messageId.lastIndexOf('@');
    const upper = m.messageId.slice(0, at) + m.messageId.slice(at).toUpperCase();
    assert.notEqual(upper, m.messageId);
    const r2 = (await deliver(t, 'mime', { messageId: newId('own'), references: [upper], subject: 'Unrelated words' })).body.received[0];
    assert.equal(r2.caseId, m.caseId);
    assert.equal(r2.rule, 'references');
  });

  test('an inbound mail reusing our Message-ID as its own cannot draw the replies to our message', async () => {
    const m = await send(t, { subject: 'Quarterly report' });
    const forged = (
      await deliver(t, 'mime', { messageId: m.messageId, from: 'Mallory <mallory@evil.example>', subject: 'Unrelated thing' })
    ).body.received[0];
    assert.notEqual(forged.caseId, m.caseId);
    // The forged mail's Message-ID is now indexed to its own case; ours still wins for a reply.
    await eventually(
      async () =>
        (await stack.store.db.collection('message_ids').countDocuments({ _id: `${t.id}:${m.messageId}` } as never)) === 1 || undefined,
      10_000,
      'the forged Message-ID indexed',
    );
    const r = (await deliver(t, 'mime', { messageId: newId('reply'), inReplyTo: m.messageId, subject: 'Re: Quarterly report' })).body
      .received[0];
    assert.equal(r.caseId, m.caseId);
    assert.equal(r.rule, 'in-reply-to');
  });

  test('reply token in the Reply-To address, when headers are lost', async () => {
    const tt = await tenant('inbound-token', { inbound: { forwardingAddresses: ['replies@acme.example'] } });
    const m = await send(tt, { subject: 'Token test' });
    await sent(tt, m.id);
    const raw = peer.messages().find((x) => x.messageId === m.messageId)!.raw;
    const replyTo = /^Reply-To: (replies\+[a-z2-7]{16}@acme\.example)/m.exec(raw)?.[1];
    assert.ok(replyTo, 'Reply-To with a token');
    const r = (await deliver(tt, 'mime', { messageId: newId('tok'), to: replyTo, subject: 'Something else entirely' })).body.received[0];
    assert.equal(r.caseId, m.caseId);
    assert.equal(r.rule, 'reply-token');
  });

  test('subject and participant, then a new case for a stranger', async () => {
    const m = await send(t, { subject: 'Invoice 2026-11', to: ['carol@customer.example'] });
    await sent(t, m.id);
    const r = (
      await deliver(t, 'mime', { messageId: newId('subj'), from: 'Carol <carol@customer.example>', subject: 'RE: Invoice 2026-11' })
    ).body.received[0];
    assert.equal(r.caseId, m.caseId);
    assert.equal(r.rule, 'subject-participants');
    const n = (await deliver(t, 'mime', { messageId: newId('new'), from: 'Dave <dave@other.example>', subject: 'RE: Invoice 2026-11' }))
      .body.received[0];
    assert.notEqual(n.caseId, m.caseId);
    assert.equal(n.rule, 'new-case');
    const s = await summaryWhen(t.id, n.caseId, (x) => x.counts.inbound === 1, 'new case workflow');
    assert.deepEqual(s.participants, ['dave@other.example']);
    const desc = await stack.temporal.workflow.getHandle(caseWorkflowId(t.id, n.caseId)).describe();
    assert.equal(desc.typedSearchAttributes.get(CaseIdKey), n.caseId);
    assert.equal(desc.typedSearchAttributes.get(TenantIdKey), t.id);
  });

  test("Gmail's forwarding confirmation is stored unthreaded and the tenant gets the approval link, not a case", async () => {
    const r = await deliver(t, 'mime', {
      messageId: newId('fwd'),
      from: 'Gmail Team <forwarding-noreply@google.com>',
      subject: '(#123456789) Gmail Forwarding Confirmation - Receive Mail from support@acme.example',
      body:
        'support@acme.example has requested to automatically forward mail to your email address.\r\nConfirmation code: 123456789\r\n\r\n' +
        'To allow support@acme.example to automatically forward mail to your address, please click the link below to confirm the request:\r\n\r\n' +
        'https://mail-settings.google.com/mail/vf-%5BANGjdJ8xyz%5D-abc123\r\n\r\nAlso see https://evil.example/mail/phish\r\n',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const got = r.body.received[0];
    assert.equal(got.caseId, null);
    assert.equal(got.rule, 'not threaded: autoreply');
    const events = await stack.store.db
      .collection<{ type: string; data: Record<string, unknown> }>('events')
      .find({ tenantId: t.id, type: 'tenant.forwarding_confirmation' })
      .toArray();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.data.confirmationUrl, 'https://mail-settings.google.com/mail/vf-%5BANGjdJ8xyz%5D-abc123');
    assert.equal(events[0]!.data.code, '123456789');
  });

  test('a bounce is stored and classified, not threaded as a reply; the bounce handling applies it and the case hears of it', async () => {
    const m = await send(t, { subject: 'Bounce me' });
    await sent(t, m.id);
    const dsn = [
      'From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>',
      'To: support@acme.example',
      'Subject: Undelivered Mail Returned to Sender',
      `Message-ID: ${newId('dsn')}`,
      `Date: ${new Date().toUTCString()}`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
      '',
      '--B',
      'Content-Type: text/plain',
      '',
      "I'm sorry to have to inform you that your message could not be delivered.",
      '--B',
      'Content-Type: message/delivery-status',
      '',
      'Reporting-MTA: dns; mx.customer.example',
      '',
      'Final-Recipient: rfc822; alice@customer.example',
      'Action: failed',
      'Status: 5.1.1',
      'Diagnostic-Code: smtp; 550 5.1.1 User unknown',
      '--B',
      'Content-Type: text/rfc822-headers',
      '',
      `Message-ID: ${m.messageId}`,
      'Subject: Bounce me',
      '--B--',
      '',
    ].join('\r\n');
    const res = await fetch(`${stack.baseUrl}/v1/inbound/mime/${t.inboundKey}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MIME_SECRET}`, 'content-type': 'message/rfc822' },
      body: dsn,
    });
    const body = (await res.json()) as { received: Array<{ kind: string; caseId: string | null; id: string }> };
    assert.equal(res.status, 200);
    assert.equal(body.received[0]!.kind, 'bounce');
    assert.equal(body.received[0]!.caseId, null);
    const doc = await stack.repos.inbound.get(t.id, body.received[0]!.id);
    assert.equal(doc.classification.originalMessageId, m.messageId);
    assert.deepEqual(doc.bounceHandling, {
      messageId: m.id,
      recipients: [{ address: 'alice@customer.example', matched: true, suppressed: true }],
    });
    const msg = await api(stack, 'GET', `/v1/messages/${m.id}`, { key: t.key });
    assert.equal(msg.body.recipients[0].status, 'bounced');
    assert.equal(
      (await stack.suppressions.suppressedAmong(t.id, ['alice@customer.example'])).get('alice@customer.example')?.source,
      'bounce',
    );
    const s = await summaryWhen(t.id, m.caseId, (x) => x.counts.bounced === 1, 'the case to hear of the bounce');
    assert.equal(s.counts.inbound, 0);
    // Alice is suppressed now: later tests of this tenant write to other addresses.
    await stack.store.db.collection('suppressions').deleteOne({ _id: `${t.id}:alice@customer.example` } as never);
  });
});

describe('bad input: a clear 4xx, or stored with the part dropped; never a crash or a partial write', () => {
  const count = async () => ({
    messages: await stack.store.db.collection('inbound_messages').countDocuments({ tenantId: t.id }),
    files: await stack.store.db.collection('inbound_files.files').countDocuments({ 'metadata.tenantId': t.id }),
  });

  test('wrong secret or signature → 401; unknown key or provider → 404; nothing stored', async () => {
    const before = await count();
    for (const variant of ['mime', 'postmark', 'mailgun-parsed', 'brevo', 'sendgrid-parsed', 'sendgrid-raw']) {
      const r = await deliver(t, variant, { messageId: newId('bad') }, { auth: 'wrong' });
      assert.equal(r.status, 401, `${variant}: ${JSON.stringify(r.body)}`);
    }
    const unknown = await fetch(`${stack.baseUrl}/v1/inbound/mime/ib_${'x'.repeat(32)}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MIME_SECRET}` },
      body: replyMime({ messageId: newId('x') }),
    });
    assert.equal(unknown.status, 404);
    const provider = await fetch(`${stack.baseUrl}/v1/inbound/gmail/${t.inboundKey}`, { method: 'POST', body: 'x' });
    assert.equal(provider.status, 404);
    assert.deepEqual(await count(), before);
  });

  test("inbound settings never show their secrets; a tenant key cannot touch another tenant's", async () => {
    const r = await api(stack, 'GET', `/v1/tenants/${t.id}/inbound/postmark`, { key: t.key });
    assert.equal(r.status, 200);
    assert.equal(r.body.username, 'postmark');
    assert.equal(r.body.passwordSet, true);
    assert.ok(!JSON.stringify(r.body).includes(POSTMARK.password));
    const mg = await api(stack, 'GET', `/v1/tenants/${t.id}/inbound/mailgun`, { key: t.key });
    assert.ok(!JSON.stringify(mg.body).includes(MAILGUN_KEY));
    const stored = await stack.store.db.collection('inbound_settings').findOne({ _id: `${t.id}:mailgun` } as never);
    assert.ok(!JSON.stringify(stored).includes(MAILGUN_KEY), 'sealed at rest');
    const other = await tenant('inbound-peek');
    assert.equal((await api(stack, 'GET', `/v1/tenants/${t.id}/inbound/postmark`, { key: other.key })).status, 404);
    const gen = await api(stack, 'PUT', `/v1/tenants/${other.id}/inbound/mime`, { key: other.key, body: {} });
    assert.match(gen.body.bearerToken, /^ibs_/);
    const bad = await api(stack, 'PUT', `/v1/tenants/${other.id}/inbound/ses`, { key: other.key, body: { topicArns: ['not-an-arn'] } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.errors[0].field, 'topicArns.0');
  });

  test('an internal failure (Brevo attachment download) answers 5xx and stores nothing; the retry stores it', async () => {
    const before = await count();
    const item = (token: string) => ({
      items: [
        {
          Uuid: ['u-down'],
          MessageId: '<brevo-down@mail.customer.example>',
          From: { Name: 'A', Address: 'alice@customer.example' },
          To: [{ Name: null, Address: 'support@acme.example' }],
          Subject: 'With a file',
          RawTextBody: 'see file',
          Attachments: [{ Name: 'f.pdf', ContentType: 'application/pdf', ContentLength: 10, DownloadToken: token }],
        },
      ],
    });
    const post = (token: string) =>
      fetch(`${stack.baseUrl}/v1/inbound/brevo/${t.inboundKey}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${BREVO_BEARER}` },
        body: JSON.stringify(item(token)),
      });
    const failed = await post('brevo-down');
    assert.ok(failed.status >= 500, `status ${failed.status}`);
    assert.deepEqual(await count(), before);
    const ok = await post('brevo-up');
    assert.equal(ok.status, 200);
    const id = ((await ok.json()) as { received: Array<{ id: string }> }).received[0]!.id;
    const doc = await stack.repos.inbound.get(t.id, id);
    assert.equal((await stack.repos.inbound.readFile(doc.parts[0]!.fileId)).toString(), 'attachment for brevo-up');
  });

  test("SNS: a subscription confirmation for the tenant's topic is confirmed; another topic's is refused", async () => {
    const url = `https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=${TOPIC}&Token=abc`;
    const post = (topic: string) =>
      fetch(`${stack.baseUrl}/v1/inbound/ses/${t.inboundKey}`, {
        method: 'POST',
        headers: {
          'content-type': 'text/plain; charset=UTF-8',
          'x-amz-sns-message-type': 'SubscriptionConfirmation',
          'x-amz-sns-topic-arn': topic,
        },
        body: JSON.stringify(
          snsEnvelope(signer.key, {
            Type: 'SubscriptionConfirmation',
            Message: 'You have chosen to subscribe to the topic',
            SubscribeURL: url,
            Token: 'abc',
            TopicArn: topic,
          }),
        ),
      });
    const ok = await post(TOPIC);
    assert.equal(ok.status, 200);
    assert.match(((await ok.json()) as { ack: string }).ack, /confirmed/);
    assert.deepEqual(confirmed, [url]);
    assert.equal((await post('arn:aws:sns:eu-west-1:999999999999:someone-else')).status, 401);
    assert.deepEqual(confirmed, [url]);
  });

  test('a replayed Mailgun token is refused', async () => {
    const sig = mailgunSigned(MAILGUN_KEY);
    const post = (messageId: string) =>
      fetch(`${stack.baseUrl}/v1/inbound/mailgun/${t.inboundKey}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams([
          ['recipient', 'support@acme.example'],
          ['body-mime', replyMime({ messageId })],
          ['timestamp', sig.timestamp],
          ['token', sig.token],
          ['signature', sig.signature],
        ]).toString(),
      });
    assert.equal((await post(newId('mg'))).status, 200);
    const replay = await post(newId('mg-replay'));
    assert.equal(replay.status, 401);
    assert.match(((await replay.json()) as { detail: string }).detail, /already used/);
  });

  test('malformed payloads and missing fields → 400 naming the field', async () => {
    const before = await count();
    const url = (p: string) => `${stack.baseUrl}/v1/inbound/${p}/${t.inboundKey}`;
    const auth = {
      authorization: `Basic ${Buffer.from(`${POSTMARK.username}:${POSTMARK.password}`).toString('base64')}`,
      'content-type': 'application/json',
    };
    const bad = await fetch(url('postmark'), { method: 'POST', headers: auth, body: '{"Subject": ' });
    assert.equal(bad.status, 400);
    const wrongType = await fetch(url('postmark'), { method: 'POST', headers: auth, body: JSON.stringify({ Subject: 42, Headers: 'x' }) });
    const p = (await wrongType.json()) as { errors: Array<{ field: string }> };
    assert.equal(wrongType.status, 400);
    assert.deepEqual(p.errors.map((e) => e.field).sort(), ['Headers', 'Subject']);
    const brevo = await fetch(url('brevo'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${BREVO_BEARER}` },
      body: JSON.stringify({ items: [] }),
    });
    assert.equal(brevo.status, 400);
    const sg = multipart([['to', 'x@y.example']]);
    const sendgrid = await fetch(url('sendgrid'), {
      method: 'POST',
      headers: { 'content-type': sg.contentType, authorization: basic(SENDGRID) },
      body: sg.body,
    });
    assert.equal(sendgrid.status, 400);
    assert.match(((await sendgrid.json()) as { detail: string }).detail, /headers/);
    const empty = await fetch(url('mime'), { method: 'POST', headers: { authorization: `Bearer ${MIME_SECRET}` } });
    assert.equal(empty.status, 400);
    assert.deepEqual(await count(), before);
  });

  test('non-UTF-8 charsets are decoded; an encoded CR/LF in the subject cannot inject a header', async () => {
    const injected = Buffer.from('Hola\r\nBcc: victim@example.com').toString('base64');
    const raw = Buffer.concat([
      Buffer.from(
        [
          'From: =?ISO-8859-1?Q?Jos=E9_P=E9rez?= <jose@customer.example>',
          'To: support@acme.example',
          `Subject: =?UTF-8?B?${injected}?=`,
          `Message-ID: ${newId('latin')}`,
          'MIME-Version: 1.0',
          'Content-Type: multipart/alternative; boundary="b1"',
          '',
          '--b1',
          'Content-Type: text/plain; charset=ISO-8859-1',
          'Content-Transfer-Encoding: 8bit',
          '',
          '',
        ].join('\r\n'),
      ),
      Buffer.from('Caf\xe9 con ni\xf1os, se\xf1or', 'latin1'),
      Buffer.from(
        [
          '',
          '--b1',
          'Content-Type: text/html; charset=ISO-2022-JP',
          'Content-Transfer-Encoding: 7bit',
          '',
          '\x1b$B$3$s$K$A$O\x1b(B',
          '--b1--',
          '',
        ].join('\r\n'),
        'latin1',
      ),
    ]);
    const res = await fetch(`${stack.baseUrl}/v1/inbound/mime/${t.inboundKey}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MIME_SECRET}` },
      body: raw,
    });
    assert.equal(res.status, 200);
    const id = ((await res.json()) as { received: Array<{ id: string }> }).received[0]!.id;
    const doc = await stack.repos.inbound.get(t.id, id);
    assert.equal(doc.text.trim(), 'Café con niños, señor');
    assert.match(doc.html ?? '', /こんにちは/);
    assert.equal(doc.from?.name, 'José Pérez');
    assert.equal(doc.subject, 'Hola Bcc: victim@example.com');
    assert.doesNotMatch(doc.subject, /[\r\n]/);
  });

  test('an attachment over the limit: the message is stored, the part dropped with the reason', async () => {
    const big = Buffer.alloc(150_000, 7).toString('base64').replace(/.{76}/g, '$&\r\n');
    const raw = [
      'From: alice@customer.example',
      'To: support@acme.example',
      'Subject: With attachments',
      `Message-ID: ${newId('att')}`,
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="m"',
      '',
      '--m',
      'Content-Type: text/plain',
      '',
      'see attached',
      '--m',
      'Content-Type: application/octet-stream; name="big.bin"',
      'Content-Disposition: attachment; filename="big.bin"',
      'Content-Transfer-Encoding: base64',
      '',
      big,
      '--m',
      'Content-Type: text/csv; name="small.csv"',
      'Content-Disposition: attachment; filename="small.csv"',
      '',
      'a,b\r\n1,2',
      '--m--',
      '',
    ].join('\r\n');
    const res = await fetch(`${stack.baseUrl}/v1/inbound/mime/${t.inboundKey}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MIME_SECRET}` },
      body: raw,
    });
    assert.equal(res.status, 200);
    const got = ((await res.json()) as { received: Array<{ id: string; dropped: number }> }).received[0]!;
    assert.equal(got.dropped, 1);
    const doc = await stack.repos.inbound.get(t.id, got.id);
    assert.deepEqual(
      doc.parts.map((p) => p.filename),
      ['small.csv'],
    );
    assert.equal((await stack.repos.inbound.readFile(doc.parts[0]!.fileId)).toString(), 'a,b\r\n1,2');
    assert.equal(doc.dropped[0]!.filename, 'big.bin');
    assert.match(doc.dropped[0]!.reason, /100000-byte attachment limit/);
    // The product reads it through the API; another tenant cannot.
    const view = await api(stack, 'GET', `/v1/inbound-messages/${got.id}`, { key: t.key });
    assert.equal(view.status, 200);
    assert.equal(view.body.text.trim(), 'see attached');
    assert.deepEqual(
      view.body.parts.map((p: { filename: string; size: number }) => [p.filename, p.size]),
      [['small.csv', 8]],
    );
    assert.match(view.body.dropped[0].reason, /attachment limit/);
    const part = await fetch(`${stack.baseUrl}/v1/inbound-messages/${got.id}/parts/0`, { headers: { authorization: `Bearer ${t.key}` } });
    assert.equal(part.status, 200);
    assert.match(part.headers.get('content-disposition') ?? '', /^attachment; filename\*=UTF-8''small\.csv$/);
    assert.equal(await part.text(), 'a,b\r\n1,2');
    const reader = await tenant('inbound-reader');
    assert.equal((await api(stack, 'GET', `/v1/inbound-messages/${got.id}`, { key: reader.key })).status, 404);
    assert.equal((await api(stack, 'GET', `/v1/inbound-messages/${got.id}/parts/0`, { key: reader.key })).status, 404);
    assert.equal((await api(stack, 'GET', `/v1/inbound-messages/${got.id}/parts/5`, { key: t.key })).status, 404);
  });

  test('enormous or deeply nested MIME: refused with 400 (or 413), nothing stored', async () => {
    const before = await count();
    let nested = 'Content-Type: text/plain\r\n\r\ndeep\r\n';
    for (let i = 0; i < 300; i++) nested = `Content-Type: multipart/mixed; boundary="n${i}"\r\n\r\n--n${i}\r\n${nested}--n${i}--\r\n`;
    const deep = `From: a@customer.example\r\nTo: support@acme.example\r\nSubject: deep\r\nMessage-ID: ${newId('deep')}\r\nMIME-Version: 1.0\r\n${nested}`;
    const r1 = await fetch(`${stack.baseUrl}/v1/inbound/mime/${t.inboundKey}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MIME_SECRET}` },
      body: deep,
    });
    assert.equal(r1.status, 400);
    assert.match(((await r1.json()) as { detail: string }).detail, /MIME/);
    const huge = `From: a@customer.example\r\nSubject: huge\r\nMessage-ID: ${newId('huge')}\r\n\r\n${'x'.repeat(3_100_000)}`;
    const r2 = await fetch(`${stack.baseUrl}/v1/inbound/mime/${t.inboundKey}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${MIME_SECRET}` },
      body: huge,
    });
    assert.equal(r2.status, 413);
    assert.deepEqual(await count(), before);
  });
});

describe('cases', () => {
  test('GET case and timeline, close and reopen; another tenant gets 404', async () => {
    const m = await send(t, { subject: 'Case API' });
    await sent(t, m.id);
    const got = await eventually(
      async () => {
        const r = await api(stack, 'GET', `/v1/cases/${m.caseId}`, { key: t.key });
        return r.status === 200 && r.body.counts.sent === 1 ? r.body : undefined;
      },
      30_000,
      'case saved',
    );
    assert.equal(got.status, 'open');
    assert.equal(got.subject, 'Case API');
    assert.deepEqual(got.participants, ['alice@customer.example']);
    // One message and its outcome: the case lives in the store; no workflow was started for it.
    assert.equal((await stack.repos.cases.get(t.id, m.caseId)).live, false);
    await assert.rejects(stack.temporal.workflow.getHandle(caseWorkflowId(t.id, m.caseId)).describe(), /not found/i);
    // Closing makes it a workflow, which starts from what the store had (the send).
    const closed = await api(stack, 'POST', `/v1/cases/${m.caseId}/close`, { key: t.key });
    assert.equal(closed.status, 200, JSON.stringify(closed.body));
    assert.equal(closed.body.status, 'closed');
    assert.equal((await summary(t.id, m.caseId)).status, 'closed');
    assert.equal((await summary(t.id, m.caseId)).counts.sent, 1);
    // A human reply reopens it.
    await deliver(t, 'mime', { messageId: newId('reopen'), inReplyTo: m.messageId, subject: 'Re: Case API' });
    await summaryWhen(t.id, m.caseId, (s) => s.status === 'open' && s.counts.inbound === 1, 'reopened by the reply');
    const reclosed = await api(stack, 'POST', `/v1/cases/${m.caseId}/close`, { key: t.key });
    assert.equal(reclosed.body.status, 'closed');
    const reopened = await api(stack, 'POST', `/v1/cases/${m.caseId}/reopen`, { key: t.key });
    assert.equal(reopened.body.status, 'open');
    const other = await tenant('inbound-other');
    assert.equal((await api(stack, 'GET', `/v1/cases/${m.caseId}`, { key: other.key })).status, 404);
    assert.equal((await api(stack, 'GET', `/v1/cases/${m.caseId}/timeline`, { key: other.key })).status, 404);
    assert.equal((await api(stack, 'POST', `/v1/cases/${m.caseId}/close`, { key: other.key })).status, 404);
    assert.equal((await api(stack, 'GET', `/v1/cases/${m.caseId}?tenantId=${t.id}`, { key: stack.adminKey })).status, 200);
    // The case workflow's history (signals, updates, activities) replays deterministically.
    const history = await stack.temporal.workflow.getHandle(caseWorkflowId(t.id, m.caseId)).fetchHistory();
    await Worker.runReplayHistory({ ...workflowSource(), dataConverter: dataConverter(stack.keyring) }, history);
    // A case whose workflow ended (terminated here) starts again from its saved summary.
    const before = await summary(t.id, m.caseId);
    await eventually(async () => (await stack.repos.cases.get(t.id, m.caseId)).eventCount === before.eventCount, 30_000, 'summary saved');
    await stack.temporal.workflow.getHandle(caseWorkflowId(t.id, m.caseId)).terminate('test');
    await recordCaseEvent(
      { cases: stack.repos.cases, events: stack.repos.events, temporal: stack.temporal, taskQueue: stack.config.temporal.taskQueue },
      t.id,
      m.caseId,
      { eventId: `opened:${m.id}`, kind: 'opened', at: Date.now() },
    );
    const after = await summaryWhen(t.id, m.caseId, (x) => x.counts.opened === 1, 'restarted case');
    assert.equal(after.eventCount, before.eventCount + 1);
    assert.equal(after.counts.inbound, before.counts.inbound);
    assert.equal(after.status, 'open');
    const events = await stack.repos.events.listForTenant(t.id, 1000);
    assert.ok(events.some((e) => e.type === 'case.updated' && e.caseId === m.caseId));
    assert.ok(events.some((e) => e.type === 'inbound.received' && e.caseId === m.caseId));
  });

  test('a case with a thousand events stays healthy: continued-as-new, summary right, duplicates ignored', async () => {
    const caseId = 'busy-case-1';
    const deps = {
      cases: stack.repos.cases,
      events: stack.repos.events,
      temporal: stack.temporal,
      taskQueue: stack.config.temporal.taskQueue,
    };
    const ids = Array.from({ length: 1000 }, (_, i) => i);
    // Inbound mail always goes to the case workflow (opens alone would stay in the store).
    const inbound = (n: number | string, at: number) => ({ eventId: `inbound:${n}`, kind: 'inbound' as const, at });
    for (let i = 0; i < ids.length; i += 20) {
      await Promise.all(ids.slice(i, i + 20).map((n) => recordCaseEvent(deps, t.id, caseId, inbound(n, Date.now() + n))));
    }
    // Redelivered signals (a producer retrying) do not count twice.
    await Promise.all([0, 1, 2].map((n) => recordCaseEvent(deps, t.id, caseId, inbound(n, Date.now()))));
    await summaryWhen(t.id, caseId, (x) => x.eventCount >= 1000 && x.runs >= 2, 'a thousand events, in more than one run');
    // Signals are handled in order: once this last one shows, the redeliveries above were seen too.
    await recordCaseEvent(deps, t.id, caseId, { eventId: 'clicked:last', kind: 'clicked', at: Date.now() });
    const s = await summaryWhen(t.id, caseId, (x) => x.counts.clicked === 1, 'the last event');
    assert.equal(s.counts.inbound, 1000);
    assert.equal(s.eventCount, 1001);
    assert.ok(s.runs >= 2, `continue-as-new should have happened (runs=${s.runs})`);
    const desc = await stack.temporal.workflow.getHandle(caseWorkflowId(t.id, caseId)).describe();
    assert.equal(desc.status.name, 'RUNNING');
    assert.ok(desc.historyLength < 4096, `history ${desc.historyLength}`);
    const view = await eventually(
      async () => {
        const r = await api(stack, 'GET', `/v1/cases/${caseId}`, { key: t.key });
        return r.body?.counts?.clicked === 1 ? r.body : undefined;
      },
      30_000,
      'saved summary',
    );
    assert.equal(view.counts.inbound, 1000);
    assert.equal(view.eventCount, 1001);
  });

  test('a case of outbound outcomes, opens and clicks stays in the store; its first reply starts the workflow, which continues from there', async () => {
    const caseId = 'quiet-case-1';
    const deps = {
      cases: stack.repos.cases,
      events: stack.repos.events,
      temporal: stack.temporal,
      taskQueue: stack.config.temporal.taskQueue,
    };
    const handle = stack.temporal.workflow.getHandle(caseWorkflowId(t.id, caseId));
    const kinds = ['sent', 'opened', 'clicked'] as const;
    // 60 events from 20 concurrent producers, then every one of them again (retries): compare-and-set
    // on the record must count each exactly once.
    const all = Array.from({ length: 60 }, (_, n) => ({
      eventId: `${kinds[n % 3]}:q${n}`,
      kind: kinds[n % 3]!,
      at: Date.now() + n,
      participants: [`p${n % 4}@customer.example`],
    }));
    for (let i = 0; i < all.length; i += 20) await Promise.all(all.slice(i, i + 20).map((e) => recordCaseEvent(deps, t.id, caseId, e)));
    await Promise.all(all.slice(0, 20).map((e) => recordCaseEvent(deps, t.id, caseId, e)));
    const doc = await stack.repos.cases.get(t.id, caseId);
    if (doc.live === false) {
      // No workflow was started for it: Temporal has never heard of this case.
      await assert.rejects(handle.describe(), /not found/i);
      assert.equal(doc.eventCount, 60);
      assert.deepEqual([doc.counts.sent, doc.counts.opened, doc.counts.clicked], [20, 20, 20]);
      assert.deepEqual([...doc.participants].sort(), [
        'p0@customer.example',
        'p1@customer.example',
        'p2@customer.example',
        'p3@customer.example',
      ]);
      const updates = (await stack.repos.events.listForTenant(t.id, 5000)).filter((e) => e.type === 'case.updated' && e.caseId === caseId);
      assert.equal(updates.length, 60, 'one case.updated per version');
    } else {
      // Twenty producers colliding more than eight times in a row hand the case to its workflow; it must still count right.
      const s = await summaryWhen(t.id, caseId, (x) => x.eventCount === 60, 'sixty events in the workflow');
      assert.deepEqual([s.counts.sent, s.counts.opened, s.counts.clicked], [20, 20, 20]);
    }
    // The first reply makes the case a workflow, which starts from everything the store had.
    await recordCaseEvent(deps, t.id, caseId, {
      eventId: 'inbound:q-reply',
      kind: 'inbound',
      at: Date.now(),
      participants: ['p9@customer.example'],
    });
    const s = await summaryWhen(t.id, caseId, (x) => x.counts.inbound === 1, 'the reply in the workflow');
    assert.equal(s.eventCount, 61);
    assert.deepEqual([s.counts.sent, s.counts.opened, s.counts.clicked], [20, 20, 20]);
    // From now on opens go to the workflow too, and a repeat of an event the store applied is still ignored.
    await recordCaseEvent(deps, t.id, caseId, all[59]!);
    await recordCaseEvent(deps, t.id, caseId, { eventId: 'opened:q-late', kind: 'opened', at: Date.now() });
    const last = await summaryWhen(t.id, caseId, (x) => x.counts.opened === 21, 'an open after the reply');
    assert.equal(last.eventCount, 62);
    assert.equal((await stack.repos.cases.get(t.id, caseId)).live, true);
  });

  test('the OpenAPI document describes the inbound and case routes', async () => {
    const doc = (await api(stack, 'GET', '/openapi.json')).body;
    for (const [p, m] of [
      ['/v1/inbound/{provider}/{inboundKey}', 'post'],
      ['/v1/tenants/{id}/inbound/{provider}', 'put'],
      ['/v1/tenants/{id}/inbound/{provider}', 'get'],
      ['/v1/tenants/{id}/inbound/{provider}', 'delete'],
      ['/v1/inbound-messages/{id}', 'get'],
      ['/v1/inbound-messages/{id}/parts/{index}', 'get'],
      ['/v1/cases/{id}', 'get'],
      ['/v1/cases/{id}/timeline', 'get'],
      ['/v1/cases/{id}/close', 'post'],
      ['/v1/cases/{id}/reopen', 'post'],
    ] as const) {
      assert.ok(doc.paths[p]?.[m], `${m} ${p} missing`);
    }
  });
});
