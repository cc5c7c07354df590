import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sentCopyPlan } from '../../src/domain/sent-copy';

const base = { smtp: { host: 'mail.acme.example' } };

test('auto: providers that file submissions themselves and relays are skipped; own servers are copied to the SMTP host', () => {
  for (const preset of ['gmail', 'microsoft365'] as const) {
    const p = sentCopyPlan({ ...base, preset });
    assert.equal(p.append, false);
    assert.match((p as { reason: string }).reason, /files SMTP submissions in Sent itself/);
  }
  for (const preset of ['sendgrid', 'ses', 'google-workspace-relay'] as const)
    assert.equal(sentCopyPlan({ ...base, preset }).append, false);
  for (const preset of ['cpanel', 'zimbra', 'exchange'] as const) {
    assert.deepEqual(sentCopyPlan({ ...base, preset }), { append: true, imap: { host: 'mail.acme.example', port: 993, security: 'tls' } });
  }
});

test('no preset: copied only when an IMAP host is named (the password never goes to a guessed server)', () => {
  assert.deepEqual(sentCopyPlan({ ...base, preset: null }), { append: false, reason: 'no IMAP server known: set imap.host' });
  assert.deepEqual(sentCopyPlan({ ...base, preset: null, imap: { host: 'imap.acme.example', security: 'starttls' } }), {
    append: true,
    imap: { host: 'imap.acme.example', port: 143, security: 'starttls' },
  });
});

test('on and off override auto', () => {
  assert.equal(sentCopyPlan({ ...base, preset: 'cpanel', sentCopy: 'off' }).append, false);
  assert.deepEqual(sentCopyPlan({ ...base, preset: 'gmail', sentCopy: 'on' }), {
    append: true,
    imap: { host: 'imap.gmail.com', port: 993, security: 'tls' },
  });
});
