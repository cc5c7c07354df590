import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import nodePath from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeTestPki, type TestPki } from '../support/certs';
import { startDovecotImap, type DovecotImap } from '../support/dovecot-imap';
import { OAuthServer } from '../support/oauth-server';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import { api, createPeerTenant, startStack, type Stack } from '../support/stack';
import { bounceWatchWorkflowId } from '../../src/temporal/handoffs/bounce-mailbox-watch';

/**
 * The IMAP watch of a tenant's bounce mailbox, end to end: Cartero sends through a real SMTP server
 * process, an RFC 3464 DSN for that message lands in the Maildir of a real, private Dovecot IMAP
 * server, and the watch workflow (imapflow over TLS, IDLE) applies it: recipient bounced,
 * suppressed, event appended, notice flagged \Seen and moved to the processed folder.
 */
let stack: Stack;
let pki: TestPki;
let imap: DovecotImap;
let peer: SmtpPeer;
let key: string;
let idp: OAuthServer;
let tmp: string;
const TENANT = 'imap-watch';

before(async () => {
  pki = makeTestPki(['localhost']);
  tmp = mkdtempSync(nodePath.join(os.tmpdir(), 'cartero-imap-oauth-'));
  writeFileSync(nodePath.join(tmp, 'ca.pem'), pki.caCert);
  [imap, peer, idp] = await Promise.all([
    startDovecotImap({ serverKey: pki.serverKey, serverCert: pki.serverCert }),
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: 'p' } }),
    OAuthServer.start({ key: pki.serverKey, cert: pki.serverCert, tokenTtlS: 3600, serviceAccounts: {} }),
  ]);
  // The token server is for the XOAUTH2 refresh test; the other tenants never reach it.
  stack = await startStack({ OAUTH_CA_FILE: nodePath.join(tmp, 'ca.pem'), OAUTH_ALLOW_PRIVATE_NETWORKS: 'loopback' });
  key = await createPeerTenant(stack, TENANT, peer, pki.caCert);
});
after(async () => {
  await stack?.temporal.workflow
    .getHandle(bounceWatchWorkflowId(TENANT))
    .terminate()
    .catch(() => undefined);
  await Promise.all([stack?.stop(), imap?.stop(), peer?.stop(), idp?.stop()]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const mailboxBody = (over: Record<string, unknown> = {}) => ({
  host: 'localhost',
  port: imap.port,
  security: 'starttls',
  tls: { ca: pki.caCert },
  user: imap.user,
  password: imap.password,
  ...over,
});

async function send(to: string): Promise<{ id: string; messageId: string }> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'support@acme.example', to: [to], subject: `to ${to}`, text: 'hello' },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const { id, messageId } = r.body as { id: string; messageId: string };
  await eventually(
    async () => (await api(stack, 'GET', `/v1/messages/${id}`, { key })).body?.status === 'sent',
    60_000,
    `message ${id} sent`,
  );
  return { id, messageId };
}

/** An RFC 3464 report in the layout Postfix writes (see test/fixtures/mail/rfc3464-postfix-userunknown.eml). */
function dsn(messageId: string, recipient: string): string {
  return [
    'Return-Path: <>',
    'From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)',
    'To: bounces@acme.example',
    'Subject: Undelivered Mail Returned to Sender',
    `Message-ID: <${randomBytes(6).toString('hex')}@mx.customer.example>`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/report; report-type=delivery-status; boundary="B"',
    '',
    '--B',
    'Content-Type: text/plain; charset=us-ascii',
    '',
    "I'm sorry to have to inform you that your message could not be delivered.",
    '',
    '--B',
    'Content-Type: message/delivery-status',
    '',
    'Reporting-MTA: dns; mx.customer.example',
    '',
    `Final-Recipient: rfc822; ${recipient}`,
    `Original-Recipient: rfc822;${recipient}`,
    'Action: failed',
    'Status: 5.1.1',
    `Diagnostic-Code: smtp; 550 5.1.1 <${recipient}>: Recipient address rejected: User unknown`,
    '',
    '--B',
    'Content-Type: text/rfc822-headers',
    '',
    'From: support@acme.example',
    `To: ${recipient}`,
    `Message-ID: ${messageId}`,
    'Subject: hello',
    '',
    '--B--',
    '',
  ].join('\r\n');
}

/** The notice was applied: recipient bounced, address suppressed (bounce, userunknown), one event. */
async function applied(id: string, address: string): Promise<void> {
  await eventually(
    async () => (await stack.messages.get(TENANT, id)).recipients[0]?.status === 'bounced',
    60_000,
    `${address} bounced on ${id}`,
  );
  const stored = await stack.messages.get(TENANT, id);
  assert.equal(stored.recipients[0]!.feedback?.source, 'imap');
  assert.equal(stored.recipients[0]!.feedback?.reason, 'userunknown');
  const s = await api(stack, 'GET', `/v1/suppressions/${address}`, { key });
  assert.equal(s.status, 200, JSON.stringify(s.body));
  assert.equal(s.body.source, 'bounce');
  assert.equal(s.body.reason, 'userunknown');
  assert.match(s.body.detail, /^imap: /);
  const events = (await stack.events.listForTenant(TENANT)).filter((e) => e.type === 'message.bounced' && e.messageId === id);
  assert.equal(events.length, 1);
  assert.equal(events[0]!.data.recipient, address);
}

const status = async () => (await api(stack, 'GET', `/v1/tenants/${TENANT}/bounce-mailbox`, { key })).body;

describe('IMAP bounce-mailbox watch against a real Dovecot', { timeout: 600_000 }, () => {
  test('settings are validated and the password is never returned', async () => {
    const noPassword = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, { key, body: mailboxBody({ password: undefined }) });
    assert.equal(noPassword.status, 400, JSON.stringify(noPassword.body));
    assert.equal(noPassword.body.errors[0].field, 'password');
    const privateHost = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, { key, body: mailboxBody({ host: '10.1.2.3' }) });
    assert.equal(privateHost.status, 400);
    assert.equal(privateHost.body.errors[0].field, 'host');
    const sameFolder = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, {
      key,
      body: mailboxBody({ mailbox: 'INBOX', processedFolder: 'inbox' }),
    });
    assert.equal(sameFolder.status, 400);
    assert.equal(sameFolder.body.errors[0].field, 'processedFolder');
    const unknown = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, { key, body: mailboxBody({ pasword: 'x' }) });
    assert.equal(unknown.status, 400);
    assert.equal((await api(stack, 'GET', `/v1/tenants/${TENANT}/bounce-mailbox`, { key })).status, 404);
    assert.equal((await api(stack, 'GET', `/v1/tenants/someone-else/bounce-mailbox`, { key })).status, 404);
  });

  test('existing and new DSNs are applied and moved; reconnects after the server dies; wrong password fails visibly; DELETE stops', async () => {
    // A DSN waiting before the watch starts.
    const first = await send('alice@customer.example');
    imap.deliver(dsn(first.messageId, 'alice@customer.example'));
    const put = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, { key, body: mailboxBody() });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.passwordSet, true);
    assert.ok(!JSON.stringify(put.body).includes(imap.password), 'the password is not returned');
    assert.equal(put.body.mailbox, 'INBOX');
    assert.equal(put.body.processedFolder, 'Cartero/Processed');
    await applied(first.id, 'alice@customer.example');
    await eventually(
      () => imap.list('Cartero/Processed').length === 1 && imap.list('INBOX').length === 0,
      30_000,
      'the notice moved to Cartero/Processed',
    );
    assert.ok(imap.list('Cartero/Processed')[0]!.seen, 'the processed notice is flagged \\Seen');
    const watching = await eventually(
      async () => ((await status()).status.state === 'watching' ? await status() : null),
      30_000,
      'state watching',
    );
    assert.equal(watching.stats.bounce, 1);
    assert.ok(!JSON.stringify(watching).includes(imap.password));

    // A DSN arriving while the watch idles: processed on the same connection.
    const second = await send('bob@customer.example');
    imap.deliver(dsn(second.messageId, 'bob@customer.example'));
    await applied(second.id, 'bob@customer.example');
    await eventually(() => imap.list('Cartero/Processed').length === 2 && imap.list('INBOX').length === 0, 30_000, 'second notice moved');
    const afterIdle = await status();
    assert.equal(afterIdle.status.lastConnectedAt, watching.status.lastConnectedAt, 'no reconnection was needed');
    assert.equal(afterIdle.stats.processed, 2);

    // The server dies; mail delivered meanwhile is processed after it comes back.
    const third = await send('carol@customer.example');
    await imap.kill();
    imap.deliver(dsn(third.messageId, 'carol@customer.example'));
    const lost = await eventually(
      async () => ((await status()).status.state === 'reconnecting' ? await status() : null),
      60_000,
      'state reconnecting',
    );
    assert.ok(lost.status.error, 'the connection error is shown');
    await imap.start();
    await applied(third.id, 'carol@customer.example');
    await eventually(async () => (await status()).status.state === 'watching', 60_000, 'watching again');
    // Applied first, moved after: the move may trail the status by a moment on a loaded machine.
    await eventually(() => imap.list('INBOX').length === 0, 30_000, 'the third notice moved out of INBOX');

    // Wrong password: a clear failure state, and the workflow waits (a timer, no activity retrying).
    const wrong = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, {
      key,
      body: mailboxBody({ password: 'not-the-password' }),
    });
    assert.equal(wrong.status, 200, JSON.stringify(wrong.body));
    const failed = await eventually(
      async () => ((await status()).status.state === 'failed' ? await status() : null),
      90_000,
      'state failed',
    );
    assert.match(failed.status.error, /authentication failed/i);
    const handle = stack.temporal.workflow.getHandle(bounceWatchWorkflowId(TENANT));
    await eventually(
      async () => {
        const d = await handle.describe();
        return d.status.name === 'RUNNING' && (d.raw.pendingActivities ?? []).length === 0;
      },
      30_000,
      'the workflow to wait without a running activity',
    );
    const authFailures = (imap.log().match(/auth failed|Authentication failed|password mismatch/gi) ?? []).length;
    assert.ok(authFailures >= 1, 'Dovecot saw the failed login');

    // Fixed settings wake the waiting workflow at once (no need to wait out the backoff).
    const fixed = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, { key, body: mailboxBody() });
    assert.equal(fixed.status, 200);
    await eventually(async () => (await status()).status.state === 'watching', 60_000, 'watching after the fix');

    // DELETE stops the watch.
    assert.equal((await api(stack, 'DELETE', `/v1/tenants/${TENANT}/bounce-mailbox`, { key })).status, 204);
    await eventually(async () => (await handle.describe()).status.name === 'COMPLETED', 60_000, 'the watch workflow to complete');
    assert.equal((await api(stack, 'GET', `/v1/tenants/${TENANT}/bounce-mailbox`, { key })).status, 404);
  });

  test('human mail next to notices stays in the watched mailbox, unread; only the notice is applied and moved', async () => {
    const put = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, { key, body: mailboxBody() });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    const before = imap.list('Cartero/Processed').length;
    const sent = await send('dave@customer.example');
    const human = imap.deliver(
      [
        'From: Dave Customer <dave@customer.example>',
        'To: bounces@acme.example',
        'Subject: Re: your order',
        `Message-ID: <${randomBytes(6).toString('hex')}@customer.example>`,
        'Date: Mon, 7 Dec 2026 06:00:00 +0000',
        'Content-Type: text/plain; charset=utf-8',
        '',
        'Thanks, the parcel arrived. Can you send the invoice again?',
        '',
      ].join('\r\n'),
    );
    imap.deliver(dsn(sent.messageId, 'dave@customer.example'));
    await applied(sent.id, 'dave@customer.example');
    await eventually(() => imap.list('Cartero/Processed').length === before + 1, 30_000, 'the DSN moved to Cartero/Processed');
    await eventually(async () => (await status()).stats.human === 1, 30_000, 'the human mail classified');
    const inbox = () => imap.list('INBOX');
    assert.deepEqual(
      inbox().map((e) => e.name.split(':')[0]),
      [human],
      'only the human mail is left in INBOX',
    );
    assert.equal(inbox()[0]!.seen, false, 'the human mail is still unread');

    // Later passes (a new notice, IDLE, the periodic check) do not read it again.
    const later = await send('erin@customer.example');
    imap.deliver(dsn(later.messageId, 'erin@customer.example'));
    await applied(later.id, 'erin@customer.example');
    await eventually(() => imap.list('Cartero/Processed').length === before + 2, 30_000, 'the second DSN moved');
    const st = await status();
    assert.equal(st.stats.human, 1, 'the human mail was classified once');
    assert.equal(inbox().length, 1);
    assert.equal(inbox()[0]!.seen, false, 'still unread');
    assert.equal((await api(stack, 'DELETE', `/v1/tenants/${TENANT}/bounce-mailbox`, { key })).status, 204);
  });

  test("XOAUTH2: the watch logs in with the tenant's OAuth2 access token, never a password", async () => {
    const OAUTH_TENANT = 'imap-watch-oauth';
    const oauthKey = await createPeerTenant(stack, OAUTH_TENANT, peer, pki.caCert, {
      auth: {
        type: 'oauth2',
        provider: 'generic',
        mode: 'client_credentials',
        user: imap.user,
        // Never reached: the token below is in the store with an hour to live.
        tokenUrl: 'https://localhost:9/token',
        clientId: 'imap-client',
        clientSecret: 'imap-secret',
      },
    });
    const tenant = await stack.tenants.get(OAUTH_TENANT);
    const token = `ya29.${randomBytes(24).toString('base64url')}`;
    await stack.repos.oauthTokens.save(
      stack.tenants.credentialBinding(tenant),
      { accessToken: token, expiresAt: Date.now() + 3_600_000 },
      tenant.settingsVersion,
    );
    imap.acceptToken(token);
    const path = `/v1/tenants/${OAUTH_TENANT}/bounce-mailbox`;
    const withPassword = await api(stack, 'PUT', path, { key: oauthKey, body: mailboxBody({ auth: { kind: 'oauth2' } }) });
    assert.equal(withPassword.status, 400, JSON.stringify(withPassword.body));
    assert.equal(withPassword.body.errors[0].field, 'password');
    const passwordTenant = await api(stack, 'PUT', `/v1/tenants/${TENANT}/bounce-mailbox`, {
      key,
      body: mailboxBody({ auth: { kind: 'oauth2' }, password: undefined }),
    });
    assert.equal(passwordTenant.status, 400, 'a password tenant has no token to log in with');

    const put = await api(stack, 'PUT', path, { key: oauthKey, body: mailboxBody({ auth: { kind: 'oauth2' }, password: undefined }) });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.deepEqual(put.body.auth, { kind: 'oauth2' });
    assert.equal(put.body.passwordSet, false);
    const oauthStatus = async () => (await api(stack, 'GET', path, { key: oauthKey })).body;
    await eventually(async () => (await oauthStatus()).status.state === 'watching', 60_000, 'watching with XOAUTH2');
    assert.ok(imap.tokenChecks.includes(token), "Dovecot checked the tenant's access token");

    assert.equal(imap.list('INBOX').filter((e) => e.seen).length, 0, 'the human mail is still unread');
    assert.equal((await api(stack, 'DELETE', path, { key: oauthKey })).status, 204);
  });
  test('XOAUTH2: a token the IMAP server refuses before its expiry is refreshed once and the login tried once more', async () => {
    const REFRESH_TENANT = 'imap-watch-oauth-refresh';
    const refreshKey = await createPeerTenant(stack, REFRESH_TENANT, peer, pki.caCert, {
      auth: {
        type: 'oauth2',
        provider: 'generic',
        mode: 'client_credentials',
        user: imap.user,
        tokenUrl: `${idp.baseUrl}/token`,
        clientId: 'imap-refresh-client',
        clientSecret: 'imap-refresh-secret',
      },
    });
    const tenant = await stack.tenants.get(REFRESH_TENANT);
    const binding = stack.tenants.credentialBinding(tenant);
    // A token with an hour to live in the store, which the IMAP server has revoked.
    const first = `ya29.${randomBytes(24).toString('base64url')}`;
    await stack.repos.oauthTokens.save(binding, { accessToken: first, expiresAt: Date.now() + 3_600_000 }, tenant.settingsVersion);
    imap.acceptTokensExcept([first]);
    const grants = idp.tokens('client_credentials', 200).length;
    const checksBefore = imap.tokenChecks.length;
    const path = `/v1/tenants/${REFRESH_TENANT}/bounce-mailbox`;
    const put = await api(stack, 'PUT', path, { key: refreshKey, body: mailboxBody({ auth: { kind: 'oauth2' }, password: undefined }) });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    await eventually(async () => (await api(stack, 'GET', path, { key: refreshKey })).body.status.state === 'watching', 60_000, 'watching');
    const second = (await stack.repos.oauthTokens.get(binding))?.accessToken;
    assert.ok(second && second !== first, 'a new token in the store');
    const sha = (t: string) => createHash('sha256').update(t).digest('hex').slice(0, 12);
    assert.deepEqual(
      imap.tokenChecks.slice(checksBefore).map(sha),
      [first, second].map(sha),
      'refused token, then the refreshed one, once each',
    );
    assert.equal(idp.tokens('client_credentials', 200).length, grants + 1, 'exactly one refresh');
    assert.equal((await api(stack, 'DELETE', path, { key: refreshKey })).status, 204);
  });
});
