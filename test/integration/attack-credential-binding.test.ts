import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SealedCredentialsError } from '../../src/errors';
import { upgradeLegacySeals } from '../../src/store/seal-upgrade';
import { sealScopeOf } from '../../src/store/tenant-seal';
import { bounceWatchWorkflowId, startOrWakeWatch } from '../../src/temporal/handoffs/bounce-mailbox-watch';
import { makeTestPki, type TestPki } from '../support/certs';
import { OAuthServer } from '../support/oauth-server';
import { startHttpsRecorder, startImapRecorder, type RecordingListener } from '../support/recording-listener';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import type { PeerConfig } from '../support/smtp-peer-process';
import { api, messageUntil, startStack, type Stack } from '../support/stack';

/**
 * Attack (issue 12, item 1): someone holding a tenant's API key moves the tenant's endpoint (SMTP
 * host/port/TLS trust, IMAP host, OAuth2 token URL) to a server of their own, keeping the stored
 * secret, and lets Cartero hand the secret over. Everything here is real: the SMTP servers are
 * smtp-server processes that record every AUTH, the attacker's IMAP and token endpoints are TLS
 * listeners that record every byte, the OAuth2 server is oauth2-mock-server.
 * Each secret must reach only the endpoint it was given with: moving the endpoint through the API
 * without re-supplying the secret is a 400 naming the fields, and a store edited behind the API's
 * back cannot open the secret (it is sealed with the endpoint in its associated data).
 */
let stack: Stack;
let pki: TestPki;
let otherCa: TestPki;
let idp: OAuthServer;
let tmp: string;
let p1: SmtpPeer; // the tenant's real SMTP server
let p2: SmtpPeer; // the attacker's
let o1: SmtpPeer; // the OAuth2 tenant's real SMTP server (XOAUTH2)
let o2: SmtpPeer; // the attacker's, trusting the same token server
let imap1: RecordingListener; // the tenant's IMAP server (it refuses every login, but records it)
let imap2: RecordingListener; // the attacker's
let tokenTrap: RecordingListener; // the attacker's token endpoint

const PASSWORD = 'tenant-smtp-password-9f1c';
const IMAP_PASSWORD = 'tenant-imap-password-77ab';
const CLIENT_SECRET = 'tenant-client-secret-3e5d';
const REFRESH_TOKEN = 'tenant-refresh-token-b2c4';
const USER = 'ops@acme.example';

