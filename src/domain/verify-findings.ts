import type { PresetName } from './presets';
import type { EnvelopeCheck, Finding, ProbeResult, TenantWarning } from './smtp-probe';

/**
 * The texts of `verify`'s findings: what the server's reply means for this provider and what the
 * tenant's admin does about it. Pure, so the wording is unit-tested. The provider behaviours and
 * their sources are in docs/onboarding.md.
 */
const MB = 1024 * 1024;
const mb = (n: number): string => `${Math.round((n / MB) * 10) / 10} MB`;
const looksLikeAddress = (s: string): boolean => {
  const at = s.indexOf('@');
  return at > 0 && at === s.lastIndexOf('@') && s.indexOf('.', at) > at + 1 && !/\s/.test(s);
};

/** Most senders `verify` tries in one run: each costs a MAIL FROM/RCPT/RSET round trip. */
export const MAX_VERIFY_SENDERS = 10;

/**
 * The addresses `verify` tries in MAIL FROM: the tenant's `verify.senders`, else the account it
 * logs in as when that is an address, else postmaster@ its first domain (relays with a key as user).
 */
export function sendersToVerify(
  settings: { domains: string[]; verify?: { senders?: string[] }; returnPath?: string },
  authUser: string | undefined,
): string[] {
  const configured = settings.verify?.senders ?? [];
  const senders =
    configured.length > 0
      ? configured.slice(0, MAX_VERIFY_SENDERS)
      : authUser && looksLikeAddress(authUser)
        ? [authUser]
        : settings.domains[0]
          ? [`postmaster@${settings.domains[0]}`]
          : [];
  // Every message's MAIL FROM is the Return-Path when one is set: the server must take it too.
  if (settings.returnPath && !senders.includes(settings.returnPath)) senders.push(settings.returnPath);
  return senders;
}

/**
 * RCPT TO address: the tenant's `verify.probeRecipient`, else the operator's VERIFY_PROBE_RECIPIENT
 * (an address outside every tenant's domains, so a relay refusal shows), else the sender itself
 * (always deliverable, but a server that only refuses relay to other domains accepts it).
 */
export function probeRecipientFor(
  settings: { verify?: { probeRecipient?: string } },
  operatorDefault: string | undefined,
  sender: string,
): string {
  return settings.verify?.probeRecipient ?? operatorDefault ?? sender;
}

/** DKIM selectors checked per preset: the ones the provider always signs with; others come from `verify.dkimSelectors`. */
export function dkimSelectorsFor(preset: PresetName | null, configured: readonly string[] | undefined): string[] {
  if (configured && configured.length > 0) return [...configured];
  if (preset === 'gmail' || preset === 'google-workspace-relay') return ['google'];
  if (preset === 'microsoft365') return ['selector1', 'selector2'];
  return [];
}

/** The SPF include each hosted preset's outgoing servers are published under (provider documentation, docs/onboarding.md). */
export const SPF_INCLUDES: Partial<Record<PresetName, string>> = {
  gmail: '_spf.google.com',
  'google-workspace-relay': '_spf.google.com',
  microsoft365: 'spf.protection.outlook.com',
  sendgrid: 'sendgrid.net',
  ses: 'amazonses.com',
  brevo: 'spf.brevo.com',
  mailgun: 'mailgun.org',
  postmark: 'spf.mtasv.net',
};

/** Relays put their own bounce domain in MAIL FROM unless a custom one is set up: SPF cannot align there. */
export function envelopeSenderIsFromDomain(preset: PresetName | null): boolean {
  return !(preset === 'sendgrid' || preset === 'ses' || preset === 'brevo' || preset === 'mailgun' || preset === 'postmark');
}

export function tenantWarnings(preset: PresetName | null, authType: string): TenantWarning[] {
  if (preset === 'microsoft365' && authType === 'password') {
    return [
      {
        code: 'basic_auth_retirement',
        message:
          'Microsoft is retiring Basic authentication (user name and password) for SMTP AUTH client submission: it is switched off by default for existing Microsoft 365 tenants from the end of December 2026, and removed for good at a date Microsoft announces in the second half of 2027. After that the server refuses the password with "550 5.7.30 Basic authentication is not supported for Client Submission".',
        fix: 'Move this tenant to OAuth2: register an app in Microsoft Entra ID with the SMTP.Send permission (delegated, or SMTP.SendAsApp with client credentials), then PATCH the tenant with auth {type: "oauth2", provider: "microsoft", ...}.',
        docs: 'docs/oauth.md',
      },
    ];
  }
  return [];
}

