import {
  ConfidentialClientApplication,
  LogLevel,
  type AuthenticationResult,
  type INetworkModule,
  type NetworkResponse,
} from '@azure/msal-node';
import { CodeChallengeMethod, gaxios, JWT, OAuth2Client } from 'google-auth-library';
import type { OAuthConfig } from '../config/env';
import {
  classifyTokenError,
  GOOGLE_MAIL_SCOPE,
  MICROSOFT_APP_SCOPE,
  MICROSOFT_DELEGATED_SCOPES,
  missingCredential,
  type OAuth2Auth,
} from '../domain/oauth';
import { CarteroError, IdentityProviderUnavailableError, OAuthCredentialsError } from '../errors';
import { createIdpFetch, type IdpFetch } from './http';

/** What a token request yields. `refreshToken` only when the provider issued a (rotated) one. */
export interface TokenGrant {
  accessToken: string;
  expiresAt: number;
  refreshToken?: string;
}

export interface AuthorizeRequest {
  state: string;
  codeChallenge: string;
  redirectUri: string;
}

/** google-auth-library's service-account client posts to this fixed URL; we map it to the configured one. */
const GOOGLE_DEFAULT_TOKEN_URL = 'https://oauth2.googleapis.com/token';
/** Providers that omit `expires_in` get this life (Google and Entra both issue 1 h tokens). */
const DEFAULT_LIFE_S = 3600;

/**
 * Token requests and consent for every provider, through well-kept libraries: google-auth-library
 * (OAuth2Client for refresh tokens and consent, JWT with `subject` for domain-wide delegation),
 * @azure/msal-node (client credentials, refresh token, authorization code with PKCE), and a plain
 * RFC 6749 request for generic token endpoints. All HTTP goes through the guarded client
 * (src/oauth/http.ts). Errors come out as OAuthCredentialsError (a person must act) or
 * IdentityProviderUnavailableError (retry), nothing else.
 */
export class OAuthProviders {
  private readonly fetch: IdpFetch;
  private readonly gaxios: gaxios.Gaxios;

  constructor(private readonly cfg: OAuthConfig) {
    this.fetch = createIdpFetch({ allowPrivateNetworks: cfg.allowPrivateNetworks, ...(cfg.extraCa ? { extraCa: cfg.extraCa } : {}) });
    this.gaxios = new gaxios.Gaxios({ fetchImplementation: this.fetch, retry: false });
    const tokenUrl = new URL(cfg.google.tokenUrl);
    this.gaxios.interceptors.request.add({
      resolved: async (opts) => {
        if (String(opts.url) === GOOGLE_DEFAULT_TOKEN_URL) opts.url = tokenUrl;
        return opts;
      },
    });
  }

  /** A fresh access token for the tenant's credentials; `refreshToken` overrides the stored one (rotation). */
  async obtain(auth: OAuth2Auth, refreshToken?: string): Promise<TokenGrant> {
    const missing = missingCredential(refreshToken ? { ...auth, refreshToken } : auth);
    if (missing) throw new OAuthCredentialsError(missing, 'missing_credentials');
    const rt = refreshToken ?? auth.refreshToken ?? '';
    switch (auth.provider) {
      case 'google':
        return auth.mode === 'service_account' ? this.googleServiceAccount(auth) : this.googleRefresh(auth, rt);
      case 'microsoft':
        return auth.mode === 'client_credentials' ? this.microsoftClientCredentials(auth) : this.microsoftRefresh(auth, rt);
      case 'generic':
        return this.genericToken(
          auth,
          auth.mode === 'client_credentials' ? { grant_type: 'client_credentials' } : { grant_type: 'refresh_token', refresh_token: rt },
        );
    }
  }

