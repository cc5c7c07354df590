import type { PresetName } from './presets';

/**
 * The Sent-folder copy (docs/sending.md, "Sent copy"): after a 250, the exact bytes sent are
 * appended over IMAP to the tenant's folder with the `\Sent` special-use flag, so the mail shows in
 * Sent like one the agent wrote. Pure: the API, the activity and the workflow import it.
 */
export const SENT_COPY_MODES = ['auto', 'on', 'off'] as const;
export type SentCopyMode = (typeof SENT_COPY_MODES)[number];

export interface ImapEndpoint {
  host: string;
  port: number;
  security: 'tls' | 'starttls';
}

/** What the message shows: `appended` (in Sent), `failed` (gave up: reason), `skipped` (nothing to do: reason). */
export interface SentCopyOutcome {
  status: 'appended' | 'failed' | 'skipped';
  at: Date;
  reason: string | null;
  /** The mailbox it was appended to (its name on that server). */
  folder?: string;
}

/**
 * Providers that file every SMTP submission in the sender's Sent folder themselves (evidence in
 * docs/sending.md): a copy from us would be a duplicate.
 */
const PROVIDER_FILES_SENT: ReadonlySet<PresetName> = new Set(['gmail', 'microsoft365']);
/** Relays and the Workspace relay: no mailbox of the sender is logged in to, so there is no Sent folder to speak of. */
const NO_MAILBOX: ReadonlySet<PresetName> = new Set(['google-workspace-relay', 'sendgrid', 'ses', 'brevo', 'mailgun', 'postmark']);
/** The tenant's own mail server: IMAP on the SMTP host (cPanel, Zimbra and Exchange serve both). */
const OWN_SERVER: ReadonlySet<PresetName> = new Set(['cpanel', 'zimbra', 'exchange']);

export type SentCopyPlan = { append: true; imap: ImapEndpoint } | { append: false; reason: string };

/**
 * Whether a sent message is copied, and to which IMAP server. `auto`: off for providers that file
 * submissions themselves and for relays; on for the tenant's own server (the presets above, or no
 * preset) when an IMAP server is known: `imap` set, else the SMTP host for the own-server presets.
 * A tenant with no preset and no `imap` is not copied: guessing the IMAP host would send its
 * password to a server nobody named.
 */
export function sentCopyPlan(settings: {
  preset: PresetName | null;
  smtp: { host: string };
  sentCopy?: SentCopyMode;
  imap?: Partial<ImapEndpoint>;
}): SentCopyPlan {
  const mode = settings.sentCopy ?? 'auto';
  if (mode === 'off') return { append: false, reason: 'sentCopy is off' };
  const p = settings.preset;
  if (mode === 'auto' && p && PROVIDER_FILES_SENT.has(p)) return { append: false, reason: `${p} files SMTP submissions in Sent itself` };
  if (mode === 'auto' && p && NO_MAILBOX.has(p)) return { append: false, reason: `${p} is a relay without a Sent folder` };
  const host = settings.imap?.host ?? (p && (OWN_SERVER.has(p) || mode === 'on') ? defaultImapHost(p, settings.smtp.host) : undefined);
  if (!host) return { append: false, reason: 'no IMAP server known: set imap.host' };
  const security = settings.imap?.security ?? 'tls';
  return { append: true, imap: { host, port: settings.imap?.port ?? (security === 'tls' ? 993 : 143), security } };
}

/** Where the providers' IMAP is when the tenant asks for a copy anyway (`on`). */
function defaultImapHost(preset: PresetName, smtpHost: string): string | undefined {
  if (preset === 'gmail') return 'imap.gmail.com';
  if (preset === 'microsoft365') return 'outlook.office365.com';
  if (OWN_SERVER.has(preset)) return smtpHost;
  return undefined;
}
