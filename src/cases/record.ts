import type { HitNotice } from '../domain/tracking/notice';
import type { Client } from '@temporalio/client';
import type { CaseEventKind, CaseFeedbackSignal, CaseSignalEvent } from '../domain/cases';
import type { CaseRepository } from '../store/cases';
import type { EventSink } from '../store/events';
import { NotFoundError } from '../errors';
import { caseUpdatedEvent } from './updated-event';
import { CASE_SIGNAL_FOR_KIND, signalCaseEvent } from '../temporal/handoffs/case';

/**
 * Events that do not make a case a workflow: our own messages' outcomes and their opens and clicks.
 * A case whose history is only these (most transactional mail) is summarised in the store, and costs
 * Temporal nothing beyond its messages' send workflows. The first inbound mail, bounce, complaint,
 * delay notice, close or reopen starts the case workflow, which then owns the case for good
 * (docs/cases.md, "When a case becomes a workflow").
 */
export const STORE_ONLY_KINDS: ReadonlySet<CaseEventKind> = new Set(['sent', 'delivery_failed', 'opened', 'clicked']);

export interface CaseRecorderDeps {
  cases: CaseRepository;
  /** For `case.updated` when an event is applied in the store (the workflow appends its own). */
  events: EventSink;
  temporal: Client;
  taskQueue: string;
}

/**
 * Records one event of a case: the case exists, the timeline has the event (its deterministic id
 * collapses repeats), then either the store-only summary takes it (a case no workflow owns, and an
 * event of STORE_ONLY_KINDS) or the case workflow is told by signal-with-start — so an event for a
 * case whose workflow is not running (new, or ended) still lands. Every step is idempotent: a
 * caller that failed half-way simply calls again. Producers: inbound ingestion (API), the send
 * workflow's end (activity), tracking and bounce handling, all through this function.
 */
export async function recordCaseEvent(
  deps: CaseRecorderDeps,
  tenantId: string,
  caseId: string,
  event: CaseSignalEvent & { kind: keyof typeof CASE_SIGNAL_FOR_KIND },
  data: Record<string, unknown> = {},
  /**
   * Set by a message that created its case (with this subject): its outcome is most likely the
   * case's first event, applied with one write and no read (CaseRepository.applyInStore).
   */
  opts: { pristineSubject?: string | null } = {},
): Promise<void> {
  const ensure = () => deps.cases.ensure(tenantId, caseId, event.subject ?? null, new Date(event.at));
  const storeOnly = STORE_ONLY_KINDS.has(event.kind);
  // A store-only event usually finds its case (created when the message was accepted): the record
  // is only created when applying finds none, which saves a write per message.
  if (!storeOnly) await ensure();
  await deps.cases.appendEvent({
    tenantId,
    caseId,
    eventId: event.eventId,
    kind: event.kind,
    at: new Date(event.at),
    ref: event.ref ?? null,
    data,
  });
  let alreadyLive = false;
  if (storeOnly) {
    const apply = () => deps.cases.applyInStore(tenantId, caseId, event, opts);
    const r = await apply().catch(async (err: unknown) => {
      if (!(err instanceof NotFoundError)) throw err;
      await ensure();
      return apply();
    });
    // A duplicate re-announces the current version: the first call may have died before doing so.
    if (r.outcome !== 'live') {
      await deps.events.append(caseUpdatedEvent(r.summary));
      return;
    }
    alreadyLive = r.already;
  }
  // goLive is a write; a record the apply just saw live needs none.
  if (!alreadyLive) await deps.cases.goLive(tenantId, caseId);
  await signalCaseEvent(deps.temporal, deps.taskQueue, tenantId, caseId, event);
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
