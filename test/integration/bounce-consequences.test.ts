import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { asMailVerdict } from '../../src/domain/mail/combine';
import { freePort } from '../../src/embedded/processes';
import { handleBounceOrComplaint } from '../../src/inbound/feedback';
import { verdictForRaw } from '../../src/inbound/verdict';
import type { EventDoc } from '../../src/store/events';
import { makeTestPki, type TestPki } from '../support/certs';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import type { PeerConfig } from '../support/smtp-peer-process';
import { api, createPeerTenant, messageUntil, startStack, type Stack } from '../support/stack';

/**
 * The consequence table of docs/bounces.md, row by row, end to end: API → send workflow → a real SMTP server
 * process whose RCPT / MAIL FROM / DATA replies each test scripts (the RCPT-time path), and real RFC 3464 DSNs
 * written by Debian's Postfix, read with the production verdict (Cartero + Sisimai) and applied (the DSN path).
 * Pauses and retries are shortened through the environment variables production reads.
 */
const QUOTA_PAUSE_MS = 8_000;
let stack: Stack;
let pki: TestPki;
const peers: SmtpPeer[] = [];

before(async () => {
  pki = makeTestPki(['localhost']);
  stack = await startStack({
    SEND_RETRY_INITIAL_MS: '300',
    SEND_RETRY_MAX_MS: '1000',
    SEND_GREYLIST_DELAY_MS: '500',
    SEND_THROTTLE_PAUSE_MS: '500',
    SEND_QUOTA_PAUSE_MS: String(QUOTA_PAUSE_MS),
  });
});
after(async () => {
  await Promise.all([stack?.stop(), ...peers.map((p) => p.stop())]);
});

async function peer(extra: Partial<PeerConfig> = {}): Promise<SmtpPeer> {
  const p = await SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' }, ...extra });
  peers.push(p);
  return p;
}

let n = 0;
async function tenantOn(p: SmtpPeer): Promise<{ id: string; key: string }> {
  const id = `conseq-${++n}`;
  return { id, key: await createPeerTenant(stack, id, p, pki.caCert) };
}

async function send(key: string, to: string[], subject = 'Your order'): Promise<{ id: string; messageId: string }> {
  const r = await api(stack, 'POST', '/v1/messages', { key, body: { from: 'support@acme.example', to, subject, text: 'hello' } });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body;
}

const eventsOf = async (tenantId: string, type: string): Promise<EventDoc[]> =>
  (await stack.repos.events.listForTenant(tenantId, 500)).filter((e) => e.type === type);

const suppressed = async (tenantId: string, address: string) =>
  (await stack.suppressions.suppressedAmong(tenantId, [address])).get(address);

