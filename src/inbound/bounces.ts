import { handleBounceOrComplaint, type BounceHandlingDeps, type CaseFeedbackSignal } from '../activities/bounces';
import { recordCaseEvent, type CaseRecorderDeps } from '../cases/record';
import type { InboundDoc, InboundRepository } from '../store/inbound';

/**
 * Bounces, delay notices and complaints received as mail: stored and classified by ingestion, never
 * threaded as replies, then handed to the bounce handling (src/activities/bounces.ts: match our
 * message by the returned Message-ID, per-recipient feedback, suppression, outbox events). When the
 * notice matches a message of a case, the case hears of it (`bounced` signal).
 */
export type BounceHandler = (doc: InboundDoc) => Promise<void>;

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

export function inboundBounceHandler(deps: Omit<BounceHandlingDeps, 'signalCase'> & CaseRecorderDeps & { inbound: InboundRepository }): BounceHandler {
  const signalCase = caseFeedbackSignaller(deps);
  return async (doc) => {
    if (doc.kind !== 'bounce' && doc.kind !== 'complaint' && doc.kind !== 'delay') return;
    const result = await handleBounceOrComplaint(
      { messages: deps.messages, suppressions: deps.suppressions, events: deps.events, signalCase },
      doc.tenantId,
      { kind: doc.kind, ...doc.classification },
      { channel: `inbound:${doc.provider}`, noticeId: doc.messageId ?? doc.providerId },
    );
    await deps.inbound.recordBounceHandling(doc._id, result);
  };
}