  /** The provider's consent page for a delegated mode (PKCE S256, offline access). */
  async authorizeUrl(auth: OAuth2Auth, req: AuthorizeRequest): Promise<string> {
    if (auth.provider === 'google') {
      return this.googleClient(auth, req.redirectUri).generateAuthUrl({
        access_type: 'offline',
        // Google only returns a refresh token on the first consent unless asked again.
        prompt: 'consent',
        scope: [GOOGLE_MAIL_SCOPE],
        state: req.state,
        code_challenge: req.codeChallenge,
        code_challenge_method: CodeChallengeMethod.S256,
        login_hint: auth.user,
        redirect_uri: req.redirectUri,
      });
    }
    if (auth.provider === 'microsoft') {
      // Through msalCall like every MSAL call: a rejected authority is the tenant's error, not a 500.
      return this.msalCall(() =>
        this.microsoftApp(auth).getAuthCodeUrl({
          scopes: MICROSOFT_DELEGATED_SCOPES,
          redirectUri: req.redirectUri,
          state: req.state,
          codeChallenge: req.codeChallenge,
          codeChallengeMethod: 'S256',
          loginHint: auth.user,
        }),
      );
    }
    throw new OAuthCredentialsError('the generic provider has no consent flow: set auth.refreshToken instead', 'unsupported_provider');
  }

  /** Exchanges the consent callback's code; the grant must carry a refresh token. */
  async exchangeCode(
    auth: OAuth2Auth,
    code: string,
    codeVerifier: string,
    redirectUri: string,
  ): Promise<TokenGrant & { refreshToken: string }> {
    let grant: TokenGrant;
    if (auth.provider === 'google') {
      grant = await this.googleCall(async () => {
        const { tokens } = await this.googleClient(auth, redirectUri).getToken({ code, codeVerifier, redirect_uri: redirectUri });
        return this.fromGoogle(tokens);
      });
    } else if (auth.provider === 'microsoft') {
      const app = this.microsoftApp(auth);
      grant = await this.msalCall(async () => {
        const result = await app.acquireTokenByCode({ code, codeVerifier, redirectUri, scopes: MICROSOFT_DELEGATED_SCOPES });
        return this.fromMsal(result, app);
      });
    } else {
      throw new OAuthCredentialsError('the generic provider has no consent flow', 'unsupported_provider');
    }
    if (!grant.refreshToken)
      throw new OAuthCredentialsError('the provider granted no refresh token (offline access missing)', 'no_refresh_token');
    return { ...grant, refreshToken: grant.refreshToken };
  }

  // --- Google ---------------------------------------------------------------------------------

  private googleClient(auth: OAuth2Auth, redirectUri?: string): OAuth2Client {
    return new OAuth2Client({
      clientId: auth.clientId,
      clientSecret: auth.clientSecret,
      ...(redirectUri ? { redirectUri } : {}),
      endpoints: { oauth2TokenUrl: this.cfg.google.tokenUrl, oauth2AuthBaseUrl: this.cfg.google.authorizeUrl },
      transporter: this.gaxios,
    });
  }

  private async googleRefresh(auth: OAuth2Auth, refreshToken: string): Promise<TokenGrant> {
    const client = this.googleClient(auth);
    client.setCredentials({ refresh_token: refreshToken });
    return this.googleCall(async () => this.fromGoogle((await client.refreshAccessToken()).credentials));
  }

  private async googleServiceAccount(auth: Extract<OAuth2Auth, { provider: 'google' }>): Promise<TokenGrant> {
    const jwt = new JWT({
      email: auth.serviceAccountEmail,
      key: auth.serviceAccountPrivateKey,
      scopes: [GOOGLE_MAIL_SCOPE],
      // Domain-wide delegation: the token acts as the sending user.
      subject: auth.user,
      transporter: this.gaxios,
    });
    return this.googleCall(async () => this.fromGoogle(await jwt.authorize()));
  }

