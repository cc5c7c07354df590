import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from '../support/stack';

/**
 * Issue 12, item 10: a recipient who knows a Message-ID forges a DSN or an ARF report naming a
 * co-recipient to get that address suppressed. Bob receives a message also sent to Carol; he sees
 * its Message-ID and Carol's address, writes a delivery report "from MAILER-DAEMON" saying Carol's
 * mailbox does not exist, and sends it to the tenant, whose inbound provider posts it to Cartero.
 * Carol must not be suppressed; the report is recorded as unverified. Reports that only the
 * recipient itself could have written (single-recipient message, Bcc recipient) still act.
 */
let stack: Stack;
let pki: TestPki;
let peer: SmtpPeer;
let key: string;
let inboundKey: string;
const TENANT = 'attack-bounce';
const MIME_SECRET = 'ibs_attack_bounce_secret_000001';

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack();
  peer = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } });
  key = await createPeerTenant(stack, TENANT, peer, pki.caCert);
  inboundKey = (await api(stack, 'GET', `/v1/tenants/${TENANT}`, { key })).body.inbound.key;
  const r = await api(stack, 'PUT', `/v1/tenants/${TENANT}/inbound/mime`, { key, body: { bearerToken: MIME_SECRET } });
  assert.equal(r.status, 200, JSON.stringify(r.body));
});
after(async () => {
  await Promise.all([stack?.stop(), peer?.stop()]);
});

async function sendAndWait(body: Record<string, unknown>): Promise<{ id: string; messageId: string; caseId: string }> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'support@acme.example', subject: 'Quarterly report', text: 'Hello all', ...body },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await messageUntil(stack, key, r.body.id, ['sent']);
  return r.body;
}

let seq = 0;
/** A Postfix-style RFC 3464 report, as anyone can write one: every header here is the writer's choice. */
function dsn(originalMessageId: string, recipient: string): string {
  return [
    'From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>',
    'To: support@acme.example',
    'Subject: Undelivered Mail Returned to Sender',
    `Message-ID: <forged-dsn-${++seq}-${Date.now()}@mx.customer.example>`,
    `Date: ${new Date().toUTCString()}`,
    'Auto-Submitted: auto-replied',
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
    `Final-Recipient: rfc822; ${recipient}`,
    'Action: failed',
    'Status: 5.1.1',
    'Diagnostic-Code: smtp; 550 5.1.1 User unknown',
    '--B',
    'Content-Type: text/rfc822-headers',
    '',
    `Message-ID: ${originalMessageId}`,
    'Subject: Quarterly report',
    '--B--',
    '',
  ].join('\r\n');
}

/** An ARF complaint (RFC 5965) naming `recipient`. */
function arf(originalMessageId: string, recipient: string): string {
  return [
    'From: <fbl@isp.example>',
    'To: support@acme.example',
    'Subject: FW: Quarterly report',
    `Message-ID: <forged-arf-${++seq}-${Date.now()}@isp.example>`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=feedback-report; boundary="F"',
    '',
    '--F',
    'Content-Type: text/plain',
    '',
    'This is an email abuse report.',
    '--F',
    'Content-Type: message/feedback-report',
    '',
    'Feedback-Type: abuse',
    'User-Agent: SomeGenerator/1.0',
    'Version: 1',
    `Original-Rcpt-To: <${recipient}>`,
    '--F',
    'Content-Type: text/rfc822-headers',
    '',
    'From: support@acme.example',
    `To: ${recipient}`,
    `Message-ID: ${originalMessageId}`,
    'Subject: Quarterly report',
    '--F--',
    '',
  ].join('\r\n');
}

/** Posts `raw` the way the tenant's configured inbound provider (here: mime) delivers mail sent to the tenant. */
async function deliver(raw: string): Promise<{ id: string; kind: string }> {
  const res = await fetch(`${stack.baseUrl}/v1/inbound/mime/${inboundKey}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${MIME_SECRET}`, 'content-type': 'message/rfc822' },
    body: raw,
  });
  const body = (await res.json()) as { received: Array<{ id: string; kind: string }> };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.received[0]!;
}

const suppressed = async (address: string) => (await api(stack, 'GET', `/v1/suppressions/${address}`, { key })).status === 200;
const eventsOf = async (messageId: string) => (await stack.events.listForTenant(TENANT, 1000)).filter((e) => e.messageId === messageId);

