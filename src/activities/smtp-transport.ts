import tls from 'node:tls';
import nodemailer, { type Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport';
import type { AttemptOutcome } from '../domain/delivery';
import type { AllowableClass } from '../domain/network';
import { classifyReply, enhancedCodeOf, type SmtpReply } from '../domain/smtp-reply';
import { ehloNameOf, type AuthInput, type TenantSettings } from '../domain/tenant';
import { DependencyUnavailableError, IdentityProviderUnavailableError, OAuthCredentialsError, SealedCredentialsError } from '../errors';
import type { CredentialBinding } from '../store/tenant-seal';
import type { OAuthAccess } from './oauth-access';
import { checkedAddresses, tlsServername } from './checked-address';

/**
 * One pooled nodemailer transport per tenant per worker: connections are reused across messages,
 * capped by the tenant's maxConnections, and rebuilt when the tenant's settings change (version)
 * or the pool is old enough that DNS may have moved.
 */
interface PoolEntry {
  version: number;
  createdAt: number;
  transporter: Transporter<SMTPTransport.SentMessageInfo>;
  inflight: number;
  retired: boolean;
}

export interface PoolLease {
  transporter: Transporter<SMTPTransport.SentMessageInfo>;
  release(): void;
}

const POOL_MAX_AGE_MS = 10 * 60_000;

/** A configuration problem found before any SMTP byte: reported like a TLS/settings failure. */
export class SmtpSettingsError extends Error {
  override name = 'SmtpSettingsError';
}

export class SmtpPools {
  private readonly pools = new Map<string, PoolEntry>();

  constructor(
    private readonly allowPrivateNetworks: readonly AllowableClass[],
    private readonly oauth?: OAuthAccess,
    /** SMTP_SOCKET_TIMEOUT_MS: silence from the server (a stalled DATA) this long ends the attempt. */
    private readonly socketTimeoutMs = 5 * 60_000,
  ) {}

  /**
   * A pool for the tenant's current settings; release the lease when the send is done. `binding`
   * (the settings' endpoint and credentials) picks the OAuth2 tokens the pool may use.
   */
  async lease(
    tenantId: string,
    version: number,
    settings: TenantSettings,
    auth: AuthInput,
    binding: CredentialBinding,
  ): Promise<PoolLease> {
    let entry = this.pools.get(tenantId);
    if (!entry || entry.version !== version || Date.now() - entry.createdAt >= POOL_MAX_AGE_MS) {
      if (entry) this.retire(tenantId, entry);
      entry = { version, createdAt: Date.now(), transporter: await this.create(settings, auth, binding), inflight: 0, retired: false };
      this.pools.set(tenantId, entry);
    }
    const e = entry;
    e.inflight++;
    let released = false;
    return {
      transporter: e.transporter,
      release: () => {
        if (released) return;
        released = true;
        e.inflight--;
        if (e.retired && e.inflight === 0) e.transporter.close();
      },
    };
  }

  /**
   * After a connection-level failure: new sends get a fresh pool; the old one closes once the
   * sends still using it finish (closing it at once would fail other messages' transactions).
   */
  evict(tenantId: string): void {
    const e = this.pools.get(tenantId);
    if (e) this.retire(tenantId, e);
  }

  closeAll(): void {
    for (const e of this.pools.values()) e.transporter.close();
    this.pools.clear();
  }

  private retire(tenantId: string, e: PoolEntry): void {
    if (this.pools.get(tenantId) === e) this.pools.delete(tenantId);
    e.retired = true;
    if (e.inflight === 0) e.transporter.close();
  }

  private async create(
    settings: TenantSettings,
    auth: AuthInput,
    binding: CredentialBinding,
  ): Promise<Transporter<SMTPTransport.SentMessageInfo>> {
    const s = settings.smtp;
    // Resolve and check here, then connect to the checked address with the name for TLS:
    // nodemailer resolving on its own would bypass the private-network guard (DNS rebinding).
    const { addresses, refused } = await checkedAddresses(s.host, this.allowPrivateNetworks);
    if (refused) throw new SmtpSettingsError(`SMTP host ${s.host} refused: ${refused}`);
    const servername = tlsServername(s.host, s.tls.servername);
    let smtpAuth: SMTPTransport.Options['auth'];
    switch (auth.type) {
      case 'none':
        smtpAuth = undefined;
        break;
      case 'password':
        smtpAuth = { user: auth.user, pass: auth.password };
        break;
      case 'oauth2':
        if (!this.oauth) throw new SmtpSettingsError('OAuth2 sending needs the token service, which this worker was started without');
        // Tokens come from the tenant's token workflow through the store, per connection;
        // `renew` (a 334 challenge after AUTH XOAUTH2) asks for a fresh one.
        smtpAuth = { type: 'OAuth2', user: auth.user, provisionCallback: this.oauth.provisioner(binding) };
        break;
    }
    return nodemailer.createTransport({
      pool: true,
      maxConnections: settings.limits.maxConnections,
      maxMessages: 100,
      host: addresses[0],
      port: s.port,
      secure: s.security === 'tls',
      requireTLS: s.security === 'starttls',
      name: ehloNameOf(settings),
      ...(smtpAuth ? { auth: smtpAuth } : {}),
      tls: {
        ...(servername ? { servername } : {}),
        ...(s.tls.ca ? { ca: [...tls.rootCertificates, s.tls.ca] } : {}),
        minVersion: s.tls.minVersion ?? 'TLSv1.2',
        rejectUnauthorized: true,
      },
      connectionTimeout: 30_000,
      greetingTimeout: 30_000,
      socketTimeout: this.socketTimeoutMs,
      dnsTimeout: 10_000,
      logger: false,
      debug: false,
    });
  }
}

interface NodemailerError extends Error {
  code?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  rejected?: string[];
  rejectedErrors?: NodemailerError[];
  recipient?: string;
}

const TLS_PATTERN =
  /certificate|self[- ]signed|altname|unable to verify|unable to get (?:local )?issuer|SSL|TLS|handshake|wrong version number/i;

function replyOf(err: NodemailerError): SmtpReply {
  const text = err.response ?? err.message;
  return {
    ...(err.responseCode !== undefined ? { code: err.responseCode } : {}),
    ...(enhancedCodeOf(text) ? { enhanced: enhancedCodeOf(text)! } : {}),
    text,
  };
}

/** Turns nodemailer's answer (or error) into an AttemptOutcome. */
export function outcomeFromResult(info: SMTPTransport.SentMessageInfo): AttemptOutcome {
  const rejected = (info.rejectedErrors ?? []) as NodemailerError[];
  const recipientReplies = [
    ...rejected.map((e) => ({ address: e.recipient ?? '', reply: replyOf(e) })),
    ...((info.accepted ?? []) as Array<string | { address: string }>).map((a) => ({
      address: typeof a === 'string' ? a : a.address,
      reply: { code: 250, text: 'accepted' },
    })),
  ];
  const text = info.response ?? '250 OK';
  const code = Number(/^(\d{3})/.exec(text)?.[1] ?? 250);
  return { cls: 'accepted', reply: { code, text }, recipientReplies };
}

export function outcomeFromError(err: unknown): AttemptOutcome {
  const e = err as NodemailerError;
  if (e instanceof SmtpSettingsError) return { cls: 'tls', reply: { text: e.message }, recipientReplies: [] };
  // No token, or stored credentials that do not open for these settings: a person must act → wait
  // for credentials; the provider is down → retry.
  if (e instanceof OAuthCredentialsError || e instanceof SealedCredentialsError)
    return { cls: 'auth', reply: { text: e.message }, recipientReplies: [] };
  if (e instanceof IdentityProviderUnavailableError || e instanceof DependencyUnavailableError) {
    return { cls: 'transient', reply: { text: e.message }, recipientReplies: [] };
  }
  const reply = replyOf(e);
  if (e.code === 'EAUTH' || e.code === 'ENOAUTH') return { cls: 'auth', reply, recipientReplies: [] };
  if (e.code === 'ETLS' || (reply.code === undefined && TLS_PATTERN.test(e.message))) {
    return { cls: 'tls', reply: { text: `${e.code ?? 'TLS'}: ${e.message}` }, recipientReplies: [] };
  }
  if (e.code === 'EENVELOPE' && e.rejectedErrors?.length) {
    // Every recipient refused at RCPT: per-recipient replies decide (5xx bounce, 4xx retry).
    const recipientReplies = e.rejectedErrors.map((r) => ({ address: r.recipient ?? '', reply: replyOf(r) }));
    const worst = recipientReplies.some((r) => (r.reply.code ?? 400) < 500) ? classifyReply({ code: 450, text: reply.text }) : 'permanent';
    return { cls: worst, reply, recipientReplies };
  }
  if (reply.code === undefined) {
    // Connection refused, reset, timeout, DNS: the network, not the server's verdict.
    return { cls: 'transient', reply: { text: `${e.code ?? 'ERROR'}: ${e.message}` }, recipientReplies: [] };
  }
  return { cls: classifyReply(reply), reply, recipientReplies: [] };
}