before(async () => {
  pki = makeTestPki(['localhost']);
  otherCa = makeTestPki(['localhost']);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-attack-bind-'));
  writeFileSync(path.join(tmp, 'ca.pem'), pki.caCert);
  idp = await OAuthServer.start({ key: pki.serverKey, cert: pki.serverCert, tokenTtlS: 3600, serviceAccounts: {} });
  const smtp = (extra: Partial<PeerConfig> = {}) =>
    SmtpPeer.start({ implicitTls: false, key: pki.serverKey, cert: pki.serverCert, users: { u: PASSWORD }, ...extra });
  const xoauth: Partial<PeerConfig> = {
    users: {},
    authMethods: ['XOAUTH2'],
    oauth: { jwksUrl: `${idp.baseUrl}/jwks`, issuer: idp.issuer, ca: pki.caCert },
  };
  [p1, p2, o1, o2, imap1, imap2, tokenTrap] = await Promise.all([
    smtp(),
    smtp(),
    smtp(xoauth),
    smtp(xoauth),
    startImapRecorder({ key: pki.serverKey, cert: pki.serverCert }),
    startImapRecorder({ key: pki.serverKey, cert: pki.serverCert }),
    startHttpsRecorder({ key: pki.serverKey, cert: pki.serverCert }),
  ]);
  stack = await startStack({
    OAUTH_GOOGLE_TOKEN_URL: `${idp.baseUrl}/token`,
    OAUTH_GOOGLE_AUTHORIZE_URL: `${idp.baseUrl}/authorize`,
    OAUTH_MICROSOFT_AUTHORITY_HOST: idp.baseUrl,
    OAUTH_CA_FILE: path.join(tmp, 'ca.pem'),
    OAUTH_ALLOW_PRIVATE_NETWORKS: 'loopback',
    OAUTH_REDIRECT_URL: 'http://127.0.0.1:9/v1/oauth/callback',
    SEND_RETRY_INITIAL_MS: '300',
    SEND_RETRY_MAX_MS: '2000',
    // The attacker here edits the store behind the API's back, which the process's tenant cache
    // would hide for up to TENANT_CACHE_MS; the guard under test is the sealing, so every read is fresh.
    TENANT_CACHE_MS: '0',
  });
});
after(async () => {
  await stack?.temporal.workflow
    .getHandle(bounceWatchWorkflowId('bind-imap'))
    .terminate()
    .catch(() => undefined);
  await Promise.all([
    stack?.stop(),
    idp?.stop(),
    ...[p1, p2, o1, o2].map((p) => p?.stop()),
    ...[imap1, imap2, tokenTrap].map((l) => l?.stop()),
  ]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const authEvents = (p: SmtpPeer) => p.events.filter((e) => e.type === 'auth');

async function createTenant(id: string, smtpPort: number, auth: Record<string, unknown>): Promise<string> {
  const r = await api(stack, 'POST', '/v1/tenants', {
    key: stack.adminKey,
    body: {
      id,
      name: id,
      domains: ['acme.example'],
      smtp: { host: 'localhost', port: smtpPort, security: 'starttls', tls: { ca: pki.caCert } },
      auth,
    },
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.apiKey as string;
}

async function send(key: string, subject: string): Promise<string> {
  const r = await api(stack, 'POST', '/v1/messages', {
    key,
    body: { from: 'support@acme.example', to: ['alice@customer.example'], subject, text: 'hello' },
  });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.id as string;
}

/** What an attacker with write access to the store (or a bug) would do: move the endpoint, keep the secret. */
async function editTenantInStore(id: string, set: Record<string, unknown>): Promise<void> {
  const res = await stack.store.db.collection('tenants').updateOne({ _id: id as never }, { $set: set, $inc: { settingsVersion: 1 } });
  assert.equal(res.modifiedCount, 1);
}

const fieldsOf = (body: { errors?: Array<{ field: string }> }) => (body.errors ?? []).map((e) => e.field).sort();

describe('SMTP password bound to host, port and TLS trust', () => {
  test('PATCH with the tenant key moving the endpoint without the password: 400 naming the fields; P2 never sees the password', async () => {
    const key = await createTenant('bind-smtp', p1.port, { type: 'password', user: 'u', password: PASSWORD });
    assert.equal((await messageUntil(stack, key, await send(key, 'to P1'), ['sent', 'failed'])).status, 'sent');
    assert.ok(
      authEvents(p1).some((e) => e.ok),
      'P1 authenticated the tenant',
    );

    const moves: Array<[Record<string, unknown>, string[]]> = [
      [{ port: p2.port }, ['auth', 'smtp.port']],
      [{ host: '127.0.0.1', port: p2.port }, ['auth', 'smtp.host', 'smtp.port']],
      [{ tls: { ca: otherCa.caCert } }, ['auth', 'smtp.tls.ca']],
      [{ tls: { servername: 'mail.attacker.example' } }, ['auth', 'smtp.tls.servername']],
    ];
    for (const [smtp, fields] of moves) {
      const r = await api(stack, 'PATCH', '/v1/tenants/bind-smtp', { key, body: { smtp } });
      assert.equal(r.status, 400, `${JSON.stringify(smtp)} → ${r.status} ${JSON.stringify(r.body)}`);
      assert.equal(r.headers.get('content-type'), 'application/problem+json; charset=utf-8');
      assert.deepEqual([...new Set(fieldsOf(r.body))], fields);
    }
    // Changes that leave the endpoint alone still go through without the secret.
    const harmless = await api(stack, 'PATCH', '/v1/tenants/bind-smtp', { key, body: { name: 'Acme', smtp: { security: 'starttls' } } });
    assert.equal(harmless.status, 200, JSON.stringify(harmless.body));
    const verify = await api(stack, 'POST', '/v1/tenants/bind-smtp/verify', { key });
    assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
    assert.deepEqual(authEvents(p2), [], 'the attacker’s server received an AUTH');
  });

  test('a store edited to point at P2: verify reports a credentials problem, the send waits for credentials, P2 never receives the password', async () => {
    const key = await createTenant('bind-store', p1.port, { type: 'password', user: 'u', password: PASSWORD });
    assert.equal((await messageUntil(stack, key, await send(key, 'to P1'), ['sent', 'failed'])).status, 'sent');
    await editTenantInStore('bind-store', { 'settings.smtp.port': p2.port });

    const verify = await api(stack, 'POST', '/v1/tenants/bind-store/verify', { key });
    assert.equal(verify.status, 200);
    assert.equal(verify.body.ok, false, JSON.stringify(verify.body));
    assert.equal(verify.body.failedStep, 'auth');
    assert.match(verify.body.error, /credentials/i);

    const waiting = await messageUntil(stack, key, await send(key, 'to P2?'), ['waiting_credentials', 'sent', 'failed']);
    assert.equal(waiting.status, 'waiting_credentials', JSON.stringify(waiting));
    assert.deepEqual(authEvents(p2), [], 'the attacker’s server received an AUTH');
    assert.deepEqual(p2.messages(), []);
  });

  test('with the password re-supplied the move is accepted', async () => {
    const key = await createTenant('bind-resupply', p1.port, { type: 'password', user: 'u', password: PASSWORD });
    await p2.configure({ users: { u: PASSWORD, attacker: 'the-attacker-knows-this' } });
    const before = authEvents(p2).length;
    const r = await api(stack, 'PATCH', '/v1/tenants/bind-resupply', {
      key,
      body: { smtp: { port: p2.port }, auth: { type: 'password', user: 'attacker', password: 'the-attacker-knows-this' } },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const verify = await api(stack, 'POST', '/v1/tenants/bind-resupply/verify', { key });
    assert.equal(verify.body.ok, true, JSON.stringify(verify.body));
    // Only what the caller supplied reached P2.
    assert.deepEqual(
      authEvents(p2)
        .slice(before)
        .map((e) => e.user),
      ['attacker'],
    );
  });
});

describe('IMAP password of the bounce mailbox bound to host, port and TLS trust', () => {
  const mailbox = (port: number, over: Record<string, unknown> = {}) => ({
    host: 'localhost',
    port,
    security: 'tls',
    tls: { ca: pki.caCert },
    user: 'bounces@acme.example',
    ...over,
  });
  const watchStatus = async (key: string) => (await api(stack, 'GET', '/v1/tenants/bind-imap/bounce-mailbox', { key })).body;

  test('PUT moving the host without the password: 400; a store edit cannot open it; IMAP2 never receives it', async () => {
    const key = await createTenant('bind-imap', p1.port, { type: 'password', user: 'u', password: PASSWORD });
    const put = await api(stack, 'PUT', '/v1/tenants/bind-imap/bounce-mailbox', {
      key,
      body: mailbox(imap1.port, { password: IMAP_PASSWORD }),
    });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    // The tenant's own server does get it (and refuses it, so the watch waits in `failed`).
    await eventually(() => imap1.saw(IMAP_PASSWORD), 60_000, 'the IMAP password at the tenant’s server');
    await eventually(async () => (await watchStatus(key)).status.state === 'failed', 60_000, 'the watch to fail at IMAP1');

    const moved = await api(stack, 'PUT', '/v1/tenants/bind-imap/bounce-mailbox', { key, body: mailbox(imap2.port) });
    assert.equal(moved.status, 400, JSON.stringify(moved.body));
    assert.deepEqual(fieldsOf(moved.body), ['password', 'port']);
    const trust = await api(stack, 'PUT', '/v1/tenants/bind-imap/bounce-mailbox', {
      key,
      body: mailbox(imap1.port, { tls: { ca: otherCa.caCert } }),
    });
    assert.equal(trust.status, 400, JSON.stringify(trust.body));
    assert.deepEqual(fieldsOf(trust.body), ['password', 'tls.ca']);
    // A change that keeps the endpoint needs no password.
    const folder = await api(stack, 'PUT', '/v1/tenants/bind-imap/bounce-mailbox', {
      key,
      body: mailbox(imap1.port, { processedFolder: 'Done' }),
    });
    assert.equal(folder.status, 200, JSON.stringify(folder.body));

    // Behind the API's back: the stored settings now name IMAP2; the watch is woken to use them.
    const edited = await stack.store.db
      .collection('bounce_mailboxes')
      .findOneAndUpdate(
        { _id: 'bind-imap' as never },
        { $set: { 'settings.port': imap2.port }, $inc: { generation: 1 } },
        { returnDocument: 'after' },
      );
    assert.ok(edited);
    await startOrWakeWatch(stack.temporal, stack.config.temporal.taskQueue, 'bind-imap');
    const failed = await eventually(
      async () => {
        const s = await watchStatus(key);
        return s.status.state === 'failed' && s.port === imap2.port && new Date(s.status.since).getTime() > Date.now() - 60_000 && s;
      },
      60_000,
      'the watch to fail with the moved settings',
    );
    assert.ok(!imap2.saw(IMAP_PASSWORD), 'the IMAP password reached the attacker’s server');
    assert.match(failed.status.error, /credentials|password/i);

    // Re-supplied, the move is accepted; IMAP2 gets only what the caller gave.
    const resupplied = await api(stack, 'PUT', '/v1/tenants/bind-imap/bounce-mailbox', {
      key,
      body: mailbox(imap2.port, { password: 'attacker-supplied' }),
    });
    assert.equal(resupplied.status, 200, JSON.stringify(resupplied.body));
    await eventually(() => imap2.saw('attacker-supplied'), 60_000, 'the new password at IMAP2');
    assert.ok(!imap2.saw(IMAP_PASSWORD));
  });
});

describe('OAuth2: client secret, refresh token and access tokens bound to the token URL and the SMTP endpoint', () => {
  const xoauthAt = (p: SmtpPeer) => authEvents(p).filter((e) => e.method === 'XOAUTH2');

  test('moving the SMTP endpoint: 400 through the API; through the store, no access token reaches O2', async () => {
    const key = await createTenant('bind-oauth-smtp', o1.port, {
      type: 'oauth2',
      provider: 'generic',
      mode: 'client_credentials',
      user: USER,
      tokenUrl: `${idp.baseUrl}/token`,
      clientId: 'x-client',
      clientSecret: CLIENT_SECRET,
    });
    assert.equal((await messageUntil(stack, key, await send(key, 'to O1'), ['sent', 'failed', 'waiting_credentials'])).status, 'sent');
    assert.ok(xoauthAt(o1).some((e) => e.ok));

    const r = await api(stack, 'PATCH', '/v1/tenants/bind-oauth-smtp', { key, body: { smtp: { port: o2.port } } });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.deepEqual(fieldsOf(r.body), ['auth', 'smtp.port']);

    await editTenantInStore('bind-oauth-smtp', { 'settings.smtp.port': o2.port });
    const waiting = await messageUntil(stack, key, await send(key, 'to O2?'), ['waiting_credentials', 'sent', 'failed']);
    assert.equal(waiting.status, 'waiting_credentials', JSON.stringify(waiting));
    const verify = await api(stack, 'POST', '/v1/tenants/bind-oauth-smtp/verify', { key });
    assert.equal(verify.body.ok, false, JSON.stringify(verify.body));
    assert.deepEqual(xoauthAt(o2), [], 'an XOAUTH2 token reached the attacker’s SMTP server');
  });

  test('moving the token URL: the client secret and refresh token never reach the attacker’s token endpoint', async () => {
    const trapUrl = `https://localhost:${tokenTrap.port}/token`;
    const auth = {
      type: 'oauth2',
      provider: 'generic',
      mode: 'refresh_token',
      user: USER,
      tokenUrl: `${idp.baseUrl}/token`,
      clientId: 'x-client',
      clientSecret: CLIENT_SECRET,
      refreshToken: REFRESH_TOKEN,
    };
    const key = await createTenant('bind-oauth-url', o1.port, auth);
    assert.equal((await messageUntil(stack, key, await send(key, 'to O1'), ['sent', 'failed', 'waiting_credentials'])).status, 'sent');

    // Through the API, auth is replaced whole: a new token URL without the secrets drops them.
    const patched = await api(stack, 'PATCH', '/v1/tenants/bind-oauth-url', {
      key,
      body: { auth: { ...auth, tokenUrl: trapUrl, clientSecret: undefined, refreshToken: undefined } },
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.equal(patched.body.auth.clientSecretSet, undefined);
    assert.equal(
      (await messageUntil(stack, key, await send(key, 'after PATCH'), ['waiting_credentials', 'sent', 'failed'])).status,
      'waiting_credentials',
    );

    // Behind the API's back: the stored token URL names the trap, the sealed secrets are kept, and
    // no access token is left, so the next send needs a refresh.
    const key2 = await createTenant('bind-oauth-url2', o1.port, auth);
    assert.equal((await messageUntil(stack, key2, await send(key2, 'to O1'), ['sent', 'failed', 'waiting_credentials'])).status, 'sent');
    await editTenantInStore('bind-oauth-url2', { 'auth.tokenUrl': trapUrl });
    await stack.store.db.collection('oauth_tokens').deleteOne({ _id: 'bind-oauth-url2' as never });
    const waiting = await messageUntil(stack, key2, await send(key2, 'after edit'), ['waiting_credentials', 'sent', 'failed']);
    assert.equal(waiting.status, 'waiting_credentials', JSON.stringify(waiting));
    assert.ok(!tokenTrap.saw(CLIENT_SECRET), 'the client secret reached the attacker’s token endpoint');
    assert.ok(!tokenTrap.saw(REFRESH_TOKEN), 'the refresh token reached the attacker’s token endpoint');
    assert.equal(tokenTrap.connections, 0, JSON.stringify(tokenTrap.received));
  });
});

describe('records sealed before endpoint binding (v1) stay readable, and are bound by the upgrade at start', () => {
  test('a tenant from before salts: its secrets open as before, the upgrade reseals them bound to the current endpoint', async () => {
    const id = 'bind-legacy';
    const key = await createTenant(id, p1.port, { type: 'password', user: 'u', password: PASSWORD });
    const db = stack.store.db;
    // Turn it into what an older release stored: no salt, every secret sealed with the place alone.
    const v1 = (plain: string, aad: string) => stack.keyring.seal(plain, aad);
    await db.collection('tenants').updateOne(
      { _id: id as never },
      {
        $unset: { salt: '' },
        $set: {
          'auth.sealed.password': v1(PASSWORD, `tenant:${id}:auth.password`),
          webhookSecretSealed: v1('whsec_old', `tenant:${id}:webhook.secret`),
        },
      },
    );
    const now = new Date();
    await db.collection('bounce_mailboxes').insertOne({
      _id: id as never,
      settings: { host: 'localhost', port: imap1.port, security: 'tls', tls: {}, user: 'b', mailbox: 'INBOX', processedFolder: 'Done' },
      passwordSealed: v1(IMAP_PASSWORD, `bounce-mailbox:${id}:password`),
      generation: 1,
      status: { state: 'connecting', error: null, since: now, failures: 0, lastConnectedAt: null },
      stats: {},
      createdAt: now,
      updatedAt: now,
    });
    await db.collection('oauth_tokens').insertOne({
      _id: id as never,
      accessTokenSealed: v1('legacy-access-token', `oauth:${id}:accessToken`),
      obtainedAt: now,
      expiresAt: new Date(Date.now() + 3600_000),
      generation: 1,
      updatedAt: now,
    });
    await db.collection('inbound_settings').insertOne({
      _id: `${id}:mime` as never,
      tenantId: id,
      provider: 'mime',
      clear: {},
      sealed: { bearerToken: v1('legacy-bearer-token-000', `tenant:${id}:inbound.mime.bearerToken`) },
      updatedAt: now,
    });
    // Readable as they are (the tenant has no salt yet).
    const legacy = await stack.tenants.get(id);
    assert.equal((stack.tenants.openAuth(legacy) as { password: string }).password, PASSWORD);

    assert.ok((await upgradeLegacySeals(stack.repos, (msg, f) => assert.fail(`${msg} ${JSON.stringify(f)}`))) >= 1);
    const upgraded = await stack.tenants.get(id);
    assert.ok(upgraded.salt, 'a salt');
    assert.equal(upgraded.legacySeals, undefined, 'done');
    assert.equal(upgraded.settingsVersion, legacy.settingsVersion, 'nothing a reader keys on changed');
    assert.match(String(upgraded.auth.sealed.password), /^v2\./);
    assert.equal((stack.tenants.openAuth(upgraded) as { password: string }).password, PASSWORD);
    assert.equal(stack.tenants.openWebhookSecret(upgraded), 'whsec_old');
    const scope = sealScopeOf(upgraded);
    const mailbox = (await stack.repos.bounceMailboxes.get(id))!;
    assert.match(String(mailbox.passwordSealed), /^v2\./);
    assert.equal(stack.repos.bounceMailboxes.openPassword(mailbox, scope), IMAP_PASSWORD);
    assert.equal((await stack.repos.oauthTokens.get(stack.tenants.credentialBinding(upgraded)))?.accessToken, 'legacy-access-token');
    const inbound = (await stack.repos.inbound.getSettings(id, 'mime'))!;
    assert.equal(stack.repos.inbound.openSettings(inbound, scope).bearerToken, 'legacy-bearer-token-000');
    // A second run finds nothing to do.
    for await (const t of stack.tenants.legacyTenants()) assert.notEqual(t._id, id);

    // Sends still work with the upgraded secrets...
    assert.equal((await messageUntil(stack, key, await send(key, 'after upgrade'), ['sent', 'failed'])).status, 'sent');
    // ...and they are now bound: an endpoint moved in the store no longer opens them, nor a v1 value put back.
    await editTenantInStore(id, { 'settings.smtp.port': p2.port });
    assert.throws(
      () => stack.tenants.openAuth({ ...upgraded, settings: { ...upgraded.settings, smtp: { ...upgraded.settings.smtp, port: p2.port } } }),
      SealedCredentialsError,
    );
    const withV1 = { ...upgraded, auth: { ...upgraded.auth, sealed: { password: v1(PASSWORD, `tenant:${id}:auth.password`) } } };
    assert.throws(() => stack.tenants.openAuth(withV1), SealedCredentialsError);
  });
});
