import type { ProbeResult } from './smtp-probe';
import type { ReplyClass } from './smtp-reply';

/**
 * A tenant's health (docs/operations.md, "Tenant health"): `degraded` once a real send fails for a
 * reason only the tenant's side can fix (credentials refused, TLS or settings unusable) or its
 * scheduled verify fails; `healthy` again at the next success (a sent message, an ok verify).
 * Transient failures (a busy server, a dropped connection) say nothing about the setup: they leave it.
 */
export const HEALTH_STATUSES = ['healthy', 'degraded'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

export interface TenantHealthView {
  status: HealthStatus;
  reason: string | null;
  /** Since when the status holds (the tenant's creation for a tenant never degraded). */
  since: string;
  /** The last verify or send failure that looked at it; null before the first. */
  checkedAt: string | null;
}

/** What one observation says: failed (with why), succeeded, or nothing about the setup. */
export type HealthObservation = { kind: 'failed'; reason: string; source: 'send' | 'verify' } | { kind: 'ok'; source: 'send' | 'verify' };

/** The reply classes of setup failures (`tls` covers the settings class: SmtpSettingsError). */
const SETUP_FAILURES: ReadonlySet<ReplyClass> = new Set(['auth', 'tls']);

export function observeAttempt(cls: ReplyClass, reply: string): HealthObservation | null {
  if (cls === 'accepted') return { kind: 'ok', source: 'send' };
  if (!SETUP_FAILURES.has(cls)) return null;
  return { kind: 'failed', source: 'send', reason: `${cls === 'auth' ? 'authentication refused' : 'TLS or settings failed'}: ${reply}` };
}

export function observeProbe(result: Pick<ProbeResult, 'ok' | 'failedStep' | 'error'>): HealthObservation {
  if (result.ok) return { kind: 'ok', source: 'verify' };
  const where = result.failedStep ? ` at ${result.failedStep}` : '';
  return { kind: 'failed', source: 'verify', reason: `verify failed${where}: ${result.error ?? 'no reason given'}`.slice(0, 1000) };
}
