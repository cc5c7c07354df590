import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { OAuthTokenRepository } from '../../src/store/oauth-tokens';
import { makeTestPki, type TestPki } from '../support/certs';
import { OAuthServer } from '../support/oauth-server';
import { eventually, SmtpPeer } from '../support/smtp-peer';
import type { PeerConfig } from '../support/smtp-peer-process';
import { api, messageUntil, createPeerTenant, startStack, type Stack } from '../support/stack';
import { queryTokenState, tokenWorkflowId } from '../../src/temporal/handoffs/oauth-token';

/**
 * OAuth2 end to end with real servers: the token server is oauth2-mock-server in its own process
 * (signed JWT access tokens, seconds-long lifetimes, revocation), the SMTP server is smtp-server in
 * its own process accepting XOAUTH2 only for unexpired tokens that verify against the token
 * server's JWKS. Cartero runs its production path: token workflow, sealed store, nodemailer XOAUTH2.
 */
let stack: Stack;
let pki: TestPki;
let idp: OAuthServer;
let peer: SmtpPeer;
let tmp: string;
const peers: SmtpPeer[] = [];
const USER = 'ops@acme.example';
const SA_EMAIL = 'mailer@acme-project.iam.gserviceaccount.com';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const sa = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});

before(async () => {
  pki = makeTestPki(['localhost']);
  tmp = mkdtempSync(path.join(os.tmpdir(), 'cartero-oauth-'));
  writeFileSync(path.join(tmp, 'ca.pem'), pki.caCert);
  idp = await OAuthServer.start({
    key: pki.serverKey,
    cert: pki.serverCert,
    tokenTtlS: 3600,
    serviceAccounts: { [SA_EMAIL]: sa.publicKey },
  });
  peer = await startPeer();
  stack = await startStack({
    OAUTH_GOOGLE_TOKEN_URL: `${idp.baseUrl}/token`,
    OAUTH_GOOGLE_AUTHORIZE_URL: `${idp.baseUrl}/authorize`,
    OAUTH_MICROSOFT_AUTHORITY_HOST: idp.baseUrl,
    OAUTH_CA_FILE: path.join(tmp, 'ca.pem'),
    OAUTH_ALLOW_PRIVATE_NETWORKS: 'loopback',
    OAUTH_REFRESH_MARGIN_MS: '2000',
    // The browser is the test: it takes the provider's redirect and calls the API itself.
    OAUTH_REDIRECT_URL: 'http://127.0.0.1:9/v1/oauth/callback',
    SEND_RETRY_INITIAL_MS: '300',
    SEND_RETRY_MAX_MS: '2000',
  });
});
after(async () => {
  await Promise.all([stack?.stop(), idp?.stop(), ...peers.map((p) => p.stop())]);
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function oauthPeerConfig(extra: Partial<NonNullable<PeerConfig['oauth']>> = {}): NonNullable<PeerConfig['oauth']> {
  return { jwksUrl: `${idp.baseUrl}/jwks`, issuer: idp.issuer, ca: pki.caCert, ...extra };
}

async function startPeer(extra: Partial<PeerConfig> = {}): Promise<SmtpPeer> {
  const p = await SmtpPeer.start({
    implicitTls: false,
    key: pki.serverKey,
    cert: pki.serverCert,
    users: {},
    authMethods: ['XOAUTH2'],
    oauth: oauthPeerConfig(),
    ...extra,
  });
  peers.push(p);
  return p;
}

const message = (subject: string) => ({ from: 'support@acme.example', to: ['alice@customer.example'], subject, text: 'Hello' });

async function send(key: string, subject: string): Promise<string> {
  const r = await api(stack, 'POST', '/v1/messages', { key, body: message(subject) });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  return r.body.id as string;
}

const until = (key: string, id: string, statuses: string[], timeoutMs = 30_000) => messageUntil(stack, key, id, statuses, timeoutMs);

const tenantStatus = async (id: string) => (await api(stack, 'GET', `/v1/tenants/${id}`, { key: stack.adminKey })).body.status as string;

/** GET over HTTPS trusting the test CA, without following redirects. */
function httpsGet(url: string): Promise<{ status: number; location: string | undefined }> {
  return new Promise((resolve, reject) => {
    get(url, { ca: pki.caCert }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, location: res.headers.location });
    }).on('error', reject);
  });
}

