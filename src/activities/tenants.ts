import { lookup } from 'node:dns/promises';
import { isIpLiteral, type AllowableClass } from '../domain/network';
import { ehloNameOf, type AuthInput } from '../domain/tenant';
import { SealedCredentialsError } from '../errors';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import type { OAuthAccess } from './oauth-access';
import { worstStatus, type Finding, type ProbeResult } from '../domain/smtp-probe';
import { checkDkim, checkDmarc, checkSpf, type DnsLookup } from '../domain/mail-auth';
import {
  SPF_INCLUDES,
  connectionFinding,
  dkimSelectorsFor,
  envelopeFindings,
  envelopeSenderIsFromDomain,
  probeRecipientFor,
  sendersToVerify,
  sizeFinding,
  tenantWarnings,
} from '../domain/verify-findings';
import type { TenantSettings } from '../domain/tenant';
import { createDnsLookup } from './dns-lookup';
import { probeSmtp, type ProbeAuth } from './smtp-probe';
import type { EventRepository } from '../store/events';
import { noteVerify } from './tenant-health';

export interface TenantActivityDeps {
  tenants: TenantRepository;
  allowPrivateNetworks: readonly AllowableClass[];
  verifyTimeoutMs: number;
  /** XOAUTH2 tokens for OAuth2 tenants (from their token workflow). */
  oauth?: OAuthAccess;
  /** DNS servers and probe recipient of verify's deeper checks (DNS_SERVERS, DNS_TIMEOUT_MS, VERIFY_PROBE_RECIPIENT). */
  verifyChecks?: VerifyCheckConfig;
  /** Where `tenant.health` events go: every verify is a health check (src/activities/tenant-health.ts). */
  events?: EventRepository;
}

const DNS_BUDGET_MS = 45_000;

export interface VerifyCheckConfig {
  dnsServers: string[];
  dnsTimeoutMs: number;
  probeRecipient?: string;
}

/** SPF, DKIM and DMARC of every sending domain; DNS failures are findings, never exceptions. */
async function dnsFindings(settings: TenantSettings, serverIps: string[], dns: DnsLookup): Promise<Finding[]> {
  const include = settings.preset ? SPF_INCLUDES[settings.preset] : undefined;
  // A hosted provider is found by its include; the tenant's own server by its addresses.
  const target = { includes: include ? [include] : [], ips: include ? [] : serverIps };
  const selectors = dkimSelectorsFor(settings.preset, settings.verify?.dkimSelectors);
  const perDomain = await Promise.all(
    settings.domains.slice(0, 20).map(async (domain) => {
      const [spf, dkim] = await Promise.all([checkSpf(domain, target, dns), checkDkim(domain, selectors, dns)]);
      const dmarc = await checkDmarc(
        {
          domain,
          spfAuthorized: spf.authorized,
          spfCanAlign: envelopeSenderIsFromDomain(settings.preset),
          dkimFound: dkim.found,
          dkimChecked: selectors.length > 0,
        },
        dns,
      );
      const out: Finding[] = [spf.finding, ...dkim.findings, dmarc];
      if (selectors.length === 0) {
        out.push({
          check: 'dkim',
          status: 'warn',
          subject: domain,
          message: `DKIM: no selector known for ${settings.preset ?? 'this server'}; not checked`,
          fix: 'name the selector(s) your server signs with in verify.dkimSelectors (the s= tag of the DKIM-Signature header of a sent message)',
        });
      }
      return out;
    }),
  );
  return perDomain.flat();
}

