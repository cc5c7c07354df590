import assert from 'node:assert/strict';
import { test } from 'node:test';
import { describeImapError } from '../../src/activities/bounce-mailbox-watch';
import { bounceMailboxPutSchema, bounceMailboxSettings, failedRetryDelayMs, reconnectDelayMs } from '../../src/domain/bounce-mailbox';

const base = { host: 'imap.acme.example', user: 'bounces@acme.example', password: 'secret' };

test('bounce mailbox defaults: implicit TLS on 993, INBOX, processed mail to Cartero/Processed', () => {
  const s = bounceMailboxSettings(bounceMailboxPutSchema.parse(base));
  assert.deepEqual(s, {
    host: 'imap.acme.example',
    port: 993,
    security: 'tls',
    tls: {},
    user: 'bounces@acme.example',
    auth: { kind: 'password' },
    mailbox: 'INBOX',
    processedFolder: 'Cartero/Processed',
  });
  assert.equal(bounceMailboxSettings(bounceMailboxPutSchema.parse({ ...base, security: 'starttls' })).port, 143);
  assert.equal(bounceMailboxSettings(bounceMailboxPutSchema.parse({ ...base, security: 'starttls', port: 1143 })).port, 1143);
});

test('bounce mailbox auth: oauth2 takes no password', () => {
  const { password: _unused, ...noPassword } = base;
  assert.deepEqual(bounceMailboxSettings(bounceMailboxPutSchema.parse({ ...noPassword, auth: { kind: 'oauth2' } })).auth, {
    kind: 'oauth2',
  });
  const r = bounceMailboxPutSchema.safeParse({ ...base, auth: { kind: 'oauth2' } });
  assert.equal(r.success, false);
  assert.deepEqual(
    r.error?.issues.map((i) => i.path.join('.')),
    ['password'],
  );
});

test('bounce mailbox input: each bad field is named', () => {
  const field = (input: Record<string, unknown>) => {
    const r = bounceMailboxPutSchema.safeParse(input);
    assert.equal(r.success, false, JSON.stringify(input));
    return r.error.issues.map((i) => i.path.join('.'));
  };
  assert.deepEqual(field({ ...base, host: 'bad host' }), ['host']);
  assert.deepEqual(field({ ...base, port: 70000 }), ['port']);
  assert.deepEqual(field({ ...base, security: 'none' }), ['security']);
  assert.deepEqual(field({ ...base, tls: { ca: 'not pem' } }), ['tls.ca']);
  assert.deepEqual(field({ ...base, user: 'a\r\nb' }), ['user']);
  assert.deepEqual(field({ ...base, mailbox: 'IN*' }), ['mailbox']);
  assert.deepEqual(field({ ...base, processedFolder: 'INBOX' }), ['processedFolder']);
  assert.deepEqual(field({ ...base, rejectUnauthorized: false }), ['']);
});

test('reconnect backoff doubles from 1 s to a 60 s ceiling; failed-state retries from 1 min to 1 h', () => {
  assert.deepEqual([1, 2, 3, 4, 7, 8, 50].map(reconnectDelayMs), [1000, 2000, 4000, 8000, 60_000, 60_000, 60_000]);
  assert.deepEqual([1, 2, 3, 7, 20].map(failedRetryDelayMs), [60_000, 120_000, 240_000, 3_600_000, 3_600_000]);
});

test('IMAP errors: what the tenant must fix fails the watch, the rest reconnects', () => {
  const auth = Object.assign(new Error('Command failed'), { authenticationFailed: true, responseText: 'Authentication failed.' });
  assert.deepEqual(describeImapError(auth), { needsAttention: true, message: 'authentication failed: Authentication failed.' });
  const cert = Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
  assert.equal(describeImapError(cert).needsAttention, true);
  assert.match(describeImapError(cert).message, /^TLS failed/);
  assert.equal(describeImapError(Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' })).needsAttention, true);
  assert.equal(
    describeImapError(Object.assign(new Error("Mailbox doesn't exist"), { serverResponseCode: 'NONEXISTENT' })).needsAttention,
    true,
  );
  const refused = describeImapError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }));
  assert.deepEqual(refused, { needsAttention: false, message: 'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:1' });
  assert.equal(describeImapError(Object.assign(new Error('Connection closed'), { code: 'NoConnection' })).needsAttention, false);
});