/** Start → provider consent page (which approves at once) → the callback URL the browser would open. */
async function consentCallbackUrl(tenantId: string, provider: string): Promise<string> {
  const start = await fetch(`${stack.baseUrl}/v1/tenants/${tenantId}/oauth/${provider}/start`, {
    headers: { authorization: `Bearer ${stack.adminKey}` },
    redirect: 'manual',
  });
  assert.equal(start.status, 302, await start.text());
  const authorize = new URL(start.headers.get('location') ?? '');
  assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
  assert.ok(authorize.searchParams.get('code_challenge'));
  assert.ok(authorize.searchParams.get('state'));
  const provided = await httpsGet(authorize.href);
  assert.equal(provided.status, 302);
  const cb = new URL(provided.location ?? '');
  return `${stack.baseUrl}${cb.pathname}${cb.search}`;
}

async function storedToken(tenantId: string): Promise<string> {
  const t = await new OAuthTokenRepository(stack.store.db, stack.keyring).get(
    stack.tenants.credentialBinding(await stack.tenants.get(tenantId)),
  );
  assert.ok(t, 'no token stored');
  return t.accessToken;
}
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

const xoauthEvents = (p: SmtpPeer) =>
  p.events.filter((e): e is Extract<typeof e, { type: 'auth' }> => e.type === 'auth' && e.method === 'XOAUTH2');

describe('XOAUTH2 with each auth mode', () => {
  const modes: Array<[string, Record<string, unknown>, string]> = [
    [
      'google-refresh',
      { provider: 'google', mode: 'refresh_token', clientId: 'g-client', clientSecret: 'g-secret', refreshToken: 'g-rt-1' },
      'refresh_token',
    ],
    [
      'google-sa',
      { provider: 'google', mode: 'service_account', serviceAccountEmail: SA_EMAIL, serviceAccountPrivateKey: sa.privateKey },
      JWT_BEARER,
    ],
    [
      'ms-app',
      { provider: 'microsoft', mode: 'client_credentials', entraTenantId: 'contoso', clientId: 'm-client', clientSecret: 'm-secret' },
      'client_credentials',
    ],
    [
      'generic-cc',
      { provider: 'generic', mode: 'client_credentials', tokenUrl: '', clientId: 'x-client', clientSecret: 'x-secret', scope: 'smtp' },
      'client_credentials',
    ],
    [
      'generic-refresh',
      { provider: 'generic', mode: 'refresh_token', tokenUrl: '', clientId: 'x-client', clientSecret: 'x-secret', refreshToken: 'x-rt-1' },
      'refresh_token',
    ],
  ];
  for (const [id, auth, grant] of modes) {
    test(`${id}: token from the token server, accepted by the SMTP server, stored sealed`, async () => {
      const grantsBefore = idp.tokens(grant, 200).length;
      const full = { type: 'oauth2', user: USER, ...auth, ...(auth.tokenUrl === '' ? { tokenUrl: `${idp.baseUrl}/token` } : {}) };
      const key = await createPeerTenant(stack, id, peer, pki.caCert, { auth: full });
      const done = await until(key, await send(key, `mode ${id}`), ['sent', 'failed', 'waiting_credentials']);
      assert.equal(done.status, 'sent', JSON.stringify(done));
      assert.ok(idp.tokens(grant, 200).length > grantsBefore, `no ${grant} grant at the token server`);
      // The SMTP server accepted exactly the token in the store, which keeps it only sealed.
      const token = await storedToken(id);
      const sha = sha256(token);
      assert.ok(
        xoauthEvents(peer).some((e) => e.ok && e.user === USER && e.tokenSha === sha),
        'the SMTP server did not accept the stored token',
      );
      const raw = await stack.store.db.collection('oauth_tokens').findOne({ _id: id as unknown as never });
      assert.match(String(raw?.accessTokenSealed), /^v2\./);
      // Look for the token itself: a bare 'eyJ' can occur by chance inside base64 ciphertext.
      assert.ok(!JSON.stringify(raw).includes(token), 'the clear token in the store');
      // The token workflow owns the token's life; its state shows times, never the token.
      const state = await queryTokenState(stack.temporal, id);
      assert.equal((state as { status: string }).status, 'valid');
      assert.ok(!JSON.stringify(state).includes(token), 'the token leaked into the workflow state');
      const view = await api(stack, 'GET', `/v1/tenants/${id}`, { key: stack.adminKey });
      assert.ok(!JSON.stringify(view.body).includes('secret'), 'a secret leaked into the tenant view');
    });
  }
});