  private fromGoogle(t: { access_token?: string | null; expiry_date?: number | null; refresh_token?: string | null }): TokenGrant {
    if (!t.access_token) throw new IdentityProviderUnavailableError('Google answered without an access token');
    return {
      accessToken: t.access_token,
      expiresAt: t.expiry_date ?? Date.now() + DEFAULT_LIFE_S * 1000,
      ...(t.refresh_token ? { refreshToken: t.refresh_token } : {}),
    };
  }

  private async googleCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const own = carteroCause(err);
      if (own) throw own;
      const e = err as { status?: number; response?: { status?: number; data?: unknown }; message?: string };
      const status = e.response?.status ?? e.status;
      const data = (e.response?.data ?? {}) as { error?: string; error_description?: string };
      throw tokenError('Google', status, data.error, data.error_description ?? e.message);
    }
  }

  // --- Microsoft ------------------------------------------------------------------------------

  private microsoftApp(auth: Extract<OAuth2Auth, { provider: 'microsoft' }> | OAuth2Auth): ConfidentialClientApplication {
    const entraTenantId = 'entraTenantId' in auth ? auth.entraTenantId : 'common';
    const authority = (
      'authority' in auth && auth.authority ? auth.authority : `${this.cfg.microsoft.authorityHost}/${entraTenantId}`
    ).replace(/(?<!\/)\/+$/, '');
    // Metadata given up front: no discovery round trip, and a private or test authority works the
    // same as Entra's (MSAL accepts any https authority listed in knownAuthorities).
    const metadata = {
      token_endpoint: `${authority}/oauth2/v2.0/token`,
      authorization_endpoint: `${authority}/oauth2/v2.0/authorize`,
      end_session_endpoint: `${authority}/oauth2/v2.0/logout`,
      issuer: `${authority}/v2.0`,
      jwks_uri: `${authority}/discovery/v2.0/keys`,
    };
    return new ConfidentialClientApplication({
      auth: {
        clientId: auth.clientId ?? '',
        clientSecret: auth.clientSecret ?? '',
        authority,
        knownAuthorities: [new URL(authority).host],
        authorityMetadata: JSON.stringify(metadata),
      },
      system: {
        networkClient: msalNetwork(this.fetch),
        loggerOptions: { logLevel: LogLevel.Error, piiLoggingEnabled: false, loggerCallback: () => undefined },
      },
    });
  }

  private async microsoftClientCredentials(auth: OAuth2Auth): Promise<TokenGrant> {
    const app = this.microsoftApp(auth);
    // skipCache: Cartero's store is the cache; MSAL's in-memory one would hand back a token we replaced.
    return this.msalCall(async () =>
      this.fromMsal(await app.acquireTokenByClientCredential({ scopes: [MICROSOFT_APP_SCOPE], skipCache: true }), app),
    );
  }

  private async microsoftRefresh(auth: OAuth2Auth, refreshToken: string): Promise<TokenGrant> {
    const app = this.microsoftApp(auth);
    return this.msalCall(async () =>
      this.fromMsal(await app.acquireTokenByRefreshToken({ refreshToken, scopes: MICROSOFT_DELEGATED_SCOPES, forceCache: true }), app),
    );
  }

  /** MSAL keeps refresh tokens in its cache, never in the result: Entra rotates them, so we read the newest back. */
  private async fromMsal(result: AuthenticationResult | null, app: ConfidentialClientApplication): Promise<TokenGrant> {
    if (!result?.accessToken) throw new IdentityProviderUnavailableError('Entra answered without an access token');
    const cache = JSON.parse(app.getTokenCache().serialize()) as { RefreshToken?: Record<string, { secret?: string }> };
    const rt = Object.values(cache.RefreshToken ?? {}).find((t) => t.secret)?.secret;
    return {
      accessToken: result.accessToken,
      expiresAt: result.expiresOn ? result.expiresOn.getTime() : Date.now() + DEFAULT_LIFE_S * 1000,
      ...(rt ? { refreshToken: rt } : {}),
    };
  }

  private async msalCall<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const own = carteroCause(err);
      if (own) throw own;
      const e = err as { errorCode?: string; errorMessage?: string; status?: number; name?: string; message?: string };
      if (e.name === 'ServerError') {
        return Promise.reject(tokenError('Entra', e.status ?? 400, e.errorCode, e.errorMessage ?? e.message));
      }
      // Client-side MSAL errors (bad authority, configuration) need a person; network ones a retry.
      if (e.name === 'ClientConfigurationError')
        throw new OAuthCredentialsError(`Entra configuration: ${e.message}`, e.errorCode ?? 'invalid_configuration');
      throw new IdentityProviderUnavailableError(`Entra: ${e.errorCode ?? ''} ${e.message ?? String(err)}`.trim());
    }
  }

  // --- Generic RFC 6749 token endpoint --------------------------------------------------------

  private async genericToken(auth: Extract<OAuth2Auth, { provider: 'generic' }>, grant: Record<string, string>): Promise<TokenGrant> {
    const body = new URLSearchParams({ ...grant, ...(auth.scope ? { scope: auth.scope } : {}) });
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    if (auth.clientSecret) {
      // RFC 6749 §2.3.1: client_secret_basic is the method every server must support.
      const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, '+');
      headers.authorization = `Basic ${Buffer.from(`${enc(auth.clientId)}:${enc(auth.clientSecret)}`).toString('base64')}`;
    } else {
      body.set('client_id', auth.clientId);
    }
    const res = await this.fetch(auth.tokenUrl, { method: 'POST', headers, body });
    const text = await res.text();
    let data: { access_token?: string; expires_in?: number | string; refresh_token?: string; error?: string; error_description?: string } =
      {};
    try {
      data = JSON.parse(text) as typeof data;
    } catch {
      /* not JSON: judged by the status below */
    }
    if (!res.ok || !data.access_token) {
      throw tokenError(new URL(auth.tokenUrl).host, res.ok ? 502 : res.status, data.error, data.error_description ?? text.slice(0, 200));
    }
    const life = Number(data.expires_in ?? DEFAULT_LIFE_S);
    return {
      accessToken: data.access_token,
      expiresAt: Date.now() + (Number.isFinite(life) && life > 0 ? life : DEFAULT_LIFE_S) * 1000,
      ...(data.refresh_token ? { refreshToken: data.refresh_token } : {}),
    };
  }
}