export function createTenantActivities(deps: TenantActivityDeps) {
  /** DNS → TCP → TLS → EHLO → AUTH → MAIL/RCPT/RSET per sender against the tenant's server. */
  async function probeTenantServer(doc: TenantDoc): Promise<ProbeResult> {
    const s = doc.settings.smtp;
    let auth: AuthInput;
    try {
      auth = deps.tenants.openAuth(doc);
    } catch (err) {
      if (!(err instanceof SealedCredentialsError)) throw err;
      // Secrets given for another endpoint are not tried against this one: no connection is made.
      return { ok: false, host: s.host, port: s.port, security: s.security, steps: [], failedStep: 'auth', error: err.message };
    }
    let probeAuth: ProbeAuth;
    switch (auth.type) {
      case 'none':
        probeAuth = { type: 'none' };
        break;
      case 'password':
        probeAuth = { type: 'password', user: auth.user, password: auth.password };
        break;
      case 'oauth2': {
        // The token comes the way sends get it; no token is itself the diagnosis (step auth).
        let token: string;
        try {
          if (!deps.oauth) throw new Error('this worker runs without the OAuth2 token service');
          token = (await deps.oauth.current(deps.tenants.credentialBinding(doc))).accessToken;
        } catch (err) {
          return {
            ok: false,
            host: s.host,
            port: s.port,
            security: s.security,
            steps: [],
            failedStep: 'auth',
            error: `no OAuth2 access token: ${(err as Error).message}`,
          };
        }
        probeAuth = { type: 'xoauth2', user: auth.user, accessToken: token };
        break;
      }
    }
    return probeSmtp({
      host: s.host,
      port: s.port,
      security: s.security,
      tls: s.tls,
      ehloName: ehloNameOf(doc.settings),
      auth: probeAuth,
      allowPrivateNetworks: deps.allowPrivateNetworks,
      timeoutMs: deps.verifyTimeoutMs,
      envelope: sendersToVerify(doc.settings, 'user' in auth ? auth.user : undefined).map((sender) => ({
        sender,
        recipient: probeRecipientFor(doc.settings, deps.verifyChecks?.probeRecipient, sender),
      })),
    });
  }

  return {
    /** DNS → TCP → TLS → EHLO → AUTH against the tenant's server; never throws for a server's refusal. */
    async verifySmtpConnection(tenantId: string): Promise<ProbeResult> {
      const doc = await deps.tenants.get(tenantId);
      const settings = doc.settings;
      const checks = deps.verifyChecks ?? { dnsServers: [], dnsTimeoutMs: 5000 };
      // The activity has 2 minutes (verify-connection.ts): DNS answers that never come must not use them all.
      const dns = createDnsLookup({ servers: checks.dnsServers, timeoutMs: checks.dnsTimeoutMs, deadline: Date.now() + DNS_BUDGET_MS });
      // The server's addresses as the probe finds them (system resolver): an own server's outgoing IP is usually one of them.
      const serverIps = async (): Promise<string[]> => {
        const host = settings.smtp.host.replace(/^\[|\]$/g, '');
        if (isIpLiteral(host)) return [host];
        try {
          return (await lookup(host, { all: true })).map((a) => a.address).slice(0, 16);
        } catch {
          return [];
        }
      };
      const authUser = 'user' in doc.auth && typeof doc.auth.user === 'string' ? doc.auth.user : undefined;
      // DNS checks run beside the SMTP probe: neither waits for the other.
      const [result, dnsResults] = await Promise.all([probeTenantServer(doc), serverIps().then((ips) => dnsFindings(settings, ips, dns))]);
      const findings: Finding[] = [];
      const conn = connectionFinding(result, settings.preset);
      if (conn) findings.push(conn);
      for (const e of result.envelope ?? []) findings.push(...envelopeFindings(e, settings.preset, authUser));
      const size = sizeFinding(result.sizeLimit, settings.limits.maxMessageBytes);
      if (size) findings.push(size);
      findings.push(...dnsResults);
      const warnings = tenantWarnings(settings.preset, doc.auth.type);
      for (const w of warnings) findings.push({ check: w.code, status: 'warn', message: w.message, fix: w.fix });
      // Only the connection (`ok`) is health: DNS findings and warnings are advice, not a broken setup.
      if (deps.events) await noteVerify({ tenants: deps.tenants, events: deps.events }, tenantId, result);
      return { ...result, findings, status: worstStatus(findings), warnings };
    },
  };
}