describe('verify', () => {
  test("POST /verify authenticates with XOAUTH2 using the tenant's token", async () => {
    const r = await api(stack, 'POST', '/v1/tenants/ms-app/verify', { key: stack.adminKey });
    assert.equal(r.status, 200);
    assert.equal(r.body.ok, true, JSON.stringify(r.body));
    assert.ok(r.body.steps.some((s: { step: string; ok: boolean }) => s.step === 'auth' && s.ok));
  });
});

describe('consent, revocation, re-consent', () => {
  test('Microsoft delegated: no refresh token → sends wait; consent (code + PKCE) → sends go, refresh via MSAL', async () => {
    const id = 'ms-delegated';
    const key = await createPeerTenant(stack, id, peer, pki.caCert, {
      auth: {
        type: 'oauth2',
        provider: 'microsoft',
        mode: 'refresh_token',
        user: USER,
        entraTenantId: 'contoso',
        clientId: 'm-client',
        clientSecret: 'm-secret',
      },
    });
    const waiting = await send(key, 'before consent');
    await until(key, waiting, ['waiting_credentials']);
    assert.equal(await tenantStatus(id), 'needs_reauth');
    const cb = await fetch(await consentCallbackUrl(id, 'microsoft'));
    assert.equal(cb.status, 200, await cb.clone().text());
    assert.equal(((await cb.json()) as { status: string }).status, 'active');
    assert.ok(idp.tokens('authorization_code', 200).length >= 1);
    const sent = await until(key, waiting, ['sent', 'failed']);
    assert.equal(sent.status, 'sent');
    assert.equal(await tenantStatus(id), 'active');
    const view = (await api(stack, 'GET', `/v1/tenants/${id}`, { key: stack.adminKey })).body;
    assert.equal(view.auth.refreshTokenSet, true);
    assert.equal(view.auth.refreshToken, undefined);
    // The token workflow refreshes with the consented refresh token (MSAL refresh grant).
    await eventually(() => idp.tokens('refresh_token', 200).length > 0, 20_000, 'a refresh_token grant');
  });

  test('revoked refresh token → needs_reauth + event, sends wait; re-consent → they go', async () => {
    const id = 'google-revoked';
    // A new connection per message: an authenticated session would outlive the token.
    const p = await startPeer({ closeAfterMessage: true });
    const key = await createPeerTenant(stack, id, p, pki.caCert, {
      auth: {
        type: 'oauth2',
        provider: 'google',
        mode: 'refresh_token',
        user: USER,
        clientId: 'g-client',
        clientSecret: 'g-secret',
        refreshToken: 'g-rt-revoke-me',
      },
    });
    idp.command({ type: 'config', config: { tokenTtlS: 4 } });
    try {
      assert.equal((await until(key, await send(key, 'before revocation'), ['sent', 'failed'])).status, 'sent');
      idp.command({ type: 'revoke' });
      // The workflow's next refresh (about 2 s before expiry) meets invalid_grant.
      await eventually(async () => (await tenantStatus(id)) === 'needs_reauth', 30_000, 'needs_reauth');
      const events = await stack.store.db.collection('events').find({ tenantId: id, type: 'tenant.needs_reauth' }).toArray();
      assert.equal(events.length, 1);
      assert.match(String(events[0]!._id), new RegExp(`^tenant\\.needs_reauth:${id}:\\d+$`));
      assert.match(String((events[0]!.data as { reason: string }).reason), /invalid_grant/);
      // The access token in hand stays valid until it expires (revoking the refresh token does not
      // recall it); after that, sends wait.
      await eventually(
        async () => {
          const t = await new OAuthTokenRepository(stack.store.db, stack.keyring).get(
            stack.tenants.credentialBinding(await stack.tenants.get(id)),
          );
          return t !== null && t.expiresAt < Date.now();
        },
        30_000,
        'the last access token to expire',
      );
      const waiting = await send(key, 'after revocation');
      const w = await until(key, waiting, ['waiting_credentials', 'sent', 'failed']);
      assert.equal(w.status, 'waiting_credentials');
      const cb = await fetch(await consentCallbackUrl(id, 'google'));
      assert.equal(cb.status, 200, await cb.clone().text());
      assert.equal((await until(key, waiting, ['sent', 'failed'])).status, 'sent');
      assert.equal(await tenantStatus(id), 'active');
    } finally {
      idp.command({ type: 'config', config: { tokenTtlS: 3600 } });
      // Its token workflow would go on refreshing its last seconds-long token; other tests count
      // every grant at the token server, so this tenant's must stop here.
      await stack.temporal.workflow
        .getHandle(tokenWorkflowId(id))
        .terminate('test over')
        .catch(() => undefined);
    }
  });

  test('callback refuses forged, garbage, denied and replayed state; nothing is stored', async () => {
    const id = 'google-consent';
    await createPeerTenant(stack, id, peer, pki.caCert, {
      auth: { type: 'oauth2', provider: 'google', mode: 'refresh_token', user: USER, clientId: 'g-client', clientSecret: 'g-secret' },
    });
    const before = (await api(stack, 'GET', `/v1/tenants/${id}`, { key: stack.adminKey })).body;
    const goodUrl = new URL(await consentCallbackUrl(id, 'google'));
    const state = goodUrl.searchParams.get('state') ?? '';
    const [payload, kid, sig] = state.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
    const forgedPayload = Buffer.from(JSON.stringify({ ...claims, t: 'google-revoked' })).toString('base64url');
    const callback = async (params: Record<string, string>, accept = 'application/json') => {
      const u = new URL(`${stack.baseUrl}/v1/oauth/callback`);
      for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
      return fetch(u, { headers: { accept } });
    };

    const forged = await callback({ code: 'x', state: `${forgedPayload}.${kid}.${sig}` });
    assert.equal(forged.status, 400);
    assert.equal(forged.headers.get('content-type')?.split(';')[0], 'application/problem+json');
    assert.equal(((await forged.json()) as { code: string }).code, 'invalid_state');
    const garbage = await callback({ code: 'x', state: 'not-a-state' });
    assert.equal(((await garbage.json()) as { code: string }).code, 'invalid_state');
    const missing = await fetch(`${stack.baseUrl}/v1/oauth/callback?code=x`);
    assert.equal(missing.status, 400);

    const denied = new URL(await consentCallbackUrl(id, 'google'));
    const deniedRes = await callback({ error: 'access_denied', state: denied.searchParams.get('state') ?? '' }, 'text/html');
    assert.equal(deniedRes.status, 400);
    assert.match(deniedRes.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(await deniedRes.text(), /denied/);

    const unchanged = (await api(stack, 'GET', `/v1/tenants/${id}`, { key: stack.adminKey })).body;
    assert.equal(unchanged.settingsVersion, before.settingsVersion);
    assert.equal(unchanged.auth.refreshTokenSet, undefined);

    const ok = await fetch(goodUrl);
    assert.equal(ok.status, 200, await ok.clone().text());
    const replay = await fetch(goodUrl);
    assert.equal(replay.status, 400);
    assert.equal(((await replay.json()) as { code: string }).code, 'replayed_state');
    const after = (await api(stack, 'GET', `/v1/tenants/${id}`, { key: stack.adminKey })).body;
    assert.equal(after.auth.refreshTokenSet, true);
    assert.equal(after.settingsVersion, before.settingsVersion + 1);
  });

  test('start: a tenant key sees only its own tenant; client-credentials modes have no consent', async () => {
    const other = await createPeerTenant(stack, 'other-tenant', peer, pki.caCert);
    const foreign = await api(stack, 'GET', '/v1/tenants/google-consent/oauth/google/start', { key: other });
    assert.equal(foreign.status, 404);
    const app = await api(stack, 'GET', '/v1/tenants/ms-app/oauth/microsoft/start', { key: stack.adminKey });
    assert.equal(app.status, 400);
    assert.match(app.body.detail, /needs no user consent/);
    const badProvider = await api(stack, 'GET', '/v1/tenants/ms-app/oauth/yahoo/start', { key: stack.adminKey });
    assert.equal(badProvider.status, 400);
    assert.equal(badProvider.body.errors[0].field, 'provider');
  });
});

describe('token life while sending', () => {
  test('tokens expire mid-queue: refreshed ahead of expiry, every message authenticates, none fails', async () => {
    const p = await startPeer({ closeAfterMessage: true });
    const id = 'expiring';
    idp.command({ type: 'config', config: { tokenTtlS: 4 } });
    try {
      const key = await createPeerTenant(stack, id, p, pki.caCert, {
        auth: {
          type: 'oauth2',
          provider: 'generic',
          mode: 'client_credentials',
          user: USER,
          tokenUrl: `${idp.baseUrl}/token`,
          clientId: 'x',
          clientSecret: 'y',
        },
      });
      const started = Date.now();
      const ids: string[] = [];
      // Sequential, over more than two token lifetimes; each message opens a new connection.
      while (Date.now() - started < 10_000) {
        const m = await send(key, `queue ${ids.length}`);
        ids.push(m);
        const done = await until(key, m, ['sent', 'failed', 'waiting_credentials', 'retrying']);
        assert.equal(done.status, 'sent', JSON.stringify(done));
        assert.equal(done.attempts.length, 1);
        await new Promise((r) => setTimeout(r, 700));
      }
      const auths = xoauthEvents(p);
      assert.ok(auths.length >= ids.length, `${auths.length} AUTHs for ${ids.length} messages`);
      assert.deepEqual(
        auths.filter((a) => !a.ok),
        [],
        'an expired or refused token reached the server',
      );
      assert.ok(new Set(auths.map((a) => a.tokenSha)).size >= 3, 'the token was not refreshed across its lifetimes');
    } finally {
      idp.command({ type: 'config', config: { tokenTtlS: 3600 } });
      // Its token workflow would go on refreshing its last seconds-long token; other tests count
      // every grant at the token server, so this tenant's must stop here.
      await stack.temporal.workflow
        .getHandle(tokenWorkflowId(id))
        .terminate('test over')
        .catch(() => undefined);
    }
  });

  for (const failStyle of ['challenge', 'reply'] as const) {
    test(`server refuses a still-valid token (${failStyle === 'challenge' ? '334 then 535, Gmail' : 'bare 535, Entra'}): one refresh, one retry, sent`, async () => {
      const p = await startPeer({ closeAfterMessage: true, oauth: oauthPeerConfig({ failStyle }) });
      const id = `refused-${failStyle}`;
      const key = await createPeerTenant(stack, id, p, pki.caCert, {
        auth: {
          type: 'oauth2',
          provider: 'generic',
          mode: 'client_credentials',
          user: USER,
          tokenUrl: `${idp.baseUrl}/token`,
          clientId: 'x',
          clientSecret: 'y',
        },
      });
      assert.equal((await until(key, await send(key, 'first'), ['sent', 'failed'])).status, 'sent');
      const refused = sha256(await storedToken(id));
      await p.configure({ oauth: oauthPeerConfig({ failStyle, rejectTokens: [refused] }) });
      const grants = idp.tokens('client_credentials', 200).length;
      const done = await until(key, await send(key, 'second'), ['sent', 'failed', 'waiting_credentials']);
      const auths = xoauthEvents(p);
      assert.equal(
        done.status,
        'sent',
        `${JSON.stringify(done)}\nrefused ${refused.slice(0, 8)}; auths ${JSON.stringify(auths.map((a) => [a.ok, a.tokenSha?.slice(0, 8)]))}; grants ${idp.tokens('client_credentials', 200).length - grants}`,
      );
      assert.equal(done.attempts.length, 1);
      assert.ok(auths.some((a) => !a.ok && a.tokenSha === refused));
      assert.ok(auths.at(-1)?.ok && auths.at(-1)?.tokenSha !== refused);
      assert.equal(idp.tokens('client_credentials', 200).length, grants + 1, 'exactly one refresh');
    });
  }
});
