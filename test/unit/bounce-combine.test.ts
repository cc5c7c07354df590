import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { MailVerdict } from '../../src/domain/mail/classify';
import { asMailVerdict, carteroOnly, combineVerdicts, type EngineRecord } from '../../src/domain/mail/combine';

/** The rules that make one verdict out of Cartero's classifier and Sisimai's records (docs/decisions.md). */
const rec = (over: Partial<EngineRecord>): EngineRecord => ({
  recipient: 'bob@example.net',
  deliverystatus: '5.1.1',
  reason: 'userunknown',
  softbounce: 0,
  diagnosticcode: '550 5.1.1 User unknown',
  messageid: 'abc.cartero@acme.example',
  action: 'failed',
  ...over,
});
const human: MailVerdict = { kind: 'human', rule: 'human', bounces: [], originalMessageId: null };

test('Sisimai reads a bounce Cartero has no rule for: its recipients, real status and reason; hard and permanent from the table', () => {
  const v = combineVerdicts(human, [rec({})]);
  assert.equal(v.kind, 'bounce');
  assert.equal(v.rule, 'sisimai');
  assert.deepEqual(
    v.bounces.map((b) => [b.recipient, b.status, b.reason, b.hard, b.permanent, b.consequence, b.engine]),
    [['bob@example.net', '5.1.1', 'userunknown', true, true, 'suppress', 'sisimai']],
  );
  assert.equal(v.originalMessageId, '<abc.cartero@acme.example>');
});

test("Sisimai's invented status codes (x.0.9xx) are not a status", () => {
  const v = combineVerdicts(human, [rec({ deliverystatus: '5.0.911', reason: 'onhold', diagnosticcode: 'Mail delivery failed' })]);
  assert.equal(v.bounces[0]!.status, null);
  assert.equal(v.bounces[0]!.reason, 'undefined');
});

test("Cartero's text rules judge Sisimai's diagnostic before Sisimai's reason (User unknown filed as filtered)", () => {
  const v = combineVerdicts(human, [
    rec({ deliverystatus: '', reason: 'filtered', softbounce: 1, diagnosticcode: 'Mail Delivery Failed... User unknown' }),
  ]);
  assert.equal(v.bounces[0]!.reason, 'userunknown');
  assert.equal(v.bounces[0]!.hard, true);
});

test("Cartero's own recipients, status and reason win; Sisimai only fills what Cartero lacks", () => {
  const cartero: MailVerdict = {
    kind: 'bounce',
    rule: 'ndr-exim',
    bounces: [{ recipient: 'bob@example.net', status: null, hard: false, reason: 'suspend', diagnostic: 'Mailbox disabled' }],
    originalMessageId: null,
  };
  const v = combineVerdicts(cartero, [rec({ deliverystatus: '5.2.1', reason: 'filtered' }), rec({ recipient: 'other@example.net' })]);
  assert.deepEqual(
    v.bounces.map((b) => [b.recipient, b.status, b.reason, b.hard, b.permanent, b.engine]),
    [['bob@example.net', '5.2.1', 'suspend', false, true, 'both']],
  );
  assert.equal(v.originalMessageId, '<abc.cartero@acme.example>');
});

test('a rewritten Final-Recipient: the one address the returned message was sent to is the one reported', () => {
  const cartero: MailVerdict = {
    kind: 'bounce',
    rule: 'dsn-failed',
    bounces: [{ recipient: 'bob@mailstore3.internal.example', status: '5.1.1', hard: true, reason: 'userunknown', diagnostic: null }],
    originalMessageId: '<x@acme.example>',
  };
  assert.equal(combineVerdicts(cartero, null, ['Bob@Example.com']).bounces[0]!.recipient, 'bob@example.com');
  // Several addresses in the returned message: no guess.
  assert.equal(combineVerdicts(cartero, null, ['a@example.com', 'b@example.com']).bounces[0]!.recipient, 'bob@mailstore3.internal.example');
});

test('vacation and complaints: Sisimai turns a human verdict into an auto-reply; a success notice stays one', () => {
  assert.equal(combineVerdicts(human, [rec({ reason: 'vacation', action: '' })]).kind, 'autoreply');
  const success: MailVerdict = { kind: 'autoreply', rule: 'dsn-success', bounces: [], originalMessageId: null };
  assert.equal(combineVerdicts(success, [rec({ reason: 'delivered', action: 'relayed' })]).kind, 'autoreply');
  const complaint: MailVerdict = {
    kind: 'complaint',
    rule: 'arf-abuse',
    bounces: [{ recipient: 'bob@example.net', status: null, hard: true, reason: 'spamdetected', diagnostic: 'feedback-type: abuse' }],
    originalMessageId: null,
  };
  const v = combineVerdicts(complaint, [rec({ reason: 'feedback' })]);
  assert.deepEqual(
    v.bounces.map((b) => [b.hard, b.permanent, b.consequence]),
    [[true, true, 'suppress-complaint']],
  );
});

test('without Sisimai: Cartero alone, with the same consequences, and asMailVerdict keeps the stored shape', () => {
  const cartero: MailVerdict = {
    kind: 'bounce',
    rule: 'dsn-failed',
    bounces: [{ recipient: 'bob@example.net', status: '5.2.2', hard: false, reason: 'mailboxfull', diagnostic: '552 5.2.2 full' }],
    originalMessageId: '<x@acme.example>',
  };
  const v = carteroOnly(cartero);
  assert.deepEqual(
    v.bounces.map((b) => [b.hard, b.permanent, b.consequence, b.engine]),
    [[false, false, 'retry', 'cartero']],
  );
  assert.deepEqual(asMailVerdict(v), cartero);
});
