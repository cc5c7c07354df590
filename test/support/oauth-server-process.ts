import { randomUUID } from 'node:crypto';
import { createServer } from 'node:https';
import express from 'express';
import { importSPKI, jwtVerify } from 'jose';
import { OAuth2Server } from 'oauth2-mock-server';

/**
 * A real OAuth2/OIDC server (oauth2-mock-server from npm: signs RS256 JWT access tokens, serves
 * its JWKS, runs authorization code + PKCE, client credentials and refresh token grants) in its
 * own process over HTTPS, driven by its parent over IPC. Around it, only what the tests need:
 * - token lifetime set by the parent (seconds, to see expiry happen);
 * - Entra-style paths (`/<tenant>/oauth2/v2.0/token|authorize`) routed to the same endpoints;
 * - the JWT-bearer grant Google service accounts use: the assertion's signature is verified
 *   against the service account's public key (iss, sub, aud, scope checked) before a token is issued;
 * - revocation: `revoke` makes every refresh token seen so far answer `invalid_grant`.
 */
export interface OAuthServerConfig {
  key: string;
  cert: string;
  tokenTtlS: number;
  /** Service accounts allowed to use the JWT-bearer grant: email → SPKI public key (PEM). */
  serviceAccounts: Record<string, string>;
}

export type OAuthServerCommand =
  { type: 'config'; config: Partial<Pick<OAuthServerConfig, 'tokenTtlS' | 'serviceAccounts'>> } | { type: 'revoke' };

export type OAuthServerEvent =
  | { type: 'listening'; port: number; issuer: string }
  | { type: 'token'; grantType: string; status: number; sub?: string; refreshToken?: string; at: number };

const send = (e: OAuthServerEvent) => process.send?.(e);
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const GOOGLE_AUD = 'https://oauth2.googleapis.com/token';

let cfg: OAuthServerConfig;
const seenRefreshTokens = new Set<string>();
const revoked = new Set<string>();

process.on('message', (raw) => {
  const msg = raw as OAuthServerConfig | OAuthServerCommand;
  if ('type' in msg && msg.type === 'config') {
    cfg = { ...cfg, ...msg.config };
    return;
  }
  if ('type' in msg && msg.type === 'revoke') {
    for (const t of seenRefreshTokens) revoked.add(t);
    return;
  }
  cfg = msg;
  void start();
});

async function start(): Promise<void> {
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate('RS256');
  const service = mock.service;

  service.on(
    'beforeTokenSigning',
    (token: { payload: Record<string, unknown> }, req: { body: Record<string, string>; assertedSubject?: string }) => {
      const now = Math.floor(Date.now() / 1000);
      token.payload.exp = now + cfg.tokenTtlS;
      // Unique like real providers' tokens (Entra's uti, Google's opaque ones): without it two tokens
      // issued within the same second are the same string, so a refresh could hand back the very
      // token the SMTP server just refused (the oauth suite failed that way now and then).
      token.payload.jti = randomUUID();
      if (req.assertedSubject) token.payload.sub = req.assertedSubject;
    },
  );
  service.on(
    'beforeResponse',
    (response: { body: Record<string, unknown>; statusCode: number }, req: { body: Record<string, string>; originalGrant?: string }) => {
      const grant = req.originalGrant ?? req.body.grant_type ?? '';
      const presented = req.body.refresh_token;
      if (grant === 'refresh_token' && presented) {
        seenRefreshTokens.add(presented);
        if (revoked.has(presented)) {
          response.statusCode = 400;
          response.body = { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' };
        }
      }
      if (response.statusCode === 200) {
        response.body.expires_in = cfg.tokenTtlS;
        // Entra's shape, which MSAL reads to name the account.
        response.body.client_info = Buffer.from(JSON.stringify({ uid: 'test-user', utid: 'test-tenant' })).toString('base64url');
        if (typeof response.body.refresh_token === 'string') seenRefreshTokens.add(response.body.refresh_token);
      }
      send({
        type: 'token',
        grantType: grant,
        status: response.statusCode,
        at: Date.now(),
        ...(presented ? { refreshToken: presented } : {}),
      });
    },
  );

  const app = express();
  // Entra paths → the mock's own endpoints.
  app.use((req, _res, next) => {
    req.url = req.url.replace(/^\/[^/]+\/oauth2\/v2\.0\/(token|authorize)/, '/$1');
    next();
  });
  app.post('/token', express.urlencoded({ extended: false }), async (req, res, next) => {
    const body = req.body as Record<string, string>;
    if (body.grant_type !== JWT_BEARER) return next();
    try {
      const claims = JSON.parse(Buffer.from((body.assertion ?? '').split('.')[1] ?? '', 'base64url').toString('utf8')) as { iss?: string };
      const pem = claims.iss ? cfg.serviceAccounts[claims.iss] : undefined;
      if (!pem) throw new Error('unknown service account');
      const { payload } = await jwtVerify(body.assertion ?? '', await importSPKI(pem, 'RS256'), {
        issuer: claims.iss,
        audience: GOOGLE_AUD,
      });
      if (!(typeof payload.scope === 'string' ? payload.scope : '').split(' ').includes('https://mail.google.com/'))
        throw new Error('scope https://mail.google.com/ missing');
      if (typeof payload.sub !== 'string') throw new Error('no subject: domain-wide delegation needs one');
      Object.assign(req, { assertedSubject: payload.sub, originalGrant: JWT_BEARER });
      req.body = { grant_type: 'client_credentials', scope: payload.scope };
      next();
    } catch (err) {
      send({ type: 'token', grantType: JWT_BEARER, status: 400, at: Date.now() });
      res.status(400).json({ error: 'invalid_grant', error_description: (err as Error).message });
    }
  });
  app.use(service.requestHandler);

  const server = createServer({ key: cfg.key, cert: cfg.cert }, app);
  server.listen(0, '127.0.0.1', () => {
    const addr = server.address();
    const port = typeof addr === 'object' && addr ? addr.port : 0;
    mock.issuer.url = `https://localhost:${port}`;
    send({ type: 'listening', port, issuer: mock.issuer.url });
  });
}
