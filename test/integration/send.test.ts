import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { MessageIdKey, SendStatusKey, TenantIdKey } from '../../src/temporal/search-attributes';
import { makeTestPki, type TestPki } from '../support/certs';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import type { PeerConfig } from '../support/smtp-peer-process';
import { api, messageUntil, startStack, type Stack } from '../support/stack';
import { sendWorkflowId } from '../../src/temporal/handoffs/send-message';

/**
 * Outbound sending end to end: API → Temporal workflow → nodemailer → a real SMTP server process
 * whose answers each test scripts. Retry delays are shortened through the same environment
 * variables production uses; everything else is the production path.
 */
let stack: Stack;
let pki: TestPki;
const peers: SmtpPeer[] = [];
const PASSWORD = 'right-password';
const USER = 'ops@acme.example';

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack({
    SEND_RETRY_INITIAL_MS: '300',
    SEND_RETRY_MAX_MS: '2000',
    SEND_GREYLIST_DELAY_MS: '1500',
    SEND_THROTTLE_PAUSE_MS: '500',
  });
});
after(async () => {
  await Promise.all([stack?.stop(), ...peers.map((p) => p.stop())]);
});

async function peer(extra: Partial<PeerConfig> = {}): Promise<SmtpPeer> {
  const p = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { [USER]: PASSWORD }, ...extra });
  peers.push(p);
  return p;
}

let n = 0;
async function tenant(port: number, extra: Record<string, unknown> = {}): Promise<{ id: string; key: string }> {
  const id = `send-${++n}`;
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: 'Send test',
      domains: ['acme.example'],
      smtp: { host: 'localhost', port, security: 'starttls', tls: { ca: pki.caCert } },
      auth: { type: 'password', user: USER, password: PASSWORD },
      ...extra,
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return { id, key: r.body.apiKey };
}

/** The tenant's message events (case.updated comes and goes with the case workflow), as strings. */
async function eventsOf(tenantId: string, count: number): Promise<string[]> {
  let got: string[] = [];
  await eventually(
    async () => {
      got = (await stack.repos.events.listForTenant(tenantId))
        .filter((e) => e.type.startsWith('message.'))
        .map(
          (e) =>
            `${e.type}${typeof e.data.recipient === 'string' ? `:${e.data.recipient}` : ''}:${typeof e.data.status === 'string' ? e.data.status : ''}`,
        );
      return got.length >= count;
    },
    10_000,
    `${count} events`,
  ).catch(() => undefined);
  return got;
}

const message = (over: Record<string, unknown> = {}) => ({
  from: { address: 'support@acme.example', name: 'Acme Support' },
  to: ['alice@customer.example'],
  subject: 'Your case #42',
  text: 'Hello Alice',
  html: '<p>Hello <b>Alice</b></p>',
  ...over,
});

async function send(key: string, body: Record<string, unknown>) {
  const r = await api(stack, 'POST', '/v1/messages', { key, body });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body as { id: string; messageId: string; status: string; caseId: string | null };
}

const until = (key: string, id: string, statuses: string[], timeoutMs = 30_000) => messageUntil(stack, key, id, statuses, timeoutMs);

