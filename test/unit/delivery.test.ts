import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideAfterAttempt, type RecipientState } from '../../src/domain/delivery';
import { addressProblem, envelopeRecipients, referencesFor } from '../../src/domain/message';
import { DEFAULT_RETRY_POLICY, retryDelayMs } from '../../src/domain/retry';
import { classifyReply } from '../../src/domain/smtp-reply';

test('reply classes follow DESIGN.md', () => {
  const c = (code: number | undefined, text = '') => classifyReply(code === undefined ? { text } : { code, text });
  assert.equal(c(250, '2.0.0 Ok'), 'accepted');
  assert.equal(c(421, '4.3.2 Service shutting down'), 'throttled');
  assert.equal(c(450, '4.2.1 Mailbox busy'), 'transient');
  assert.equal(c(451, '4.3.0 Local error'), 'transient');
  assert.equal(c(452, '4.3.1 Insufficient storage'), 'transient');
  assert.equal(c(451, '4.7.1 Greylisted, please try again later'), 'greylisted');
  assert.equal(c(450, '4.2.0 Greylisted for 300 seconds'), 'greylisted');
  assert.equal(c(450, '4.7.0 rate limited, try later'), 'throttled');
  assert.equal(c(454, '4.7.0 Temporary authentication failure'), 'auth');
  assert.equal(c(535, '5.7.8 Authentication credentials invalid'), 'auth');
  assert.equal(c(534, '5.7.9 Application-specific password required'), 'auth');
  assert.equal(c(530, '5.7.0 Authentication required'), 'auth');
  assert.equal(c(552, '5.3.4 Message too big'), 'permanent');
  assert.equal(c(554, '5.7.1 Rejected as spam'), 'permanent');
  assert.equal(c(undefined, 'ECONNREFUSED'), 'transient');
});

const recipients = (...addrs: string[]): RecipientState[] => addrs.map((address) => ({ address, kind: 'to', status: 'pending' }));
const ctx = { policy: DEFAULT_RETRY_POLICY, elapsedMs: 0, failuresSoFar: 0, random: () => 0.5 };

test('all accepted → sent', () => {
  const d = decideAfterAttempt(
    recipients('a@x.example'),
    ['a@x.example'],
    { cls: 'accepted', reply: { code: 250, text: '250 ok' }, recipientReplies: [] },
    ctx,
  );
  assert.equal(d.status, 'sent');
  assert.equal(d.next.kind, 'done');
});

test('one RCPT 550 among three → partially_sent, bounce reported for suppression', () => {
  const rs = recipients('a@x.example', 'b@x.example', 'c@x.example');
  const d = decideAfterAttempt(
    rs,
    rs.map((r) => r.address),
    {
      cls: 'accepted',
      reply: { code: 250, text: '250 ok' },
      recipientReplies: [{ address: 'b@x.example', reply: { code: 550, text: '5.1.1 User unknown' } }],
    },
    ctx,
  );
  assert.equal(d.status, 'partially_sent');
  assert.deepEqual(d.bounced, ['b@x.example']);
  assert.deepEqual(
    d.recipients.map((r) => r.status),
    ['sent', 'bounced', 'sent'],
  );
});

test('a RCPT 4xx keeps that recipient pending and retries only it', () => {
  const rs = recipients('a@x.example', 'b@x.example');
  const d = decideAfterAttempt(
    rs,
    rs.map((r) => r.address),
    {
      cls: 'accepted',
      reply: { code: 250, text: '250 ok' },
      recipientReplies: [{ address: 'b@x.example', reply: { code: 452, text: '4.2.2 Mailbox full' } }],
    },
    ctx,
  );
  assert.equal(d.status, 'retrying');
  assert.deepEqual(
    d.recipients.map((r) => r.status),
    ['sent', 'pending'],
  );
  assert.equal(d.next.kind, 'retry');
});

test('auth and TLS failures wait for credentials; permanent fails; give-up ends transient retries', () => {
  const rs = recipients('a@x.example');
  const auth = decideAfterAttempt(rs, ['a@x.example'], { cls: 'auth', reply: { code: 535, text: 'bad' }, recipientReplies: [] }, ctx);
  assert.equal(auth.status, 'waiting_credentials');
  assert.equal(auth.next.kind, 'wait_credentials');
  const perm = decideAfterAttempt(rs, ['a@x.example'], { cls: 'permanent', reply: { code: 554, text: 'no' }, recipientReplies: [] }, ctx);
  assert.equal(perm.status, 'failed');
  const late = decideAfterAttempt(
    rs,
    ['a@x.example'],
    { cls: 'transient', reply: { text: 'ETIMEDOUT' }, recipientReplies: [] },
    { ...ctx, elapsedMs: DEFAULT_RETRY_POLICY.giveUpMs },
  );
  assert.equal(late.status, 'failed');
  assert.match((late.next as { reason: string }).reason, /gave up after 72 h.*ETIMEDOUT/);
});