describe('RCPT-time and transaction replies', { timeout: 180_000 }, () => {
  test('554 5.7.1 relay access denied at RCPT: that recipient failed, not suppressed, the tenant told; the others delivered', async () => {
    const p = await peer({
      rcptReplies: { 'bob@customer.example': { code: 554, text: '5.7.1 <bob@customer.example>: Relay access denied' } },
    });
    const t = await tenantOn(p);
    const m = await send(t.key, ['alice@customer.example', 'bob@customer.example']);
    const done = await messageUntil(stack, t.key, m.id, ['partially_sent', 'sent', 'failed', 'bounced']);
    assert.equal(done.status, 'partially_sent');
    const stored = await stack.messages.get(t.id, m.id);
    const bob = stored.recipients.find((r) => r.address === 'bob@customer.example')!;
    assert.equal(bob.status, 'failed');
    assert.match(bob.reply ?? '', /^554 5\.7\.1 .*Relay access denied/);
    assert.equal(bob.refusal?.consequence, 'tell-tenant');
    assert.equal(bob.refusal?.reason, 'norelaying');
    assert.equal(await suppressed(t.id, 'bob@customer.example'), undefined, 'a refusal about the sender suppresses nothing');
    const told = await eventually(async () => (await eventsOf(t.id, 'tenant.sending_refused'))[0], 10_000, 'tenant.sending_refused');
    assert.equal(told.messageId, m.id);
    assert.deepEqual(
      (told.data.recipients as Array<{ address: string; reason: string }>).map((r) => `${r.address} ${r.reason}`),
      ['bob@customer.example norelaying'],
    );
    assert.deepEqual(await eventsOf(t.id, 'message.bounced'), [], 'not announced as a bounce');
    // A later message to bob is attempted again (the address was never the problem).
    await p.configure({ rcptReplies: {} });
    const again = await send(t.key, ['bob@customer.example']);
    assert.equal((await messageUntil(stack, t.key, again.id, ['sent', 'failed', 'suppressed', 'bounced'])).status, 'sent');
  });

  test('550 5.7.26 DMARC and 550 5.7.1 policy refusals of every recipient: the message fails with the reason, nothing suppressed, the tenant told', async () => {
    const p = await peer({
      rcptReplies: {
        'carol@customer.example': {
          code: 550,
          text: "5.7.26 Unauthenticated email from acme.example is not accepted due to domain's DMARC policy",
        },
        'dave@customer.example': { code: 550, text: '5.7.1 Message rejected due to local policy' },
      },
    });
    const t = await tenantOn(p);
    const m = await send(t.key, ['carol@customer.example', 'dave@customer.example']);
    const done = await messageUntil(stack, t.key, m.id, ['failed', 'bounced', 'sent', 'partially_sent']);
    assert.equal(done.status, 'failed');
    assert.match(
      done.reason,
      /^refused for a reason about the sender \(authfailure\), not the recipients; nothing was suppressed: 550 5\.7\.26/,
    );
    assert.equal(p.messages().length, 0, 'nothing reached DATA');
    for (const a of ['carol@customer.example', 'dave@customer.example']) assert.equal(await suppressed(t.id, a), undefined, a);
    const stored = await stack.messages.get(t.id, m.id);
    assert.deepEqual(
      stored.recipients.map((r) => `${r.status} ${r.refusal?.reason}`),
      ['failed authfailure', 'failed policyviolation'],
    );
    await eventually(async () => (await eventsOf(t.id, 'tenant.sending_refused')).length === 1, 10_000, 'tenant.sending_refused');
    const failed = await eventually(async () => (await eventsOf(t.id, 'message.failed'))[0], 10_000, 'message.failed');
    assert.match(String(failed.data.reason), /about the sender/);
  });

  test('553 5.7.1 sender not owned at MAIL FROM: failed, nothing suppressed, the tenant told', async () => {
    const p = await peer({
      mailFromReplies: {
        'support@acme.example': { code: 553, text: '5.7.1 <support@acme.example>: Sender address rejected: not owned by user u' },
      },
    });
    const t = await tenantOn(p);
    const m = await send(t.key, ['erin@customer.example']);
    const done = await messageUntil(stack, t.key, m.id, ['failed', 'bounced', 'sent']);
    assert.equal(done.status, 'failed');
    assert.equal(await suppressed(t.id, 'erin@customer.example'), undefined);
    const told = await eventually(async () => (await eventsOf(t.id, 'tenant.sending_refused'))[0], 10_000, 'tenant.sending_refused');
    assert.deepEqual(
      (told.data.recipients as Array<{ reason: string }>).map((r) => r.reason),
      ['rejected'],
    );
  });

  test('452 4.2.2 and 552 5.2.2 mailbox full, 450 4.1.2 domain not found: retried, never suppressed, delivered once the server takes them', async () => {
    const p = await peer({
      rcptReplies: {
        'full@customer.example': { code: 452, text: '4.2.2 The email account that you tried to reach is over quota' },
        'fuller@customer.example': { code: 552, text: '5.2.2 Mailbox full' },
        'frank@dns-trouble.example': { code: 450, text: '4.1.2 <frank@dns-trouble.example>: Recipient address rejected: Domain not found' },
      },
    });
    const t = await tenantOn(p);
    const m = await send(t.key, ['full@customer.example', 'fuller@customer.example', 'frank@dns-trouble.example']);
    // Each refused at least twice: retried, not given up on.
    await eventually(
      () => p.events.filter((e) => e.type === 'rejected' && e.to === 'fuller@customer.example').length >= 2,
      30_000,
      'the 552 retried',
    );
    const mid = await stack.messages.get(t.id, m.id);
    assert.equal(mid.status, 'retrying');
    assert.deepEqual(
      mid.recipients.map((r) => r.status),
      ['pending', 'pending', 'pending'],
    );
    for (const a of ['full@customer.example', 'fuller@customer.example', 'frank@dns-trouble.example'])
      assert.equal(await suppressed(t.id, a), undefined, a);
    await p.configure({ rcptReplies: {} });
    const done = await messageUntil(stack, t.key, m.id, ['sent', 'failed', 'bounced', 'partially_sent']);
    assert.equal(done.status, 'sent');
    assert.equal(p.messages().length, 1);
    assert.ok(done.attempts.length >= 3, `${done.attempts.length} attempts`);
    assert.deepEqual(await eventsOf(t.id, 'message.bounced'), []);
  });

  test('550 5.1.1 unknown user: bounced and suppressed, with the reply, the reason and the rule kept on the suppression', async () => {
    const p = await peer({
      rcptReplies: {
        'ghost@customer.example': { code: 550, text: '5.1.1 <ghost@customer.example>: Recipient address rejected: User unknown' },
      },
    });
    const t = await tenantOn(p);
    const m = await send(t.key, ['ghost@customer.example']);
    const done = await messageUntil(stack, t.key, m.id, ['bounced', 'failed', 'sent']);
    assert.equal(done.status, 'bounced');
    const s = await suppressed(t.id, 'ghost@customer.example');
    assert.ok(s, 'suppressed');
    assert.equal(s.source, 'smtp');
    assert.equal(s.reason, 'userunknown at RCPT TO (rule suppress/userunknown)');
    assert.match(
      s.detail ?? '',
      new RegExp(`^message ${m.id} attempt 1: 550 5\\.1\\.1 <ghost@customer\\.example>: Recipient address rejected: User unknown$`),
    );
    const bounced = await eventually(async () => (await eventsOf(t.id, 'message.bounced'))[0], 10_000, 'message.bounced');
    assert.equal(bounced.data.suppressed, true);
    assert.equal(bounced.data.rule, 'suppress/userunknown');
    assert.deepEqual(await eventsOf(t.id, 'tenant.sending_refused'), []);
  });

  test('550 5.4.5 daily sending limit: the tenant pauses, its messages wait (not failed) and are sent once the pause ends', async () => {
    const quota =
      '5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852';
    const p = await peer({ dataReplies: [{ code: 550, text: quota }] });
    const t = await tenantOn(p);
    const first = await send(t.key, ['gina@customer.example'], 'first');
    await eventually(() => p.events.some((e) => e.type === 'rejected' && e.stage === 'data'), 30_000, 'the quota refusal');
    const refusedAt = p.events.find((e) => e.type === 'rejected')!.at;
    const paused = await eventually(async () => (await eventsOf(t.id, 'tenant.sending_paused'))[0], 10_000, 'tenant.sending_paused');
    assert.equal(paused.data.kind, 'daily');
    const pausedUntil = Date.parse(String(paused.data.pausedUntil));
    assert.ok(pausedUntil >= refusedAt + QUOTA_PAUSE_MS - 1000, `paused until ${pausedUntil}, refused at ${refusedAt}`);
    assert.equal((await stack.repos.permits.sendingPausedUntil(t.id, Date.now())) > 0, true, 'the pause is in the store');

    // Waiting, not failed; another message of the same tenant waits too.
    const waiting = await eventually(
      async () => {
        const d = await stack.messages.get(t.id, first.id);
        return d.attempts.length === 1 ? d : undefined;
      },
      10_000,
      'the refused attempt recorded',
    );
    assert.equal(waiting.status, 'retrying');
    assert.match(waiting.reason ?? '', /daily sending quota is used up/);
    const second = await send(t.key, ['hank@customer.example'], 'second');

    for (const m of [first, second]) {
      const done = await messageUntil(stack, t.key, m.id, ['sent', 'failed', 'bounced'], 60_000);
      assert.equal(done.status, 'sent', `${m.id}: ${done.reason}`);
    }
    const delivered = p.messages();
    assert.deepEqual(delivered.map((d) => d.messageId).sort(), [first.messageId, second.messageId].sort());
    for (const d of delivered)
      assert.ok(d.at >= pausedUntil, `${d.messageId} reached the server ${pausedUntil - d.at} ms before the pause ended`);
    assert.equal(await suppressed(t.id, 'gina@customer.example'), undefined);
    const firstDoc = await stack.messages.get(t.id, first.id);
    assert.deepEqual(
      firstDoc.attempts.map((a) => a.outcome),
      ['permanent', 'accepted'],
      'one refused attempt, then the one after the pause',
    );
  });
});