describe('forged reports naming a co-recipient', () => {
  test('a DSN written by recipient Bob naming co-recipient Carol: Carol is not suppressed; the report is recorded as unverified', async () => {
    const m = await sendAndWait({ to: ['bob@customer.example', 'carol@partner.example'] });
    const got = await deliver(dsn(m.messageId, 'carol@partner.example'));
    assert.equal(got.kind, 'bounce');
    const inbound = await stack.repos.inbound.get(TENANT, got.id);
    assert.deepEqual(inbound.bounceHandling, {
      messageId: m.id,
      recipients: [{ address: 'carol@partner.example', matched: true, suppressed: false, unverified: true }],
    });
    assert.equal(await suppressed('carol@partner.example'), false, 'Carol was suppressed by a forged report');
    const list = await api(stack, 'GET', '/v1/suppressions', { key });
    assert.ok(!JSON.stringify(list.body).includes('carol@partner.example'));
    // Nothing about the message changed but the record of the report.
    const view = await api(stack, 'GET', `/v1/messages/${m.id}`, { key });
    assert.equal(view.body.status, 'sent');
    assert.deepEqual(
      view.body.recipients.map((r: { address: string; status: string }) => [r.address, r.status]),
      [
        ['bob@customer.example', 'sent'],
        ['carol@partner.example', 'sent'],
      ],
    );
    const stored = await stack.messages.get(TENANT, m.id);
    assert.equal(stored.recipients[1]!.feedback, undefined);
    assert.equal(stored.recipients[1]!.unverifiedFeedback?.reason, 'userunknown');
    assert.equal(stored.recipients[1]!.unverifiedFeedback?.source, 'inbound:mime');
    const events = await eventsOf(m.id);
    assert.deepEqual(
      events.filter((e) => e.type.startsWith('message.b')).map((e) => [e.type, e.data.recipient]),
      [['message.bounce_unverified', 'carol@partner.example']],
    );
    assert.equal(events.find((e) => e.type === 'message.bounce_unverified')!.data.suppressed, false);
    // Carol still gets the tenant's next message.
    const next = await sendAndWait({ to: ['carol@partner.example'], subject: 'Next one' });
    assert.equal((await stack.messages.get(TENANT, next.id)).recipients[0]!.status, 'sent');
  });

  test('an ARF complaint written by Bob naming Cc recipient Dora: not suppressed, recorded as unverified', async () => {
    const m = await sendAndWait({ to: ['bob@customer.example'], cc: ['dora@partner.example'] });
    const got = await deliver(arf(m.messageId, 'dora@partner.example'));
    assert.equal(got.kind, 'complaint');
    assert.equal(await suppressed('dora@partner.example'), false);
    const stored = await stack.messages.get(TENANT, m.id);
    assert.equal(stored.recipients[1]!.unverifiedFeedback?.kind, 'complaint');
    assert.ok((await eventsOf(m.id)).some((e) => e.type === 'message.complaint_unverified' && e.data.recipient === 'dora@partner.example'));
    assert.ok(!(await eventsOf(m.id)).some((e) => e.type === 'message.complained'));
  });
});

describe('reports only the named recipient could have written still act', () => {
  test('single recipient: the DSN suppresses it and bounces the message', async () => {
    const m = await sendAndWait({ to: ['erin@customer.example'] });
    await deliver(dsn(m.messageId, 'erin@customer.example'));
    assert.equal(await suppressed('erin@customer.example'), true);
    const view = await eventually(
      async () => {
        const r = await api(stack, 'GET', `/v1/messages/${m.id}`, { key });
        return r.body.status === 'bounced' ? r.body : undefined;
      },
      10_000,
      'message bounced',
    );
    assert.equal(view.recipients[0].status, 'bounced');
    assert.ok((await eventsOf(m.id)).some((e) => e.type === 'message.bounced' && e.data.suppressed === true));
  });

  test('a Bcc recipient (no other recipient saw its address): the DSN naming it suppresses it', async () => {
    const m = await sendAndWait({ to: ['bob@customer.example'], bcc: ['frank@hidden.example'] });
    const raw = peer.messages().find((x) => x.messageId === m.messageId)!.raw;
    assert.ok(!raw.includes('frank@hidden.example'), 'the Bcc address is not in the message the other recipients see');
    await deliver(dsn(m.messageId, 'frank@hidden.example'));
    assert.equal(await suppressed('frank@hidden.example'), true);
    const stored = await stack.messages.get(TENANT, m.id);
    assert.equal(stored.recipients[1]!.status, 'bounced');
    assert.equal(stored.recipients[1]!.feedback?.reason, 'userunknown');
  });
});