test('backoff grows, is jittered, and respects the greylisting floor', () => {
  const p = { ...DEFAULT_RETRY_POLICY, initialMs: 1000, maxMs: 60_000, greylistMs: 300_000 };
  assert.equal(
    retryDelayMs(p, 'transient', 1, () => 0),
    500,
  );
  assert.equal(
    retryDelayMs(p, 'transient', 1, () => 1),
    1000,
  );
  assert.equal(
    retryDelayMs(p, 'transient', 4, () => 1),
    8000,
  );
  assert.equal(
    retryDelayMs(p, 'transient', 20, () => 1),
    60_000,
  );
  assert.equal(
    retryDelayMs(p, 'greylisted', 1, () => 0.5),
    300_000,
  );
});

test('addresses: CR/LF, missing @, over-long, bad domain are refused; recipients de-duplicated', () => {
  assert.equal(addressProblem('a@b.example'), null);
  assert.match(addressProblem('a@b.example\r\nRCPT TO:<x@y>')!, /control/);
  assert.match(addressProblem('ab.example')!, /'@'/);
  assert.match(addressProblem(`${'a'.repeat(65)}@b.example`)!, /64/);
  assert.match(addressProblem('a@localhost')!, /domain/);
  assert.match(addressProblem('"quoted"@b.example')!, /local part/);
  const env = envelopeRecipients({ to: ['A@x.example', 'b@x.example'], cc: ['a@X.example'], bcc: [{ address: 'c@x.example', name: 'C' }] });
  assert.deepEqual(
    env.map((e) => `${e.kind}:${e.address}`),
    ['to:A@x.example', 'to:b@x.example', 'bcc:c@x.example'],
  );
});

test('references: parent chain plus parent, capped keeping the root', () => {
  assert.deepEqual(referencesFor({ messageId: '<p@x>', references: ['<r@x>'] }), ['<r@x>', '<p@x>']);
  const long = Array.from({ length: 30 }, (_, i) => `<${i}@x>`);
  const refs = referencesFor({ messageId: '<p@x>', references: long });
  assert.equal(refs.length, 20);
  assert.equal(refs[0], '<0@x>');
  assert.equal(refs.at(-1), '<p@x>');
});

/** The consequence table on the send path (docs/bounces.md "Consequences"). */
const rcpt = (address: string, code: number, text: string) => ({ address, reply: { code, text } });
const ok = { code: 250, text: '250 2.0.0 ok' };

test('RCPT 550 5.1.1: bounced and suppressed, with the rule kept as evidence', () => {
  const rs = recipients('a@x.example', 'b@x.example');
  const d = decideAfterAttempt(
    rs,
    ['a@x.example', 'b@x.example'],
    { cls: 'accepted', reply: ok, recipientReplies: [rcpt('b@x.example', 550, '5.1.1 User unknown')] },
    ctx,
  );
  assert.deepEqual(d.bounced, ['b@x.example']);
  assert.deepEqual(d.recipients[1]!.refusal, {
    reason: 'userunknown',
    status: '5.1.1',
    consequence: 'suppress',
    hard: true,
    rule: 'suppress/userunknown',
  });
  assert.deepEqual(d.refused, []);
  assert.equal(d.pause, undefined);
});

test('RCPT refusals about the sender: failed, not bounced, nothing suppressed, the tenant told; the message fails with that reason', () => {
  const rs = recipients('a@x.example', 'b@x.example');
  const d = decideAfterAttempt(
    rs,
    ['a@x.example', 'b@x.example'],
    {
      cls: 'permanent',
      reply: { code: 554, text: "Can't send mail - all recipients were rejected: 554 5.7.1 <a@x.example>: Relay access denied" },
      recipientReplies: [
        rcpt('a@x.example', 554, '5.7.1 <a@x.example>: Relay access denied'),
        rcpt('b@x.example', 550, '5.7.26 DMARC policy of the sender domain'),
      ],
    },
    ctx,
  );
  assert.deepEqual(d.bounced, []);
  assert.deepEqual(d.refused, ['a@x.example', 'b@x.example']);
  assert.deepEqual(
    d.recipients.map((r) => `${r.status} ${r.refusal?.consequence} ${r.refusal?.reason}`),
    ['failed tell-tenant norelaying', 'failed tell-tenant authfailure'],
  );
  assert.equal(d.status, 'failed');
  assert.equal(d.next.kind, 'done');
  assert.match(
    d.next.kind === 'done' ? d.next.reason : '',
    /^refused for a reason about the sender \(norelaying\), not the recipients; nothing was suppressed: 554 5\.7\.1/,
  );
});