/**
 * DSNs written by a real Postfix (the tenant's relay): unknown local parts are refused by its queue manager, and
 * mail for policy.example goes to an SMTP peer that refuses it for the sender's DMARC, so Postfix reports it in an
 * RFC 3464 bounce. The sender is rewritten to postmaster@customer.example so the notices land in a Maildir we read.
 */
describe('DSNs from a real Postfix', { timeout: 240_000 }, () => {
  let pf: PostfixInstance;
  let mx: SmtpPeer;
  let key: string;
  const TENANT = 'conseq-pf';

  before(async () => {
    mx = await peer({
      authOptional: true,
      hideStartTls: true,
      rcptReplies: {
        'ivy@policy.example': {
          code: 550,
          text: "5.7.26 Unauthenticated email from acme.example is not accepted due to domain's DMARC policy",
        },
        'quota@policy.example': { code: 550, text: '5.4.5 Daily user sending limit exceeded.' },
      },
    });
    const closed = await freePort();
    pf = await startPostfix({
      caCert: pki.caCert,
      serverKey: pki.serverKey,
      serverCert: pki.serverCert,
      extraMainCf: [
        'smtpd_reject_unlisted_recipient = no',
        'virtual_alias_maps = inline:{ support@acme.example=postmaster@customer.example }',
        `transport_maps = inline:{ policy.example=smtp:[127.0.0.1]:${mx.port}, slow.example=smtp:[127.0.0.1]:${closed} }`,
        'smtp_tls_security_level = none',
        'queue_run_delay = 1s',
        'minimal_backoff_time = 1s',
        'maximal_backoff_time = 2s',
      ],
    });
    const r = await api(stack, 'POST', '/v1/tenants', {
      key: stack.adminKey,
      body: {
        id: TENANT,
        name: 'DSN consequences',
        domains: ['acme.example'],
        smtp: { host: 'localhost', port: pf.port, security: 'starttls', tls: { ca: pki.caCert } },
        auth: { type: 'password', user: pf.user, password: pf.password },
      },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    key = r.body.apiKey;
  });
  after(async () => {
    await pf?.stop();
  });

  /** Sends one message through Postfix, waits for Postfix's bounce about it, and applies it as the watch does. */
  async function bounceOf(to: string) {
    const m = await send(key, [to], `to ${to}`);
    await messageUntil(stack, key, m.id, ['sent'], 60_000);
    const { verdict } = await eventually(
      async () => {
        for (const raw of await pf.readMessages('postmaster')) {
          const v = await verdictForRaw(Buffer.from(raw));
          if (v.verdict.originalMessageId === m.messageId && v.verdict.kind === 'bounce') return v;
        }
        return undefined;
      },
      60_000,
      `Postfix's bounce about ${m.messageId}`,
    );
    const applied = await handleBounceOrComplaint(
      {
        messages: stack.messages,
        suppressions: stack.suppressions,
        events: stack.repos.events,
        pause: { permits: stack.repos.permits, policy: stack.config.send.policy },
      },
      TENANT,
      asMailVerdict(verdict),
      { channel: 'imap', noticeId: null },
    );
    return { m, verdict, applied };
  }

  test('unknown local user (5.1.1): hard; the address is suppressed with the notice, the rule and the diagnostic', async () => {
    const { m, verdict, applied } = await bounceOf('nobody@customer.example');
    const b = verdict.bounces[0]!;
    assert.equal(b.status, '5.1.1');
    assert.equal(b.reason, 'userunknown');
    assert.equal(b.hard, true);
    assert.equal(b.consequence, 'suppress');
    assert.deepEqual(applied.recipients, [{ address: 'nobody@customer.example', matched: true, suppressed: true }]);
    const s = await suppressed(TENANT, 'nobody@customer.example');
    assert.equal(s?.source, 'bounce');
    assert.equal(s?.reason, 'userunknown');
    assert.match(s?.detail ?? '', /^imap: .*unknown.*\(notice <.+>, rule [\w-]+, suppress\/userunknown\)$/i);
    const stored = await stack.messages.get(TENANT, m.id);
    assert.equal(stored.status, 'bounced');
  });

  test("refused by the recipient domain for the sender's DMARC (5.7.26): not hard, never suppressed, the tenant told", async () => {
    const { m, verdict, applied } = await bounceOf('ivy@policy.example');
    assert.ok(
      mx.events.some((e) => e.type === 'rejected' && e.to === 'ivy@policy.example'),
      'Postfix relayed it to the refusing server',
    );
    const b = verdict.bounces[0]!;
    assert.equal(b.status, '5.7.26');
    assert.equal(b.reason, 'authfailure');
    assert.equal(b.hard, false);
    assert.equal(b.consequence, 'tell-tenant');
    assert.deepEqual(applied.recipients, [{ address: 'ivy@policy.example', matched: true, suppressed: false }]);
    assert.equal(await suppressed(TENANT, 'ivy@policy.example'), undefined);
    const ev = await eventually(
      async () => (await eventsOf(TENANT, 'message.bounced')).find((e) => e.messageId === m.id),
      10_000,
      'message.bounced for the DMARC refusal',
    );
    assert.equal(ev.data.suppressed, false);
    assert.equal(ev.data.consequence, 'tell-tenant');
    assert.equal(ev.data.reason, 'authfailure');
  });

  test('a daily-quota refusal reported by DSN (5.4.5): nothing suppressed, the tenant paused until the window resets, and told', async () => {
    const before = Date.now();
    const { m, verdict, applied } = await bounceOf('quota@policy.example');
    const b = verdict.bounces[0]!;
    assert.equal(b.status, '5.4.5');
    assert.equal(b.consequence, 'pause-tenant');
    assert.deepEqual(applied.recipients, [{ address: 'quota@policy.example', matched: true, suppressed: false }]);
    assert.equal(await suppressed(TENANT, 'quota@policy.example'), undefined);
    const pauses = stack.store.db.collection<{ _id: string; kind: string; untilMs: number; reply: string }>('sending_pauses');
    const pause = await pauses.findOne({ _id: TENANT });
    assert.equal(pause?.kind, 'daily');
    // For SEND_QUOTA_PAUSE_MS from when the notice was applied.
    assert.ok(pause.untilMs >= before + QUOTA_PAUSE_MS && pause.untilMs <= Date.now() + QUOTA_PAUSE_MS, `paused until ${pause.untilMs}`);
    assert.match(pause.reply, /5\.4\.5/);
    const ev = await eventually(
      async () => (await eventsOf(TENANT, 'tenant.sending_paused')).find((e) => e.messageId === m.id),
      10_000,
      'tenant.sending_paused for the DSN',
    );
    assert.equal(ev.data.kind, 'daily');
    assert.equal(ev.data.source, 'imap');
    await pauses.deleteOne({ _id: TENANT });
  });
});
