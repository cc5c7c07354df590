import assert from 'node:assert/strict';
import { test } from 'node:test';
import { feedbackCorroboration, matchRecipient, messageIdFromRfc, statusAfterBounces } from '../../src/domain/bounce-match';
import { rfcMessageId } from '../../src/domain/message';

test('our Message-ID gives back the message id; anything else does not', () => {
  const id = 'm_0abc123def4567890XYZ';
  assert.equal(messageIdFromRfc(rfcMessageId(id, 'acme.example')), id);
  assert.equal(messageIdFromRfc('<CAF=abc@mail.gmail.com>'), null);
  assert.equal(messageIdFromRfc('<short.cartero@acme.example>'), null);
  assert.equal(messageIdFromRfc('<0abc123def4567890XYZ.cartero@acme.example> trailing'), null);
  assert.equal(messageIdFromRfc('<../../x.cartero@acme.example>'), null);
  assert.equal(messageIdFromRfc(null), null);
});

test('recipients match case-insensitively; a single-recipient message takes a forwarded address', () => {
  const two = [{ address: 'a@x.example' }, { address: 'B@x.example' }];
  assert.equal(matchRecipient(two, 'b@X.example'), 1);
  assert.equal(matchRecipient(two, 'c@x.example'), -1);
  assert.equal(matchRecipient([{ address: 'a@x.example' }], 'a.forwarded@y.example'), 0);
});

test('status after bounces: all bounced → bounced, some delivered → partially_sent', () => {
  assert.equal(statusAfterBounces([{ status: 'bounced' }]), 'bounced');
  assert.equal(statusAfterBounces([{ status: 'bounced' }, { status: 'suppressed' }]), 'bounced');
  assert.equal(statusAfterBounces([{ status: 'bounced' }, { status: 'sent' }]), 'partially_sent');
  assert.equal(statusAfterBounces([{ status: 'sent' }]), null);
});

test('a report is trusted for the only recipient, a Bcc recipient, or one that already bounced; not for a visible co-recipient', () => {
  const r = (kind: 'to' | 'cc' | 'bcc', status: 'sent' | 'bounced' = 'sent') => ({ kind, status });
  assert.equal(feedbackCorroboration([r('to')], 0), 'only-recipient');
  // Two visible recipients: either could have forged a report naming the other.
  assert.equal(feedbackCorroboration([r('to'), r('to')], 1), null);
  assert.equal(feedbackCorroboration([r('to'), r('cc')], 1), null);
  // Nobody else saw a Bcc address.
  assert.equal(feedbackCorroboration([r('to'), r('bcc')], 1), 'undisclosed-recipient');
  // Our SMTP session (or an earlier trusted report) already says it bounced.
  assert.equal(feedbackCorroboration([r('to'), r('to', 'bounced')], 1), 'already-bounced');
  assert.equal(feedbackCorroboration([r('to')], 3), null);
});