function tokenError(who: string, status: number | undefined, code: string | undefined, description: string | undefined): CarteroError {
  const text = `${who} token endpoint${status ? ` answered ${status}` : ''}${code ? ` ${code}` : ''}${description ? `: ${description.slice(0, 300)}` : ''}`;
  return classifyTokenError(status, code) === 'unavailable'
    ? new IdentityProviderUnavailableError(text)
    : new OAuthCredentialsError(text, code ?? `http_${status}`);
}

/** Our own errors (from the guarded HTTP client) come back wrapped by the libraries; find them. */
function carteroCause(err: unknown): CarteroError | null {
  let e: unknown = err;
  for (let i = 0; i < 5 && e; i++) {
    if (e instanceof CarteroError) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/** MSAL's network interface over the guarded client. Token-endpoint errors are answers, not exceptions. */
function msalNetwork(fetchFn: IdpFetch): INetworkModule {
  const call = async <T>(
    method: 'GET' | 'POST',
    url: string,
    options?: { headers?: Record<string, string>; body?: string },
  ): Promise<NetworkResponse<T>> => {
    const res = await fetchFn(url, {
      method,
      ...(options?.headers ? { headers: options.headers } : {}),
      ...(options?.body !== undefined ? { body: options.body } : {}),
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = { error: res.status >= 500 ? 'server_error' : 'invalid_response', error_description: text.slice(0, 200) };
    }
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      headers[k] = v;
    });
    return { headers, body: body as T, status: res.status };
  };
  return {
    sendGetRequestAsync: (url, options) => call('GET', url, options),
    sendPostRequestAsync: (url, options) => call('POST', url, options),
  };
}
