import assert from 'node:assert/strict';
import { test } from 'node:test';
import { credentialMoveProblems, tenantCredentialEndpoint } from '../../src/domain/credential-endpoint';
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

test('a named IMAP host and port bind the SMTP credentials too; tenants without one keep their binding', () => {
  const settings = { preset: null, smtp: { host: 'mail.acme.example', port: 587, tls: {} } };
  const plain = tenantCredentialEndpoint(settings, { type: 'password' });
  assert.equal(plain['imap.host'], undefined);
  assert.deepEqual(Object.keys(plain).sort(), ['preset', 'smtp.host', 'smtp.port', 'smtp.tls.ca', 'smtp.tls.servername']);
  const withImap = tenantCredentialEndpoint({ ...settings, imap: { host: 'IMAP.acme.example.', port: 993 } }, { type: 'password' });
  assert.equal(withImap['imap.host'], 'imap.acme.example');
  assert.equal(withImap['imap.port'], '993');
  assert.notDeepEqual(
    credentialMoveProblems(plain, withImap, ['password'], 'password').map((p) => p.field),
    [],
    'naming an IMAP host without the password again is refused',
  );
});