describe('sending', () => {
  test('250: accepted, the server got the exact Message-ID once, status visible in the Web UI attribute', async () => {
    const p = await peer();
    const t = await tenant(p.port);
    const accepted = await send(t.key, message());
    assert.equal(accepted.status, 'queued');
    assert.match(accepted.messageId, /^<[A-Za-z0-9]+\.cartero@acme\.example>$/);
    const done = await until(t.key, accepted.id, ['sent']);
    assert.equal(done.recipients[0].status, 'sent');
    assert.match(done.attempts[0].reply, /^250 /);
    assert.equal(done.attempts.length, 1);
    const got = p.messages();
    assert.equal(got.length, 1);
    assert.equal(got[0]!.messageId, accepted.messageId);
    assert.deepEqual(got[0]!.to, ['alice@customer.example']);
    assert.match(got[0]!.raw, /^From: Acme Support <support@acme\.example>/m);
    const handle = stack.temporal.workflow.getHandle(sendWorkflowId(t.id, accepted.id));
    assert.deepEqual(await handle.result(), { status: 'sent' });
    const desc = await handle.describe();
    assert.equal(desc.typedSearchAttributes.get(SendStatusKey), 'sent');
    assert.equal(desc.typedSearchAttributes.get(TenantIdKey), t.id);
    assert.equal(desc.typedSearchAttributes.get(MessageIdKey), accepted.id);
  });

  test("a Return-Path in the tenant is every message's MAIL FROM; outside its domains it is refused; PATCH null restores From", async () => {
    const p = await peer();
    const t = await tenant(p.port, { returnPath: 'Bounces@acme.example' });
    const view = await api(stack, 'GET', `/v1/tenants/${t.id}`, { key: t.key });
    assert.equal(view.body.returnPath, 'bounces@acme.example');
    const first = await send(t.key, message());
    await until(t.key, first.id, ['sent']);
    const got = p.messages().find((m) => m.messageId === first.messageId);
    assert.equal(got?.from, 'bounces@acme.example');
    assert.match(got?.raw ?? '', /^From: Acme Support <support@acme\.example>/m);

    const refused = await api(stack, 'PATCH', `/v1/tenants/${t.id}`, { key: t.key, body: { returnPath: 'bounces@elsewhere.example' } });
    assert.equal(refused.status, 400);
    assert.match(JSON.stringify(refused.body), /returnPath/);
    const cleared = await api(stack, 'PATCH', `/v1/tenants/${t.id}`, { key: t.key, body: { returnPath: null } });
    assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
    assert.equal(cleared.body.returnPath, null);
    const second = await send(t.key, message());
    await until(t.key, second.id, ['sent']);
    assert.equal(p.messages().find((m) => m.messageId === second.messageId)?.from, 'support@acme.example');
  });

  test('550 for one of three recipients: that one bounced and suppressed, the others delivered', async () => {
    const p = await peer({
      rcptReplies: {
        'bob@customer.example': { code: 550, text: '5.1.1 <bob@customer.example>: Recipient address rejected: User unknown' },
      },
    });
    const t = await tenant(p.port);
    const accepted = await send(t.key, message({ to: ['alice@customer.example', 'bob@customer.example'], cc: ['carol@customer.example'] }));
    const done = await until(t.key, accepted.id, ['partially_sent', 'sent', 'failed']);
    assert.equal(done.status, 'partially_sent');
    const byAddr = Object.fromEntries(done.recipients.map((r: { address: string; status: string; reply: string }) => [r.address, r]));
    assert.equal(byAddr['bob@customer.example'].status, 'bounced');
    assert.match(byAddr['bob@customer.example'].reply, /^550 5\.1\.1/);
    assert.equal(byAddr['alice@customer.example'].status, 'sent');
    assert.equal(byAddr['carol@customer.example'].status, 'sent');
    assert.deepEqual(p.messages()[0]!.to.sort(), ['alice@customer.example', 'carol@customer.example']);
    // The product hears of both: one bounced recipient, one (partial) sending.
    assert.deepEqual((await eventsOf(t.id, 2)).sort(), ['message.bounced:bob@customer.example:5.1.1', 'message.sent:partially_sent']);
    const supp = await stack.suppressions.suppressedAmong(t.id, ['bob@customer.example']);
    assert.equal(supp.get('bob@customer.example')?.source, 'smtp');
    // The next message to bob is not even attempted.
    const again = await send(t.key, message({ to: ['bob@customer.example'] }));
    const sup = await until(t.key, again.id, ['suppressed', 'sent', 'failed', 'bounced']);
    assert.equal(sup.status, 'suppressed');
    assert.equal(sup.attempts.length, 0);
  });

  test('every recipient refused at RCPT: the message ends bounced with its reason; a later message to them ends suppressed with its reason', async () => {
    const refuse = { code: 550, text: '5.1.1 Recipient address rejected: User unknown' };
    const p = await peer({ rcptReplies: { 'dan@customer.example': refuse, 'eve@customer.example': refuse } });
    const t = await tenant(p.port);
    const accepted = await send(t.key, message({ to: ['dan@customer.example', 'eve@customer.example'] }));
    const done = await until(t.key, accepted.id, ['bounced', 'sent', 'failed', 'partially_sent']);
    assert.equal(done.status, 'bounced');
    assert.equal(done.reason, 'every recipient was refused permanently');
    assert.deepEqual(
      done.recipients.map((r: { status: string }) => r.status),
      ['bounced', 'bounced'],
    );
    assert.equal(p.messages().length, 0, 'nothing reached DATA');
    // The case was told the delivery failed (by the attempt that ended the message).
    const c = await eventually(
      async () => {
        const r = await api(stack, 'GET', `/v1/cases/${accepted.caseId}`, { key: t.key });
        return r.body?.counts?.delivery_failed === 1 ? r.body : undefined;
      },
      30_000,
      'case told of the failed delivery',
    );
    assert.equal(c.counts.sent, 0);
    const again = await send(t.key, message({ to: ['dan@customer.example'] }));
    const sup = await until(t.key, again.id, ['suppressed', 'sent', 'failed', 'bounced']);
    assert.equal(sup.status, 'suppressed');
    assert.match(sup.reason, /^every recipient is on the tenant's suppression list \(dan@customer\.example\)$/);
    const failedEvent = await eventually(
      async () => (await stack.repos.events.listForTenant(t.id, 100)).find((e) => e.type === 'message.failed' && e.messageId === again.id),
      10_000,
      'message.failed for the suppressed message',
    );
    assert.equal(failedEvent.data.status, 'suppressed');
    assert.equal(failedEvent.data.reason, sup.reason);
  });

  test('421 then success: retried and sent once', async () => {
    const p = await peer({ dataReplies: [{ code: 421, text: '4.7.0 Too many messages, slow down' }] });
    const t = await tenant(p.port);
    const accepted = await send(t.key, message());
    const done = await until(t.key, accepted.id, ['sent', 'failed']);
    assert.equal(done.status, 'sent');
    assert.equal(done.attempts.length, 2);
    assert.equal(done.attempts[0].outcome, 'throttled');
    assert.match(done.attempts[0].reply, /^421 /);
    assert.equal(p.messages().length, 1);
    assert.deepEqual(await eventsOf(t.id, 2), ['message.deferred:retrying', 'message.sent:sent']);
  });

  test('451 greylisting: waits at least the greylisting delay before the retry', async () => {
    const p = await peer({ dataReplies: [{ code: 451, text: '4.7.1 Greylisted, please try again later' }] });
    const t = await tenant(p.port);
    const accepted = await send(t.key, message());
    const done = await until(t.key, accepted.id, ['sent', 'failed']);
    assert.equal(done.status, 'sent');
    assert.equal(done.attempts[0].outcome, 'greylisted');
    const gap = Date.parse(done.attempts[1].at) - Date.parse(done.attempts[0].at);
    assert.ok(gap >= 1500, `retried after ${gap} ms, sooner than the 1500 ms greylisting delay`);
  });

  test('552 for the message: failed with the reply, no retry', async () => {
    const p = await peer({ dataReplies: [{ code: 552, text: '5.3.4 Message size exceeds fixed limit' }] });
    const t = await tenant(p.port);
    const accepted = await send(t.key, message());
    const done = await until(t.key, accepted.id, ['failed', 'sent']);
    assert.equal(done.status, 'failed');
    assert.equal(done.attempts.length, 1);
    assert.match(done.reason, /552 5\.3\.4/);
    assert.match(done.lastReply, /^552 /);
    assert.deepEqual(await eventsOf(t.id, 1), ['message.failed:failed']);
  });

  test('535 → waiting_credentials → tenant update → sent at once', async () => {
    const p = await peer();
    const t = await tenant(p.port, { auth: { type: 'password', user: USER, password: 'stale-password' } });
    const accepted = await send(t.key, message());
    const waiting = await until(t.key, accepted.id, ['waiting_credentials']);
    assert.match(waiting.reason, /535/);
    const before = Date.now();
    const patched = await api(stack, 'PATCH', `/v1/tenants/${t.id}`, {
      key: t.key,
      body: { auth: { type: 'password', user: USER, password: PASSWORD } },
    });
    assert.equal(patched.status, 200);
    const done = await until(t.key, accepted.id, ['sent', 'failed']);
    assert.equal(done.status, 'sent');
    assert.ok(Date.now() - before < 15_000, 'resumed by the signal, not by the 15-minute re-check');
    assert.equal(p.messages().length, 1);
  });

  test('connection refused, then the server comes up: retried and sent', async () => {
    const probe = await peer();
    const port = probe.port;
    await probe.stop();
    const t = await tenant(port);
    const accepted = await send(t.key, message());
    await until(t.key, accepted.id, ['retrying']);
    const p = await peer({ port });
    const done = await until(t.key, accepted.id, ['sent', 'failed']);
    assert.equal(done.status, 'sent');
    assert.match(done.attempts[0].reply, /ECONNREFUSED/);
    assert.equal(p.messages().length, 1);
  });

  test('the same idempotency key returns the same message and sends once', async () => {
    const p = await peer();
    const t = await tenant(p.port);
    const a = await send(t.key, message({ idempotencyKey: 'order-1234-confirmation' }));
    const b = await send(t.key, message({ idempotencyKey: 'order-1234-confirmation' }));
    assert.equal(b.id, a.id);
    assert.equal(b.messageId, a.messageId);
    await until(t.key, a.id, ['sent']);
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(p.messages().length, 1);
    // Repeated after the message was sent (its workflow completed): still the same message, and no
    // second run of its workflow (the id may not be reused).
    const handle = stack.temporal.workflow.getHandle(sendWorkflowId(t.id, a.id));
    const first = await handle.describe();
    const c = await send(t.key, message({ idempotencyKey: 'order-1234-confirmation' }));
    assert.equal(c.id, a.id);
    const after = await handle.describe();
    assert.equal(after.runId, first.runId, 'a second run of the send workflow was started');
    assert.equal(after.status.name, 'COMPLETED');
  });

  test('inReplyTo builds In-Reply-To and References from the stored thread and keeps the case', async () => {
    const p = await peer();
    const t = await tenant(p.port);
    const first = await send(t.key, message({ caseId: 'case-7' }));
    const second = await send(t.key, message({ inReplyTo: first.id }));
    const third = await send(t.key, message({ inReplyTo: second.id }));
    assert.equal(third.caseId, 'case-7');
    await until(t.key, third.id, ['sent']);
    const raw = p.messages().find((m) => m.messageId === third.messageId)!.raw;
    assert.match(raw, new RegExp(`^In-Reply-To: ${second.messageId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'm'));
    const refs = /^References: ([^\r\n]+(?:\r?\n[ \t][^\r\n]+)*)/m.exec(raw)![1]!.replace(/\s+/g, ' ');
    assert.equal(refs, `${first.messageId} ${second.messageId}`);
  });

  test('a scheduled message can be cancelled and is never sent', async () => {
    const p = await peer();
    const t = await tenant(p.port);
    const accepted = await send(t.key, message({ sendAt: new Date(Date.now() + 60_000).toISOString() }));
    assert.equal(accepted.status, 'scheduled');
    const del = await api(stack, 'DELETE', `/v1/messages/${accepted.id}`, { key: t.key });
    assert.equal(del.status, 200);
    assert.equal(del.body.status, 'cancelled');
    const handle = stack.temporal.workflow.getHandle(sendWorkflowId(t.id, accepted.id));
    assert.deepEqual(await handle.result(), { status: 'cancelled' });
    assert.equal((await api(stack, 'DELETE', `/v1/messages/${accepted.id}`, { key: t.key })).status, 409);
    assert.equal(p.messages().length, 0);
  });

  test('list: by status, newest first, with a cursor; other tenants see nothing', async () => {
    const p = await peer();
    const t = await tenant(p.port);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await send(t.key, message({ subject: `m${i}` }))).id);
    for (const id of ids) await until(t.key, id, ['sent']);
    const page1 = await api(stack, 'GET', '/v1/messages?status=sent&limit=2', { key: t.key });
    assert.equal(page1.status, 200);
    assert.deepEqual(
      page1.body.items.map((m: { id: string }) => m.id),
      [ids[2], ids[1]],
    );
    const page2 = await api(stack, 'GET', `/v1/messages?status=sent&limit=2&cursor=${page1.body.nextCursor}`, { key: t.key });
    assert.deepEqual(
      page2.body.items.map((m: { id: string }) => m.id),
      [ids[0]],
    );
    const other = await tenant(p.port);
    assert.equal((await api(stack, 'GET', `/v1/messages/${ids[0]}`, { key: other.key })).status, 404);
    assert.equal((await api(stack, 'GET', '/v1/messages', { key: other.key })).body.items.length, 0);
  });
});

describe('bad input is refused before any workflow starts', () => {
  let t: { id: string; key: string };
  before(async () => {
    const p = await peer();
    t = await tenant(p.port, { limits: { maxMessageBytes: 64 * 1024 } });
  });
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['CR/LF in an address', { to: ['alice@customer.example\r\nRCPT TO:<evil@x.example>'] }, 'to.0'],
    ['missing @', { to: ['alice.customer.example'] }, 'to.0'],
    ['over-long address', { to: [`${'a'.repeat(65)}@customer.example`] }, 'to.0'],
    ['no recipients', { to: [] }, 'to'],
    ['from outside the tenant domains', { from: 'ceo@other.example' }, 'from'],
    ['CR/LF in the subject', { subject: 'hi\r\nBcc: everyone@x.example' }, 'subject'],
    ['a reserved header', { headers: { 'Message-ID': '<x@y>' } }, 'headers.Message-ID'],
    ['header injection in a value', { headers: { 'X-Ticket': '1\r\nBcc: x@y.example' } }, 'headers.X-Ticket'],
    [
      'attachment over the size limit',
      {
        attachments: [
          { filename: 'big.bin', contentType: 'application/octet-stream', contentBase64: Buffer.alloc(100 * 1024).toString('base64') },
        ],
      },
      'attachments',
    ],
    ['sendAt in the past', { sendAt: '2020-01-01T00:00:00Z' }, 'sendAt'],
    ['unknown inReplyTo', { inReplyTo: 'm_doesnotexist0000' }, 'inReplyTo'],
    ['unknown field', { priority: 'high' }, 'priority'],
  ];
  for (const [name, over, field] of cases) {
    test(name, async () => {
      const before = await stack.messages.col.countDocuments({ tenantId: t.id });
      const r = await api(stack, 'POST', '/v1/messages', { key: t.key, body: message(over) });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      const fields = r.body.errors.map((e: { field: string }) => e.field);
      assert.ok(fields.includes(field), `expected ${field} in ${JSON.stringify(r.body.errors)}`);
      assert.equal(await stack.messages.col.countDocuments({ tenantId: t.id }), before);
    });
  }

  test('unknown tenant named by the admin key', async () => {
    const r = await api(stack, 'POST', '/v1/messages', { key: stack.adminKey, body: message({ tenantId: 'no-such-tenant' }) });
    assert.equal(r.status, 400);
    assert.equal(r.body.errors[0].field, 'tenantId');
    const none = await api(stack, 'POST', '/v1/messages', { key: stack.adminKey, body: message() });
    assert.equal(none.status, 400);
    assert.equal(none.body.errors[0].field, 'tenantId');
  });
});
