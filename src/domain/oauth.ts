import type { AuthInput } from './tenant';

/**
 * OAuth2 facts and decisions that need no I/O (importable by workflows): which scope each provider
 * wants for SMTP, which auth modes have a consent flow, how a token endpoint's error is classed,
 * and when a token is refreshed.
 */
export type OAuth2Auth = Extract<AuthInput, { type: 'oauth2' }>;

/** Google: full mail access is the only scope Gmail's SMTP accepts for XOAUTH2. */
export const GOOGLE_MAIL_SCOPE = 'https://mail.google.com/';
/** Microsoft app-only SMTP (client credentials): the Exchange Online resource's default scope. */
export const MICROSOFT_APP_SCOPE = 'https://outlook.office365.com/.default';
/** Microsoft delegated SMTP AUTH (a user's consent). `offline_access` gets the refresh token. */
export const MICROSOFT_DELEGATED_SCOPES = ['https://outlook.office.com/SMTP.Send', 'offline_access'];

/** Providers whose authorization-code consent Cartero runs (`/v1/tenants/:id/oauth/:provider/start`). */
export const CONSENT_PROVIDERS = ['google', 'microsoft'] as const;
export type ConsentProvider = (typeof CONSENT_PROVIDERS)[number];

/** Consent applies to the user-delegated modes; service accounts and client credentials need none. */
export function consentProblem(auth: AuthInput, provider: string): string | null {
  if (auth.type !== 'oauth2') return `the tenant's auth is ${auth.type}, not oauth2`;
  if (auth.provider !== provider) return `the tenant's OAuth2 provider is ${auth.provider}, not ${provider}`;
  if (auth.mode !== 'refresh_token') return `mode ${auth.mode} needs no user consent (an administrator grants it at the provider)`;
  if (auth.provider === 'google' && (!auth.clientId || !auth.clientSecret))
    return 'auth.clientId and auth.clientSecret are required for the Google consent flow';
  if (auth.provider === 'microsoft' && !auth.clientSecret) return 'auth.clientSecret is required for the Microsoft consent flow';
  return null;
}

/** What a token request can still lack before it is worth sending (null = ready). */
export function missingCredential(auth: OAuth2Auth): string | null {
  if (auth.mode === 'refresh_token' && !auth.refreshToken)
    return 'no refresh token yet: run the consent flow (GET /v1/tenants/:id/oauth/:provider/start)';
  if (auth.provider === 'google' && auth.mode === 'service_account' && (!auth.serviceAccountEmail || !auth.serviceAccountPrivateKey)) {
    return 'auth.serviceAccountEmail and auth.serviceAccountPrivateKey are required for a Google service account';
  }
  if (auth.provider === 'google' && auth.mode === 'refresh_token' && (!auth.clientId || !auth.clientSecret))
    return 'auth.clientId and auth.clientSecret are required';
  if (auth.provider === 'microsoft' && !auth.clientSecret) return 'auth.clientSecret is required';
  if (auth.provider === 'generic' && auth.mode === 'client_credentials' && !auth.clientSecret)
    return 'auth.clientSecret is required for client credentials';
  return null;
}

/**
 * A token endpoint's refusal: `unavailable` is worth retrying (outage, throttling), `credentials`
 * needs a person (revoked consent, wrong secret). RFC 6749 §5.2 codes; unknown 4xx count as
 * credentials, because retrying an unchanged request cannot change the verdict.
 */
export function classifyTokenError(status: number | undefined, error: string | undefined): 'unavailable' | 'credentials' {
  if (status === undefined) return 'unavailable';
  if (status >= 500 || status === 429 || status === 408) return 'unavailable';
  if (error === 'temporarily_unavailable' || error === 'server_error' || error === 'slow_down') return 'unavailable';
  return 'credentials';
}

/**
 * When to refresh a token: `marginMs` before it expires, but not before half its life has passed
 * (a token shorter than twice the margin would otherwise be refreshed the moment it arrives).
 */
export function refreshAt(obtainedAt: number, expiresAt: number, marginMs: number): number {
  const life = Math.max(0, expiresAt - obtainedAt);
  return obtainedAt + Math.max(life - marginMs, life / 2);
}

/**
 * A token is handed to an SMTP server only with some life left (30 s, or a quarter of a short
 * token's life), so it cannot expire between AUTH being sent and being checked.
 */
export function usableUntil(t: { obtainedAt: number; expiresAt: number }): number {
  return t.expiresAt - Math.min(30_000, Math.max(0, t.expiresAt - t.obtainedAt) / 4);
}