/** A finding for the connection step that failed, with the fix the reply points to. */
export function connectionFinding(result: ProbeResult, preset: PresetName | null): Finding | null {
  if (result.ok || !result.failedStep || result.failedStep === 'mail' || result.failedStep === 'rcpt' || result.failedStep === 'rset')
    return null;
  const reply = result.reply ?? '';
  const base = {
    check: 'connection',
    status: 'fail' as const,
    subject: `${result.host}:${result.port}`,
    message: `${result.failedStep}: ${result.error ?? 'failed'}`,
    ...(reply ? { reply } : {}),
  };
  if (result.failedStep === 'auth') {
    if (/5\.7\.30|basic authentication is not supported/i.test(reply))
      return {
        ...base,
        fix: 'Microsoft no longer takes a password for SMTP AUTH on this tenant: move the tenant to OAuth2 (docs/oauth.md).',
      };
    if (/5\.7\.139|SmtpClientAuthentication is disabled|basic authentication is disabled/i.test(reply))
      return {
        ...base,
        fix: 'SMTP AUTH is turned off for this mailbox or organization: in the Microsoft 365 admin center, Users → the mailbox → Mail → Manage email apps → tick "Authenticated SMTP" (or Set-CASMailbox -SmtpClientAuthenticationDisabled $false); Security Defaults also block it.',
      };
    if (preset === 'gmail' && /5\.7\.8|Username and Password not accepted|BadCredentials/i.test(reply))
      return {
        ...base,
        fix: 'Gmail refuses the account password over SMTP: turn on 2-Step Verification and create an app password (myaccount.google.com → Security → App passwords), or use OAuth2.',
      };
    if (/5\.7\.[38]|535/.test(reply))
      return {
        ...base,
        fix: 'The server refuses the user name or password: check them (and the user name format the provider wants) and PATCH the tenant.',
      };
  }
  if (result.failedStep === 'tls')
    return {
      ...base,
      fix: "The certificate does not verify: give the server's CA in smtp.tls.ca, or the name on its certificate in smtp.tls.servername.",
    };
  if (result.failedStep === 'tcp' || result.failedStep === 'dns')
    return { ...base, fix: "Check smtp.host and smtp.port, and that the server (or a firewall) lets this service's address connect." };
  return { ...base, fix: 'See the reply: the server refused this step.' };
}

const SEND_AS_DENIED = /5\.7\.60|SendAsDenied|not allowed to send as|permissions to send as/i;
const RELAY_DENIED = /relay|5\.7\.1\b|rcpthosts|not permitted/i;

