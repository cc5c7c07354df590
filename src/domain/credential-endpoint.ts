/**
 * The endpoint a credential was given for (issue 12, item 1): a password, client secret, refresh token,
 * service-account key or IMAP password may be used only against the servers it was supplied with.
 * Whoever holds a tenant's API key must not be able to point the tenant at a server of their own and
 * have Cartero hand over the stored secret. The endpoint is part of the sealed value's associated
 * data (src/store/tenant-seal.ts), so a moved endpoint cannot even decrypt it; the API refuses the
 * move up front (400 naming the fields) unless the secret comes again in the same request.
 *
 * What counts as the endpoint is what decides who receives the secret or a token made from it:
 * - SMTP: host, port, the extra trusted CA and the TLS server name (a new CA or name lets another
 *   server pass verification), and the preset, which fixes the host; the Sent copy's `imap.host` and
 *   `imap.port` when set (the same credentials log in there);
 * - OAuth2: the provider, the token URL (generic), the authority and Entra tenant (Microsoft). Google's
 *   token URL is the deployment's, not the tenant's. The SMTP endpoint binds OAuth2 secrets too: the
 *   access tokens they produce go there.
 * Not the TLS mode (`security`) or minimum version, the user name, or the EHLO name: changing them
 * sends the secret to no one new.
 */
export type CredentialEndpoint = Readonly<Record<string, string>>;

/** Host names compare case-insensitively and without a trailing dot. */
const hostKey = (h: string | undefined): string => (h ?? '').toLowerCase().replace(/\.$/, '');
const text = (v: unknown): string => (typeof v === 'string' ? v : '');

export interface SmtpEndpointInput {
  preset: string | null;
  smtp: { host: string; port: number; tls: { ca?: string | undefined; servername?: string | undefined } };
  /** The Sent copy's IMAP server (src/domain/sent-copy.ts), when named: the SMTP credentials log in there too. */
  imap?: { host?: string | undefined; port?: number | undefined } | undefined;
}

/** The auth fields that name an endpoint; stored auth keeps them in clear. */
export interface AuthEndpointInput {
  type: string;
  provider?: unknown;
  tokenUrl?: unknown;
  authority?: unknown;
  entraTenantId?: unknown;
}

/** A tenant's credential endpoint, keyed by the API's field names (so a refusal can name them). */
export function tenantCredentialEndpoint(settings: SmtpEndpointInput, auth: AuthEndpointInput): CredentialEndpoint {
  const e: Record<string, string> = {
    preset: settings.preset ?? '',
    'smtp.host': hostKey(settings.smtp.host),
    'smtp.port': String(settings.smtp.port),
    'smtp.tls.ca': settings.smtp.tls.ca ?? '',
    'smtp.tls.servername': hostKey(settings.smtp.tls.servername),
  };
  // Only when named, so the secrets of tenants without one keep their associated data.
  if (settings.imap?.host !== undefined) e['imap.host'] = hostKey(settings.imap.host);
  if (settings.imap?.port !== undefined) e['imap.port'] = String(settings.imap.port);
  if (auth.type === 'oauth2') {
    e['auth.provider'] = text(auth.provider);
    e['auth.tokenUrl'] = text(auth.tokenUrl);
    e['auth.authority'] = text(auth.authority);
    e['auth.entraTenantId'] = text(auth.entraTenantId);
  }
  return e;
}

export interface ImapEndpointInput {
  host: string;
  port: number;
  tls: { ca?: string | undefined; servername?: string | undefined };
}

/** A bounce mailbox's IMAP endpoint, keyed by the PUT body's field names. */
export function imapCredentialEndpoint(settings: ImapEndpointInput): CredentialEndpoint {
  return {
    host: hostKey(settings.host),
    port: String(settings.port),
    'tls.ca': settings.tls.ca ?? '',
    'tls.servername': hostKey(settings.tls.servername),
  };
}

/** One string for the associated data: every field, in a fixed order, unambiguously joined. */
export function endpointKey(e: CredentialEndpoint): string {
  return JSON.stringify(
    Object.keys(e)
      .sort()
      .map((k) => [k, e[k]]),
  );
}

/** The fields whose values differ between two endpoints, sorted. */
export function movedEndpointFields(before: CredentialEndpoint, after: CredentialEndpoint): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => (before[k] ?? '') !== (after[k] ?? '')).sort();
}

/**
 * Why a change that keeps the stored secrets is refused: one problem per moved endpoint field, and
 * one for the field that would re-supply them. Empty when nothing moved or there is no secret to keep.
 */
export function credentialMoveProblems(
  before: CredentialEndpoint,
  after: CredentialEndpoint,
  storedSecrets: string[],
  resupplyField: string,
): Array<{ field: string; message: string }> {
  if (storedSecrets.length === 0) return [];
  const moved = movedEndpointFields(before, after);
  if (moved.length === 0) return [];
  const secrets = storedSecrets.join(', ');
  return [
    ...moved.map((field) => ({
      field,
      message: `moves the endpoint the stored ${secrets} was given for; a secret is only ever sent where it was given, so send ${resupplyField} again with it`,
    })),
    {
      field: resupplyField,
      message: `required when ${moved.join(', ')} change: the stored ${secrets} stays bound to the endpoint it was given with`,
    },
  ];
}
