import type { CaseFeedbackSignal } from '../activities/bounces';
import type { HitNotice } from '../api/tracking/write-hits';
import type { Client } from '@temporalio/client';
import { caseWorkflowId, type CaseEventKind, type CaseSignalEvent } from '../domain/cases';
import type { CaseRepository } from '../store/cases';
import { CaseIdKey, TenantIdKey } from '../temporal/search-attributes';

/** The case workflow's signal for each event kind (close/reopen are updates, see api/routes/cases.ts). */
export const SIGNAL_FOR_KIND: Record<Exclude<CaseEventKind, 'closed' | 'reopened'>, string> = {
  inbound: 'inbound',
  autoreply: 'inbound',
  sent: 'sent',
  delivery_failed: 'deliveryFailed',
  opened: 'opened',
  clicked: 'clicked',
  bounced: 'bounced',
  complained: 'bounced',
  delayed: 'bounced',
};

export interface CaseRecorderDeps {
  cases: CaseRepository;
  temporal: Client;
  taskQueue: string;
}

/**
 * Records one event of a case: the case exists, the timeline has the event (its deterministic id
 * collapses repeats), then the case workflow is told by signal-with-start — so an event for a case
 * whose workflow is not running (new, or ended) still lands. Every step is idempotent: a caller that
 * failed half-way simply calls again. Producers: inbound ingestion (API), the send workflow's end
 * (activity), and tracking/bounce handling (their issues) through this same function.
 */
export async function recordCaseEvent(
  deps: CaseRecorderDeps,
  tenantId: string,
  caseId: string,
  event: CaseSignalEvent & { kind: keyof typeof SIGNAL_FOR_KIND },
  data: Record<string, unknown> = {},
): Promise<void> {
  const created = await deps.cases.ensure(tenantId, caseId, event.subject ?? null, new Date(event.at));
  await deps.cases.appendEvent({ tenantId, caseId, eventId: event.eventId, kind: event.kind, at: new Date(event.at), ref: event.ref ?? null, data });
  await signalCase(deps, tenantId, caseId, SIGNAL_FOR_KIND[event.kind], event, created);
}

/** `fresh`: the case record was created just now, so a starting workflow has no saved summary to load. */
export async function signalCase(deps: Pick<CaseRecorderDeps, 'temporal' | 'taskQueue'>, tenantId: string, caseId: string, signal: string, event: CaseSignalEvent, fresh = false): Promise<void> {
  await deps.temporal.workflow.signalWithStart('caseWorkflow', {
    workflowId: caseWorkflowId(tenantId, caseId),
    taskQueue: deps.taskQueue,
    args: [{ tenantId, caseId, ...(fresh ? { fresh } : {}) }],
    signal,
    signalArgs: [event],
    typedSearchAttributes: [
      { key: TenantIdKey, value: tenantId },
      { key: CaseIdKey, value: caseId },
    ],
  });
}

/** Tracking's case seam: a human open or click (machine hits never reach a case) becomes a case event. */
export function caseHitNotifier(deps: CaseRecorderDeps) {
  return async ({ message, hit, verdict }: HitNotice): Promise<void> => {
    if (!message.caseId) return;
    const kind = hit.kind === 'open' ? 'opened' : 'clicked';
    const recipient = hit.recipient !== null ? (message.recipients[hit.recipient]?.address ?? null) : null;
    await recordCaseEvent(
      deps,
      message.tenantId,
      message.caseId,
      { eventId: `${kind}:${hit.id}`, kind, at: hit.at, ref: message._id, participants: recipient ? [recipient] : [] },
      { messageId: message._id, recipient, rule: verdict.rule },
    );
  };
}

/** The bounce handling's case seam (inbound providers, the IMAP watch): a `bounced` case event. */
export function caseFeedbackSignaller(deps: CaseRecorderDeps) {
  return async (s: CaseFeedbackSignal): Promise<void> => {
    const addresses = s.recipients.map((r) => r.address.toLowerCase()).sort();
    await recordCaseEvent(
      deps,
      s.tenantId,
      s.caseId,
      { eventId: `${s.kind}:${s.messageId}:${addresses.join(',')}`, kind: s.kind, at: Date.now(), ref: s.messageId, participants: [] },
      { messageId: s.messageId, recipients: s.recipients },
    );
  };
}
