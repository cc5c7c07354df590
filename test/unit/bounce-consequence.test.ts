import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consequenceOf, consequenceOfReply, consequenceTable } from '../../src/domain/bounce-consequence';
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

/**
 * The same table read from an SMTP reply (RCPT TO, MAIL FROM, DATA): one row per line of docs/bounces.md
 * "Consequences", with the replies real servers send.
 */
const reply = (code: number | undefined, text: string) => {
  const c = consequenceOfReply(code === undefined ? { text } : { code, text });
  return `${c.consequence} ${c.reason} ${c.status} hard=${c.hard} permanent=${c.permanent}${c.pause ? ` pause=${c.pause}` : ''}`;
};

test('reply: dead address and unknown domain suppress (hard, permanent)', () => {
  assert.equal(
    reply(550, '5.1.1 <bob@customer.example>: Recipient address rejected: User unknown in virtual mailbox table'),
    'suppress userunknown 5.1.1 hard=true permanent=true',
  );
  assert.equal(
    reply(550, '5.1.1 The email account that you tried to reach does not exist.'),
    'suppress userunknown 5.1.1 hard=true permanent=true',
  );
  assert.equal(
    reply(550, '5.1.2 <a@nx.example>: Recipient address rejected: Domain not found'),
    'suppress hostunknown 5.1.2 hard=true permanent=true',
  );
  // No enhanced code: the reply's class stands in (5.0.0), the text names the reason.
  assert.equal(reply(550, 'Requested action not taken: mailbox unavailable'), 'suppress userunknown 5.0.0 hard=true permanent=true');
  // The rule is kept as evidence.
  assert.equal(consequenceOfReply({ code: 550, text: '5.1.1 User unknown' }).rule, 'suppress/userunknown');
});

test('reply: the same reasons with a 4xx (temporary DNS failure, directory rebuilt) retry, never suppress', () => {
  assert.equal(
    reply(450, '4.1.2 <a@nx.example>: Recipient address rejected: Domain not found'),
    'retry hostunknown 4.1.2 hard=false permanent=false',
  );
  assert.equal(reply(451, '4.4.3 Temporary lookup failure'), 'retry systemerror 4.4.3 hard=false permanent=false');
  assert.equal(
    reply(450, '4.1.1 <a@b.example>: Recipient address rejected: unverified address'),
    'retry userunknown 4.1.1 hard=false permanent=false',
  );
});

test('reply: greylisting and network failures retry', () => {
  assert.equal(
    reply(450, '4.2.0 <a@b.c>: Recipient address rejected: Greylisted, see http://postgrey.schweikert.ch/'),
    'retry undefined 4.2.0 hard=false permanent=false',
  );
  assert.equal(reply(undefined, 'ECONNRESET: socket hang up'), 'retry networkerror 4.4.0 hard=false permanent=false');
});

test('reply: mailbox full retries, even as 552 5.2.2, and a 552 with a 4.2.2 code', () => {
  assert.equal(
    reply(452, '4.2.2 The email account that you tried to reach is over quota'),
    'retry mailboxfull 4.2.2 hard=false permanent=false',
  );
  assert.equal(
    reply(552, '5.2.2 The email account that you tried to reach is over quota'),
    'retry mailboxfull 5.2.2 hard=false permanent=false',
  );
  // The code's class wins over an enhanced code of the other class.
  assert.equal(reply(552, '4.2.2 Mailbox full'), 'retry mailboxfull 5.2.2 hard=false permanent=false');
});

test('reply: refusals about the sender (relaying, sender, send-as, policy, SPF/DMARC, blocklist) tell the tenant, never suppress', () => {
  assert.equal(reply(554, '5.7.1 <bob@customer.example>: Relay access denied'), 'tell-tenant norelaying 5.7.1 hard=false permanent=true');
  assert.equal(
    reply(553, '5.7.1 <support@acme.example>: Sender address rejected: not owned by user ops@acme.example'),
    'tell-tenant rejected 5.7.1 hard=false permanent=true',
  );
  assert.equal(reply(550, '5.7.1 Sender not allowed'), 'tell-tenant rejected 5.7.1 hard=false permanent=true');
  // Microsoft 365: a code the registry does not name, in the security/policy class.
  assert.equal(
    reply(550, '5.7.60 SMTP; Client does not have permissions to send as this sender'),
    'tell-tenant policyviolation 5.7.60 hard=false permanent=true',
  );
  assert.equal(reply(550, '5.7.1 Message rejected due to local policy'), 'tell-tenant policyviolation 5.7.1 hard=false permanent=true');
  assert.equal(
    reply(
      550,
      '5.7.26 This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM.',
    ),
    'tell-tenant authfailure 5.7.26 hard=false permanent=true',
  );
  assert.equal(reply(550, '5.7.23 SPF validation failed'), 'tell-tenant authfailure 5.7.23 hard=false permanent=true');
  assert.equal(
    reply(554, '5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org'),
    'tell-tenant blocked 5.7.1 hard=false permanent=true',
  );
  // The same refusal as a 4xx retries.
  assert.equal(reply(450, '4.7.1 <a@b.c>: Sender address rejected: not owned by user'), 'retry rejected 4.7.1 hard=false permanent=false');
});

test('reply: Gmail daily quota pauses the tenant for the day; rate refusals for a short while', () => {
  assert.equal(
    reply(
      550,
      '5.4.5 Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852',
    ),
    'pause-tenant ratelimited 5.4.5 hard=false permanent=false pause=daily',
  );
  // "quota" alone would read as a full mailbox; as a 4.7.x limit it is the tenant's.
  assert.equal(reply(421, '4.7.0 Daily sending quota exceeded'), 'pause-tenant ratelimited 4.7.0 hard=false permanent=false pause=daily');
  assert.equal(
    reply(451, '4.7.1 Rate limit exceeded, try again later'),
    'pause-tenant ratelimited 4.7.1 hard=false permanent=false pause=rate',
  );
  assert.equal(
    reply(421, '4.7.0 Rate limited, too many messages from this account'),
    'pause-tenant ratelimited 4.7.0 hard=false permanent=false pause=rate',
  );
});

test('reply: this message only (disabled mailbox, too big) stops it and keeps the address', () => {
  assert.equal(
    reply(550, '5.2.1 The email account that you tried to reach is disabled.'),
    'stop-message suspend 5.2.1 hard=false permanent=true',
  );
  assert.equal(reply(552, '5.3.4 Message size exceeds fixed limit'), 'stop-message mesgtoobig 5.3.4 hard=false permanent=true');
});
