/**
 * What `POST /v1/tenants/:id/verify` answers: the SMTP probe's result, step by step (the probe
 * itself is src/activities/smtp-probe.ts), the envelope checks after AUTH, the DNS checks of the
 * sending domains, and every finding with its fix. Shared by the activity, the verify workflow and
 * the route.
 */
export type ProbeStep = 'dns' | 'tcp' | 'greeting' | 'ehlo' | 'starttls' | 'tls' | 'auth' | 'mail' | 'rcpt' | 'rset';

export interface ProbeStepResult {
  step: ProbeStep;
  ok: boolean;
  ms: number;
  detail?: string;
  /** The server's reply for this step, verbatim (multi-line replies joined with \n). */
  reply?: string;
}

export type FindingStatus = 'pass' | 'warn' | 'fail';

/** One thing verify found, with the server's reply or the DNS record it is based on and the fix in plain words. */
export interface Finding {
  /** Stable key: `connection`, `mail_from`, `send_as`, `relay`, `size`, `spf`, `dkim`, `dmarc`, `basic_auth_retirement`. */
  check: string;
  status: FindingStatus;
  /** What it is about: a sender address, a DNS name. */
  subject?: string;
  message: string;
  /** The server's exact reply the finding is based on. */
  reply?: string;
  /** The DNS record seen. */
  record?: string;
  fix?: string;
}

/** MAIL FROM / RCPT TO / RSET for one sending identity (nothing is sent: no DATA). */
export interface EnvelopeCheck {
  sender: string;
  recipient: string;
  ok: boolean;
  mailFrom?: string;
  rcptTo?: string;
  /** Why the check did not run to the end without a reply (time budget spent). */
  error?: string;
}

export interface ProbeResult {
  /** The server takes mail from the tenant: every connection step and every envelope check passed. */
  ok: boolean;
  host: string;
  port: number;
  security: 'starttls' | 'tls';
  address?: string;
  steps: ProbeStepResult[];
  failedStep?: ProbeStep;
  /** Exact reply of the server at the failed step, when the server replied. */
  reply?: string;
  error?: string;
  capabilities?: string[];
  tls?: { protocol: string | null; cipher: string; subject?: string; issuer?: string; validTo?: string };
  /** SIZE the server announced in EHLO (RFC 1870), when it announced a number. */
  sizeLimit?: number;
  envelope?: EnvelopeCheck[];
  /** Worst status over `findings` (DNS findings included: `ok` is about the server only). */
  status?: FindingStatus;
  findings?: Finding[];
  /** Standing warnings about the tenant's setup (same as the tenant view's `warnings`). */
  warnings?: TenantWarning[];
}

export interface TenantWarning {
  code: 'basic_auth_retirement';
  message: string;
  fix: string;
  docs: string;
}

export function worstStatus(findings: readonly Finding[]): FindingStatus {
  if (findings.some((f) => f.status === 'fail')) return 'fail';
  if (findings.some((f) => f.status === 'warn')) return 'warn';
  return 'pass';
}
