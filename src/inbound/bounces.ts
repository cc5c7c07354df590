import { handleBounceOrComplaint, type BounceHandlingDeps } from './feedback';
import { caseFeedbackSignaller, type CaseRecorderDeps } from '../cases/record';
import type { InboundDoc, InboundRepository } from '../store/inbound';

/**
 * Bounces, delay notices and complaints received as mail: stored and classified by ingestion, never
 * threaded as replies, then handed to the bounce handling (src/inbound/feedback.ts: match our
 * message by the returned Message-ID, per-recipient feedback, suppression, outbox events). When the
 * notice matches a message of a case, the case hears of it (`bounced` signal).
 */
export type BounceHandler = (doc: InboundDoc) => Promise<void>;

export function inboundBounceHandler(
  deps: Omit<BounceHandlingDeps, 'signalCase'> & CaseRecorderDeps & { inbound: InboundRepository },
): BounceHandler {
  const signalCase = caseFeedbackSignaller(deps);
  return async (doc) => {
    if (doc.kind !== 'bounce' && doc.kind !== 'complaint' && doc.kind !== 'delay') return;
    const result = await handleBounceOrComplaint(
      {
        messages: deps.messages,
        suppressions: deps.suppressions,
        events: deps.events,
        signalCase,
        ...(deps.pause ? { pause: deps.pause } : {}),
      },
      doc.tenantId,
      { kind: doc.kind, ...doc.classification },
      { channel: `inbound:${doc.provider}`, noticeId: doc.messageId ?? doc.providerId },
    );
    await deps.inbound.recordBounceHandling(doc._id, result);
  };
}
