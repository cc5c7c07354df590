import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BOUNCE_REASONS, outcomeFor, reasonFromStatus, reasonFromText, statusIn } from '../../src/domain/mail/reasons';

test('diagnostic texts map to the documented reasons', () => {
  const cases: Array<[string, string]> = [
    ['550 5.1.1 <a@b.c>: Recipient address rejected: User unknown in local recipient table', 'userunknown'],
    ['550 5.1.1 The email account that you tried to reach does not exist.', 'userunknown'],
    ['550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup', 'userunknown'],
    ['Host or domain name not found. Name service error for name=nowhere.test type=MX', 'hostunknown'],
    ['552 5.2.2 Mailbox full', 'mailboxfull'],
    ['452 4.2.2 The email account that you tried to reach is over quota', 'mailboxfull'],
    ['550 5.2.1 The email account that you tried to reach is disabled.', 'suspend'],
    ['552 5.3.4 Message size exceeds fixed limit', 'mesgtoobig'],
    ['452 4.5.3 Too many recipients', 'exceedlimit'],
    ['554 5.7.1 Service unavailable; Client host [192.0.2.1] blocked using zen.spamhaus.org', 'blocked'],
    ['550 5.7.1 Message rejected as spam by Content Filtering', 'spamdetected'],
    ['554 5.7.1 Message rejected: virus found (Eicar-Test-Signature)', 'virusdetected'],
    ["550 5.7.26 Unauthenticated email from acme.test is not accepted due to domain's DMARC policy", 'authfailure'],
    ['530 5.7.0 Must issue a STARTTLS command first', 'securityerror'],
    ['554 5.7.1 <a@b.c>: Relay access denied', 'norelaying'],
    ['550 5.1.0 Sender address rejected: Domain not found', 'hostunknown'],
    ['553 5.1.8 Sender address rejected: domain of sender address does not resolve', 'rejected'],
    ['421 4.7.0 Too many concurrent SMTP connections from this IP', 'toomanyconn'],
    ['450 4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages', 'ratelimited'],
    ['421 4.7.0 [TS01] Messages from 192.0.2.1 temporarily deferred due to unexpected volume or user complaints', 'ratelimited'],
    ['556 5.1.10 Recipient address has null MX', 'notaccept'],
    ['551 5.1.6 User has moved; please try <new@b.c>', 'hasmoved'],
    ['connect to mx.b.c[192.0.2.2]:25: Connection timed out', 'networkerror'],
    // Texts that carry no usable code (issue 14 corpus): Yahoo, Domino, au/KDDI.
    ["554 delivery error: dd This user doesn't have a yahoo.com account (a@yahoo.com) [0]", 'userunknown'],
    ['Host notes.example.com not found', 'hostunknown'],
    ['As their mail address is not registered, this mail has been returned to you.', 'userunknown'],
    ['As the remote domain doesnt exist, this mail has been returned to you.', 'hostunknown'],
    ['The user(s) account is not available or does not exist.', 'userunknown'],
    ['connect to 127.0.0.1[127.0.0.1]:2525: Connection refused', 'networkerror'],
    ['451 4.3.0 Temporary local problem - please try later', 'systemerror'],
    ['500 5.5.2 Syntax error, command unrecognized', 'syntaxerror'],
    ['554 5.6.0 Message contains invalid header', 'contenterror'],
    ["550 5.7.1 Message rejected due to the recipient's filter settings", 'filtered'],
    ['550 Requested action not taken: policy violation', 'policyviolation'],
    ['buzón lleno', 'mailboxfull'],
    ['usuario desconocido', 'userunknown'],
  ];
  for (const [text, reason] of cases) assert.equal(reasonFromText(text), reason, text);
  assert.equal(reasonFromText('250 2.0.0 Ok'), null);
});

test('enhanced status codes map by subject and detail (RFC 3463)', () => {
  assert.equal(reasonFromStatus('5.1.1'), 'userunknown');
  assert.equal(reasonFromStatus('5.1.10'), 'notaccept');
  assert.equal(reasonFromStatus('5.2.2'), 'mailboxfull');
  assert.equal(reasonFromStatus('4.4.7'), 'expired');
  assert.equal(reasonFromStatus('5.7.26'), 'authfailure');
  assert.equal(reasonFromStatus('5.0.0'), null);
  assert.equal(statusIn('smtp; 550-5.1.1 no'), '5.1.1');
  assert.equal(statusIn('version 1.2.3 of something'), null);
  for (const r of Object.values(['5.1.1', '5.2.2', '5.7.1', '4.4.1'].map(reasonFromStatus))) assert.ok(r && BOUNCE_REASONS.includes(r));
});

test('hard only for permanent failures of a dead address', () => {
  assert.deepEqual(outcomeFor({ status: '5.1.1', diagnostic: '550 5.1.1 User unknown', failed: true }), {
    status: '5.1.1',
    reason: 'userunknown',
    hard: true,
  });
  // Same text, but the report is a delay: never hard.
  assert.equal(outcomeFor({ status: '4.1.1', diagnostic: '450 4.1.1 User unknown', failed: false }).hard, false);
  // A full mailbox is soft even with a 5.x.x status.
  assert.equal(outcomeFor({ status: '5.2.2', diagnostic: null, failed: true }).hard, false);
  // Failed with a 4.x.x status: the MTA gave up retrying.
  assert.deepEqual(outcomeFor({ status: '4.4.1', diagnostic: 'Connection refused', failed: true }), {
    status: '4.4.1',
    reason: 'expired',
    hard: false,
  });
  // No status field: taken from the diagnostic; a 4xx reply there is not permanent.
  assert.deepEqual(outcomeFor({ status: null, diagnostic: '550 5.1.1 No such user', failed: true }), {
    status: '5.1.1',
    reason: 'userunknown',
    hard: true,
  });
  assert.equal(outcomeFor({ status: null, diagnostic: '450 no such user right now', failed: true }).hard, false);
  assert.deepEqual(outcomeFor({ status: null, diagnostic: null, failed: true }), { status: null, reason: 'undefined', hard: false });
});
