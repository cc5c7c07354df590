import assert from 'node:assert/strict';
import { test } from 'node:test';
import { replyAddress, replyTokenFor, replyTokensIn } from '../../src/cases/reply-token';
import { applyCaseEvent, initialCaseState, RECENT_EVENT_IDS } from '../../src/domain/cases';
import { forwardingConfirmation } from '../../src/domain/inbound/forwarding';
import { cleanHeaderValue, normalizeSubject, ownMessageRef, parseAddressList, parseMessageIds } from '../../src/domain/inbound/email';

test('subjects compare without reply/forward prefixes in several languages', () => {
  for (const s of [
    'Re: Your case #42',
    'RE: RE: Your case #42',
    'Fwd: Re: Your case #42',
    'AW: Your case #42',
    'RV: Your case #42',
    'Enc: Your case #42',
    'Re[2]: your   case #42',
    'TR : Your case #42',
    '[EXTERNAL] Re: Your case #42',
  ]) {
    assert.equal(normalizeSubject(s), 'your case #42', s);
  }
  assert.equal(normalizeSubject('Review of the plan'), 'review of the plan');
  assert.equal(normalizeSubject('Re:'), '');
});

test('Message-ID lists: only well-formed ids, injection stripped', () => {
  assert.deepEqual(parseMessageIds('<a@b> <c@d>\r\n\t<e@f>'), ['<a@b>', '<c@d>', '<e@f>']);
  assert.deepEqual(parseMessageIds('a@b'), ['<a@b>']);
  assert.deepEqual(parseMessageIds('<a b@c> <x@y>\r\nBcc: victim@example.com'), ['<x@y>']);
  assert.deepEqual(parseMessageIds('garbage'), []);
  assert.equal(cleanHeaderValue('Hello\r\nBcc: victim@example.com'), 'Hello Bcc: victim@example.com');
  assert.equal(ownMessageRef('<abc123DEF456ghi.cartero@acme.example>'), 'm_abc123DEF456ghi');
  assert.equal(ownMessageRef('<abc@acme.example>'), null);
});

test('address lists with display names and commas in quotes', () => {
  assert.deepEqual(parseAddressList('"Doe, Jane" <Jane@Example.COM>, bob@x.example, not an address'), [
    { address: 'Jane@example.com', name: 'Doe, Jane' },
    { address: 'bob@x.example', name: null },
  ]);
});

test('reply tokens: stable, lower-case, found again in plus addresses', () => {
  const t = replyTokenFor('ib_key', 'c_case1');
  assert.match(t, /^[a-z2-7]{16}$/);
  assert.equal(replyTokenFor('ib_key', 'c_case1'), t);
  assert.notEqual(replyTokenFor('ib_other', 'c_case1'), t);
  const addr = replyAddress('replies@acme.example', t)!;
  assert.equal(addr, `replies+${t}@acme.example`);
  assert.deepEqual(replyTokensIn(['x@y.example', addr.toUpperCase()]), [t]);
});

test('case summary: counts, participants, duplicates ignored, reply reopens a closed case', () => {
  let s = initialCaseState('acme', 'c1');
  s = applyCaseEvent(s, { eventId: 'sent:m1', kind: 'sent', at: 1000, participants: ['Alice@customer.example'], subject: 'Your case' });
  const again = applyCaseEvent(s, { eventId: 'sent:m1', kind: 'sent', at: 1000 });
  assert.equal(again, s);
  s = applyCaseEvent(s, { eventId: 'closed:1', kind: 'closed', at: 2000 });
  assert.equal(s.summary.status, 'closed');
  s = applyCaseEvent(s, { eventId: 'opened:1', kind: 'opened', at: 2500 });
  assert.equal(s.summary.status, 'closed');
  s = applyCaseEvent(s, { eventId: 'inbound:i1', kind: 'inbound', at: 3000, participants: ['alice@customer.example'] });
  assert.equal(s.summary.status, 'open');
  assert.deepEqual(s.summary.participants, ['alice@customer.example']);
  assert.equal(s.summary.counts.sent, 1);
  assert.equal(s.summary.counts.inbound, 1);
  assert.equal(s.summary.eventCount, 4);
  assert.equal(s.summary.lastActivityAt, 3000);
  assert.equal(s.summary.subject, 'Your case');
  for (let i = 0; i < RECENT_EVENT_IDS + 10; i++) s = applyCaseEvent(s, { eventId: `o${i}`, kind: 'opened', at: 4000 + i });
  assert.equal(s.recent.length, RECENT_EVENT_IDS);
});

test("Gmail's forwarding confirmation: only Google's sender, only links on Google's mail hosts", () => {
  const text = 'Confirmation code: 987654321\nhttps://evil.example/mail/x\nhttps://mail-settings.google.com/mail/vf-abc-123\n';
  const found = forwardingConfirmation({
    from: { address: 'Forwarding-Noreply@google.com' },
    subject: 'Gmail Forwarding Confirmation',
    text,
  });
  assert.deepEqual(found, {
    confirmationUrl: 'https://mail-settings.google.com/mail/vf-abc-123',
    code: '987654321',
    subject: 'Gmail Forwarding Confirmation',
  });
  assert.equal(forwardingConfirmation({ from: { address: 'forwarding-noreply@google.com.evil.example' }, subject: '', text }), null);
  assert.equal(forwardingConfirmation({ from: null, subject: '', text }), null);
  const phish = forwardingConfirmation({
    from: { address: 'forwarding-noreply@google.com' },
    subject: '',
    text: 'https://mail.google.com.evil.example/mail/x',
  });
  assert.equal(phish?.confirmationUrl, null);
});
