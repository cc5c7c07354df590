import { orNullIfNotFound } from '../errors';
import type { MessageStatus } from '../domain/message';
import type { ReplyClass } from '../domain/smtp-reply';
import { observeAttempt, observeProbe, type HealthObservation } from '../domain/tenant-health';
import type { ProbeResult } from '../domain/smtp-probe';
import type { EventRepository } from '../store/events';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import { presetLabel } from '../metrics/labels';
import { workerMetrics } from '../metrics/worker';

export interface TenantHealthDeps {
  tenants: TenantRepository;
  events: EventRepository;
}

/**
 * Records an observation as the tenant's health and, when it changed the status, appends one
 * `tenant.health` event. The compare-and-set in the store picks the one caller that changed it, so
 * concurrent failures of many messages emit one event; its id carries the change count, so a
 * retried activity appends nothing new.
 */
export async function recordTenantHealth(deps: TenantHealthDeps, tenantId: string, obs: HealthObservation): Promise<void> {
  const change = await deps.tenants.observeHealth(tenantId, obs);
  if (!change) return;
  workerMetrics().healthChanges.inc({ preset: presetLabel(change.preset), status: change.status });
  await deps.events.append({
    id: `tenant.health:${tenantId}:${change.changes}`,
    tenantId,
    type: 'tenant.health',
    data: { status: change.status, reason: change.reason, since: change.since.toISOString(), source: obs.source },
  });
}

/**
 * Called by the send attempt (src/activities/messages.ts) once it is recorded: counts it and feeds
 * the tenant's health. A success costs nothing when the tenant (as the attempt read it) is healthy.
 */
export async function noteSendAttempt(
  deps: TenantHealthDeps,
  tenant: TenantDoc,
  attempt: { cls: ReplyClass; reply: string; status: MessageStatus; bounced: number },
): Promise<void> {
  const m = workerMetrics();
  const preset = presetLabel(tenant.settings.preset);
  m.attempts.inc({ class: attempt.cls });
  if (attempt.status === 'sent' || attempt.status === 'partially_sent') m.sent.inc({ preset });
  else if (attempt.status === 'failed') m.failed.inc({ preset });
  if (attempt.bounced > 0) m.bounced.inc({ preset }, attempt.bounced);
  const obs = observeAttempt(attempt.cls, attempt.reply);
  if (!obs) return;
  if (obs.kind === 'ok' && tenant.health?.status !== 'degraded') return;
  await recordTenantHealth(deps, tenant._id, obs);
}

/** Called by the verify activity: every verify (scheduled or asked for) is a health check. */
export async function noteVerify(deps: TenantHealthDeps, tenantId: string, result: ProbeResult): Promise<void> {
  await recordTenantHealth(deps, tenantId, observeProbe(result));
}

/** A message failed outside an attempt (credentials deadline, cancelled lock aside): counted by preset. */
export async function noteMessageFailed(deps: Pick<TenantHealthDeps, 'tenants'>, tenantId: string): Promise<void> {
  const tenant = await orNullIfNotFound(deps.tenants.get(tenantId));
  workerMetrics().failed.inc({ preset: presetLabel(tenant?.settings.preset) });
}
