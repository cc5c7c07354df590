import type { Client } from '@temporalio/client';
import type { CaseState, CaseSummary } from '../domain/cases';
import { caseUpdatedEvent } from '../cases/updated-event';
import { TERMINAL_STATUSES, type MessageStatus } from '../domain/message';
import { recordCaseEvent, type CaseRecorderDeps } from '../cases/record';
import { caseStateOf, type CaseRepository } from '../store/cases';
import type { EventRepository } from '../store/events';
import type { MessageDoc, MessageRepository } from '../store/messages';

export interface CaseActivityDeps {
  cases: CaseRepository;
  events: EventRepository;
  messages: MessageRepository;
  temporal: Client;
  taskQueue: string;
}

const SENT: ReadonlySet<MessageStatus> = new Set(['sent', 'partially_sent']);
const FAILED: ReadonlySet<MessageStatus> = new Set(['failed', 'bounced', 'suppressed']);

/**
 * The send's outcome as a case event: `sent` or `delivery_failed` (a cancelled message never
 * happened for the case). Idempotent by `sent:<id>` / `failed:<id>`. Called by the activity that
 * finished the message (which has the document in hand) or by `notifyCaseOfDelivery`.
 */
export async function tellCaseOfDelivery(
  deps: CaseRecorderDeps,
  doc: Pick<MessageDoc, '_id' | 'tenantId' | 'caseId' | 'recipients' | 'completedAt' | 'subject' | 'messageId' | 'newCase'>,
  status: MessageStatus,
  reason: string,
): Promise<void> {
  if (!doc.caseId) return;
  const kind = SENT.has(status) ? 'sent' : FAILED.has(status) ? 'delivery_failed' : null;
  if (!kind) return;
  const participants = doc.recipients.filter((r) => r.status === 'sent').map((r) => r.address);
  await recordCaseEvent(
    deps,
    doc.tenantId,
    doc.caseId,
    {
      eventId: `${kind === 'sent' ? 'sent' : 'failed'}:${doc._id}`,
      kind,
      at: (doc.completedAt ?? new Date()).getTime(),
      ref: doc._id,
      participants,
      subject: doc.subject,
    },
    { messageId: doc._id, rfcMessageId: doc.messageId, status, reason, subject: doc.subject },
    doc.newCase ? { pristineSubject: doc.subject } : {},
  );
}

export function createCaseActivities(deps: CaseActivityDeps) {
  return {
    /**
     * The send workflow's end: tell the message's case it was sent or could not be delivered
     * (a cancelled message never happened for the case). Idempotent by `sent:<id>` / `failed:<id>`.
     */
    async notifyCaseOfDelivery(tenantId: string, id: string, status: MessageStatus, reason: string): Promise<void> {
      const doc = await deps.messages.find(tenantId, id);
      // The store decides: a cancel that won the lock means the message never happened for the case.
      if (doc) await tellCaseOfDelivery(deps, doc, TERMINAL_STATUSES.has(doc.status) ? doc.status : status, doc.reason ?? reason);
    },

    /** Saves the workflow's summary for the API and appends `case.updated` (one per version). */
    async saveCaseSummary(summary: CaseSummary, recent: string[] = []): Promise<void> {
      await deps.cases.saveSummary(summary, recent);
      await deps.events.append(caseUpdatedEvent(summary));
    },

    /**
     * A new run continues from the case record: what an earlier run saved, or what was applied in
     * the store before the case went live (src/cases/record.ts).
     */
    async loadCaseState(tenantId: string, caseId: string): Promise<CaseState | null> {
      const doc = await deps.cases.find(tenantId, caseId);
      if (!doc || doc.eventCount === 0) return null;
      const state = caseStateOf(doc);
      return { ...state, summary: { ...state.summary, runs: doc.runs + 1 } };
    },
  };
}
