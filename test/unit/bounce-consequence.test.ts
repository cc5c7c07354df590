import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consequenceOf, consequenceTable } from '../../src/domain/bounce-consequence';
import { BOUNCE_REASONS } from '../../src/domain/mail/reasons';

/** The consequence table of docs/bounces.md: reason (+ status) → hard (suppress the address), permanent (stop this message). */
const bounce = (reason: Parameters<typeof consequenceOf>[0]['reason'], status: string | null, diagnostic: string | null = null) =>
  consequenceOf({ kind: 'bounce', reason, status, diagnostic });

test('unknown user or domain: suppress and stop (hard and permanent)', () => {
  for (const reason of ['userunknown', 'hostunknown', 'hasmoved', 'notaccept'] as const) {
    assert.deepEqual(bounce(reason, '5.1.1'), { hard: true, permanent: true, consequence: 'suppress' }, reason);
  }
  // Without a status, a failure whose text has no 4xx reply is permanent.
  assert.deepEqual(bounce('userunknown', null, 'User unknown'), { hard: true, permanent: true, consequence: 'suppress' });
  // A 4xx "user unknown" (a directory being rebuilt) is retried, never suppressed.
  assert.deepEqual(bounce('userunknown', '4.1.1'), { hard: false, permanent: false, consequence: 'retry' });
  assert.deepEqual(bounce('userunknown', null, '450 mailbox unavailable'), { hard: false, permanent: false, consequence: 'retry' });
});

test('disabled mailbox: permanent for this message, not a dead address', () => {
  assert.deepEqual(bounce('suspend', '5.2.1'), { hard: false, permanent: true, consequence: 'stop-message' });
});

test('mailbox full: neither hard nor permanent, even with a 5.x.x status', () => {
  assert.deepEqual(bounce('mailboxfull', '5.2.2'), { hard: false, permanent: false, consequence: 'retry' });
  assert.deepEqual(bounce('mailboxfull', '4.2.2'), { hard: false, permanent: false, consequence: 'retry' });
});

test('refusals about the tenant (policy, spam, blocklist, relaying, sender, SPF/DKIM/DMARC, TLS): never suppress; tell the tenant', () => {
  for (const reason of ['norelaying', 'rejected', 'policyviolation', 'spamdetected', 'blocked', 'authfailure', 'securityerror'] as const) {
    assert.deepEqual(bounce(reason, '5.7.1'), { hard: false, permanent: true, consequence: 'tell-tenant' }, reason);
    assert.deepEqual(bounce(reason, '4.7.1'), { hard: false, permanent: false, consequence: 'retry' }, `${reason} 4xx`);
  }
});

test('rate and quota refusals pause the tenant; the message waits (not permanent)', () => {
  for (const reason of ['ratelimited', 'toomanyconn', 'exceedlimit'] as const) {
    assert.deepEqual(bounce(reason, '5.7.1'), { hard: false, permanent: false, consequence: 'pause-tenant' }, reason);
  }
  // Gmail: 550 5.4.5 Daily user sending limit exceeded, whatever reason the text suggested.
  assert.deepEqual(bounce('undefined', '5.4.5', 'Daily user sending limit exceeded'), {
    hard: false,
    permanent: false,
    consequence: 'pause-tenant',
  });
  assert.deepEqual(bounce('policyviolation', '4.7.0', 'Message rate limit exceeded'), {
    hard: false,
    permanent: false,
    consequence: 'pause-tenant',
  });
  // A 4.7.x that is no limit stays what it is.
  assert.deepEqual(bounce('blocked', '4.7.0', 'Try again later, blocked'), { hard: false, permanent: false, consequence: 'retry' });
});

test('this message only (size, content, virus, recipient filter, expired): stop it, keep the address', () => {
  for (const reason of ['mesgtoobig', 'contenterror', 'virusdetected', 'filtered'] as const) {
    assert.deepEqual(bounce(reason, '5.3.4'), { hard: false, permanent: true, consequence: 'stop-message' }, reason);
  }
  // The MTA gave up on a 4.x.x: permanent for this message.
  assert.deepEqual(bounce('expired', '4.4.7'), { hard: false, permanent: true, consequence: 'stop-message' });
});

test('network, system and unclassified failures: the status decides; never suppress', () => {
  assert.deepEqual(bounce('networkerror', '4.4.1'), { hard: false, permanent: false, consequence: 'retry' });
  assert.deepEqual(bounce('systemerror', '5.3.0'), { hard: false, permanent: true, consequence: 'stop-message' });
  assert.deepEqual(bounce('undefined', '5.0.0'), { hard: false, permanent: true, consequence: 'stop-message' });
});

test('delays retry; complaints suppress', () => {
  assert.deepEqual(consequenceOf({ kind: 'delay', reason: 'userunknown', status: '5.1.1', diagnostic: null }), {
    hard: false,
    permanent: false,
    consequence: 'retry',
  });
  assert.deepEqual(consequenceOf({ kind: 'complaint', reason: 'spamdetected', status: null, diagnostic: null }), {
    hard: true,
    permanent: true,
    consequence: 'suppress-complaint',
  });
});

test('the table covers every reason, and only dead-address reasons are hard', () => {
  const rows = consequenceTable(BOUNCE_REASONS);
  assert.equal(rows.length, BOUNCE_REASONS.length);
  assert.deepEqual(
    rows.filter((r) => r.hard).map((r) => r.reason),
    ['userunknown', 'hostunknown', 'notaccept', 'hasmoved'],
  );
});