/** MAIL FROM / RCPT TO findings for one sender. */
export function envelopeFindings(check: EnvelopeCheck, preset: PresetName | null, authUser: string | undefined): Finding[] {
  const out: Finding[] = [];
  const { sender, recipient } = check;
  if (check.error !== undefined && check.mailFrom === undefined) {
    return [
      {
        check: 'mail_from',
        status: 'warn',
        subject: sender,
        message: check.error,
        fix: 'run verify again; if the server stays this slow, sends will time out too',
      },
    ];
  }
  // Postfix checks the sender at RCPT time by default (smtpd_delay_reject): a sender refusal can come there.
  const senderRefusedAtRcpt =
    check.rcptTo !== undefined &&
    !/^2/.test(check.rcptTo) &&
    (SEND_AS_DENIED.test(check.rcptTo) || /sender address rejected/i.test(check.rcptTo));
  if ((check.mailFrom !== undefined && !/^2/.test(check.mailFrom)) || senderRefusedAtRcpt) {
    const reply = senderRefusedAtRcpt ? check.rcptTo! : check.mailFrom!;
    if (SEND_AS_DENIED.test(reply) || preset === 'microsoft365') {
      out.push({
        check: 'send_as',
        status: 'fail',
        subject: sender,
        message: `the server refuses to let ${authUser ?? 'this account'} send as ${sender}`,
        reply,
        fix:
          preset === 'microsoft365'
            ? `In the Exchange admin center, open the mailbox ${sender} → Delegation → Send As, and add ${authUser ?? 'the account Cartero logs in as'} (or Add-RecipientPermission -Identity ${sender} -Trustee ${authUser ?? '<account>'} -AccessRights SendAs). It can take up to an hour to apply; run verify again then.`
            : `Give ${authUser ?? 'the account'} the right to send as ${sender} on the server, or send from an address the account owns.`,
      });
    } else {
      out.push({
        check: 'mail_from',
        status: 'fail',
        subject: sender,
        message: `the server refuses ${sender} as a sender for this account${senderRefusedAtRcpt ? ' (at RCPT TO)' : ''}`,
        reply,
        fix: `The server does not accept ${sender} as a sender for this account: allow it on the server (sender address, verified domain or sender identity at the provider), or send from an address it accepts.`,
      });
    }
    return out;
  }
  if (check.rcptTo !== undefined && !/^2/.test(check.rcptTo)) {
    const reply = check.rcptTo;
    const relay = RELAY_DENIED.test(reply);
    out.push({
      check: 'relay',
      status: 'fail',
      subject: recipient,
      message: relay ? `the server refuses to relay for ${sender} to ${recipient}` : `RCPT TO:<${recipient}> refused`,
      reply,
      fix: relay
        ? "The server does not let this account send to other domains: make sure AUTH is enabled for it on the submission port (587/465, not 25), or add this service's outgoing IP to the relay's allowed senders (Workspace SMTP relay: Admin console → Gmail → Routing → SMTP relay service)."
        : `The server refused the probe recipient ${recipient}; if it is not a real mailbox, set verify.probeRecipient to one.`,
    });
    return out;
  }
  if (check.ok) {
    if (preset === 'gmail' && authUser && sender.toLowerCase() !== authUser.toLowerCase()) {
      out.push({
        check: 'send_as',
        status: 'warn',
        subject: sender,
        message: `Gmail accepts MAIL FROM:<${sender}> but rewrites the From header to ${authUser} unless ${sender} is a "Send mail as" address of that account; only a real send shows it`,
        fix: `In Gmail (as ${authUser}): Settings → Accounts → "Send mail as" → Add another email address → ${sender}, and confirm it. For a whole Workspace domain, use the google-workspace-relay preset instead.`,
      });
    } else if (preset === 'microsoft365' && authUser && sender.toLowerCase() !== authUser.toLowerCase()) {
      out.push({
        check: 'send_as',
        status: 'warn',
        subject: sender,
        message: `Microsoft 365 accepted MAIL FROM:<${sender}> for ${authUser}; a From header ${sender} still needs Send As rights and is refused only after DATA ("554 5.2.252 SendAsDenied")`,
        fix: `Make sure ${authUser} has Send As on ${sender} (Exchange admin center → ${sender} → Delegation → Send As).`,
      });
    } else {
      out.push({
        check: 'mail_from',
        status: 'pass',
        subject: sender,
        message: `MAIL FROM:<${sender}> and RCPT TO:<${recipient}> accepted`,
        ...(check.rcptTo ? { reply: check.rcptTo } : {}),
      });
    }
  }
  return out;
}

/** SIZE (RFC 1870) against the tenant's maxMessageBytes. */
export function sizeFinding(sizeLimit: number | undefined, maxMessageBytes: number): Finding | null {
  if (sizeLimit === undefined) return null;
  if (sizeLimit < maxMessageBytes) {
    return {
      check: 'size',
      status: 'warn',
      message: `the server announces SIZE ${sizeLimit} (${mb(sizeLimit)}), below the tenant's maxMessageBytes ${maxMessageBytes} (${mb(maxMessageBytes)}): messages between the two are accepted by the API and refused by the server`,
      fix: `PATCH the tenant with limits.maxMessageBytes ≤ ${sizeLimit}, or raise the server's limit (Postfix message_size_limit, Exchange MaxSendSize).`,
    };
  }
  return {
    check: 'size',
    status: 'pass',
    message: `the server takes messages up to ${mb(sizeLimit)}; the tenant's limit is ${mb(maxMessageBytes)}`,
  };
}