test('RCPT disabled mailbox: bounced for this message, not suppressed', () => {
  const d = decideAfterAttempt(
    recipients('a@x.example'),
    ['a@x.example'],
    { cls: 'permanent', reply: { code: 550, text: 'rejected' }, recipientReplies: [rcpt('a@x.example', 550, '5.2.1 Mailbox disabled')] },
    ctx,
  );
  assert.deepEqual(d.bounced, []);
  assert.equal(d.recipients[0]!.status, 'bounced');
  assert.equal(d.recipients[0]!.refusal?.consequence, 'stop-message');
  assert.equal(d.status, 'bounced');
});

test('RCPT 552 5.2.2 mailbox full: pending, retried, never suppressed', () => {
  const d = decideAfterAttempt(
    recipients('a@x.example'),
    ['a@x.example'],
    { cls: 'permanent', reply: { code: 552, text: 'all rejected' }, recipientReplies: [rcpt('a@x.example', 552, '5.2.2 Mailbox full')] },
    ctx,
  );
  assert.deepEqual(d.bounced, []);
  assert.equal(d.recipients[0]!.status, 'pending');
  assert.equal(d.status, 'retrying');
  assert.equal(d.next.kind, 'retry');
});

test('550 5.4.5 daily quota (at RCPT or DATA): the tenant pauses for SEND_QUOTA_PAUSE_MS, the message waits that long', () => {
  const policy = { ...DEFAULT_RETRY_POLICY, quotaPauseMs: 7_200_000 };
  const quota = '5.4.5 Daily user sending limit exceeded.';
  for (const outcome of [
    { cls: 'accepted' as const, reply: ok, recipientReplies: [rcpt('a@x.example', 550, quota)] },
    { cls: 'permanent' as const, reply: { code: 550, text: quota }, recipientReplies: [] },
  ]) {
    const d = decideAfterAttempt(recipients('a@x.example'), ['a@x.example'], outcome, { ...ctx, policy, now: 1_000_000 });
    assert.deepEqual(d.pause, { kind: 'daily', untilMs: 1_000_000 + 7_200_000, reply: `550 ${quota}` });
    assert.equal(d.recipients[0]!.status, 'pending');
    assert.equal(d.status, 'retrying');
    assert.equal(d.next.kind, 'retry');
    if (d.next.kind === 'retry') {
      assert.equal(d.next.cls, 'throttled');
      assert.ok(d.next.delayMs >= 7_200_000, String(d.next.delayMs));
      assert.match(d.next.reason, /daily sending quota is used up: sending paused for 2 h/);
    }
  }
  // Workflows started before SEND_QUOTA_PAUSE_MS existed carry no quotaPauseMs: an hour.
  const { quotaPauseMs: _omitted, ...old } = DEFAULT_RETRY_POLICY;
  const d = decideAfterAttempt(
    recipients('a@x.example'),
    ['a@x.example'],
    { cls: 'permanent', reply: { code: 550, text: quota }, recipientReplies: [] },
    { ...ctx, policy: old, now: 0 },
  );
  assert.equal(d.pause?.untilMs, 3_600_000);
});

test('4.7.x rate refusal: a short tenant pause (SEND_THROTTLE_PAUSE_MS)', () => {
  const d = decideAfterAttempt(
    recipients('a@x.example'),
    ['a@x.example'],
    { cls: 'throttled', reply: { code: 451, text: '4.7.1 Rate limit exceeded' }, recipientReplies: [] },
    { ...ctx, now: 0 },
  );
  assert.deepEqual(d.pause, { kind: 'rate', untilMs: DEFAULT_RETRY_POLICY.throttlePauseMs, reply: '451 4.7.1 Rate limit exceeded' });
  assert.equal(d.status, 'retrying');
});

test('a whole transaction refused about the sender (MAIL FROM 553 5.7.1): failed, the tenant told; a DATA 552 mailbox full retries', () => {
  const d = decideAfterAttempt(
    recipients('a@x.example'),
    ['a@x.example'],
    { cls: 'permanent', reply: { code: 553, text: '5.7.1 Sender address rejected: not owned by user' }, recipientReplies: [] },
    ctx,
  );
  assert.equal(d.status, 'failed');
  assert.deepEqual(d.refused, ['a@x.example']);
  assert.deepEqual(d.bounced, []);
  const full = decideAfterAttempt(
    recipients('a@x.example'),
    ['a@x.example'],
    { cls: 'permanent', reply: { code: 552, text: '5.2.2 Mailbox full' }, recipientReplies: [] },
    ctx,
  );
  assert.equal(full.status, 'retrying');
  // Anything else permanent still fails the message, without suppressing.
  const big = decideAfterAttempt(
    recipients('a@x.example'),
    ['a@x.example'],
    { cls: 'permanent', reply: { code: 552, text: '5.3.4 Message too big' }, recipientReplies: [] },
    ctx,
  );
  assert.equal(big.status, 'failed');
  assert.deepEqual(big.refused, []);
});
