import type { MessageStatus } from '../domain/message';
import type { EventInput } from '../domain/events';
import type { EventSink } from '../store/events';
import type { MessageDoc, RecipientRecord } from '../store/messages';

/**
 * The send path's events to the product: `message.sent` (also for `partially_sent`),
 * `message.bounced` per recipient refused at RCPT, `message.deferred` per attempt that will be
 * retried or waits for credentials, and `message.failed` for `failed` and `suppressed` endings.
 * Ids are deterministic, so the replay of a recorded attempt (a worker died after recording it)
 * appends the same events again harmlessly; that replay is also what makes them never lost.
 * A recipient refused at RCPT and later bounced by a DSN shares one `message.bounced` id.
 */
type Doc = Pick<MessageDoc, '_id' | 'tenantId' | 'caseId' | 'messageId'>;

export async function appendAttemptEvents(
  events: EventSink,
  doc: Doc,
  attempt: { n: number; outcome: string; reply: string },
  status: MessageStatus,
  recipients: ReadonlyArray<RecipientRecord>,
  reason: string | null,
): Promise<void> {
  const base = { tenantId: doc.tenantId, caseId: doc.caseId, messageId: doc._id };
  const common = { messageId: doc._id, rfcMessageId: doc.messageId };
  const out: EventInput[] = [];
  for (const r of recipients) {
    if (r.status !== 'bounced' || r.feedback) continue; // feedback = a DSN's bounce, announced by its handler
    out.push({
      ...base,
      id: `message.bounced:${doc._id}:${r.address.toLowerCase()}`,
      type: 'message.bounced',
      data: {
        ...common,
        recipient: r.address,
        // The consequence table's reading of the refusal; records from before it were all suppressed.
        reason: r.refusal?.reason ?? 'rejected',
        status: r.refusal?.status ?? null,
        hard: r.refusal?.hard ?? true,
        diagnostic: r.reply ?? null,
        source: 'smtp',
        suppressed: r.refusal ? r.refusal.consequence === 'suppress' : true,
        ...(r.refusal ? { consequence: r.refusal.consequence, rule: r.refusal.rule } : {}),
      },
    });
  }
  if (status === 'sent' || status === 'partially_sent') {
    out.push({
      ...base,
      id: `message.sent:${doc._id}`,
      type: 'message.sent',
      data: {
        ...common,
        status,
        attempt: attempt.n,
        reply: attempt.reply,
        recipients: recipients.map((r) => ({ address: r.address, status: r.status, reply: r.reply ?? null })),
      },
    });
  } else if (status === 'failed') {
    out.push(failedEvent(doc, status, reason ?? attempt.reply, attempt.reply));
  } else if (status === 'retrying' || status === 'waiting_credentials') {
    out.push({
      ...base,
      id: `message.deferred:${doc._id}:attempt:${attempt.n}`,
      type: 'message.deferred',
      data: { ...common, status, attempt: attempt.n, outcome: attempt.outcome, reply: attempt.reply, reason },
    });
  }
  for (const e of out) await events.append(e);
}

/** An ending decided outside an SMTP attempt (give-up, credentials deadline, every recipient suppressed). */
export async function appendEndingEvent(
  events: EventSink,
  doc: Doc,
  status: MessageStatus,
  reason: string,
  lastReply: string | null,
): Promise<void> {
  if (status !== 'failed' && status !== 'suppressed') return;
  await events.append(failedEvent(doc, status, reason, lastReply));
}

function failedEvent(doc: Doc, status: MessageStatus, reason: string, lastReply: string | null): EventInput {
  return {
    id: `message.failed:${doc._id}`,
    tenantId: doc.tenantId,
    caseId: doc.caseId,
    messageId: doc._id,
    type: 'message.failed',
    data: { messageId: doc._id, rfcMessageId: doc.messageId, status, reason, lastReply },
  };
}
