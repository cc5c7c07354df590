import type { Decision, NextStep } from '../domain/delivery';
import type { MessageStatus } from '../domain/message';
import { formatDuration, retryDelayMs, type RetryPolicy } from '../domain/retry';
import type { EventRepository } from '../store/events';
import type { MessageDoc, MessageRepository } from '../store/messages';
import type { PermitRepository } from '../store/permits';
import type { SuppressionRepository } from '../store/suppressions';

/**
 * What the send path does with the consequence table's answers to one attempt's replies (docs/bounces.md
 * "Consequences"): dead addresses suppressed with the evidence, refusals about the sender told to the tenant, a
 * quota or rate refusal pausing the tenant's sending. Event ids are per message and attempt, so an activity
 * that runs again emits nothing twice.
 */
export async function applyConsequences(
  deps: { suppressions: SuppressionRepository; permits: PermitRepository; events: EventRepository },
  doc: Pick<MessageDoc, '_id' | 'tenantId' | 'caseId' | 'messageId'>,
  attempt: number,
  decision: Pick<Decision, 'recipients' | 'bounced' | 'refused' | 'pause'>,
): Promise<void> {
  const base = { tenantId: doc.tenantId, caseId: doc.caseId, messageId: doc._id };
  for (const address of decision.bounced) {
    const r = decision.recipients.find((x) => x.address === address);
    const rule = r?.refusal?.rule ?? 'suppress/userunknown';
    await deps.suppressions.add(
      doc.tenantId,
      address,
      'smtp',
      `${r?.refusal?.reason ?? 'userunknown'} at RCPT TO (rule ${rule})`,
      `message ${doc._id} attempt ${attempt}: ${r?.reply ?? ''}`,
    );
  }
  if (decision.refused.length > 0) {
    const refused = decision.recipients.filter((r) => decision.refused.includes(r.address));
    await deps.events.append({
      ...base,
      id: `tenant.sending_refused:${doc._id}:${attempt}`,
      type: 'tenant.sending_refused',
      data: {
        messageId: doc._id,
        rfcMessageId: doc.messageId,
        attempt,
        why: 'the server refused the message for a reason about the sender, not the recipients; nothing was suppressed',
        recipients: refused.map((r) => ({
          address: r.address,
          reply: r.reply ?? null,
          reason: r.refusal?.reason ?? null,
          status: r.refusal?.status ?? null,
        })),
      },
    });
  }
  if (decision.pause) {
    await deps.permits.pauseSending(doc.tenantId, decision.pause.untilMs, decision.pause.kind, decision.pause.reply);
    await deps.events.append({
      ...base,
      id: `tenant.sending_paused:${doc._id}:${attempt}`,
      type: 'tenant.sending_paused',
      data: {
        messageId: doc._id,
        kind: decision.pause.kind,
        pausedUntil: new Date(decision.pause.untilMs).toISOString(),
        reply: decision.pause.reply,
      },
    });
  }
}

/** The tenant's sending is paused: this message makes no attempt and waits until the pause ends. */
export async function waitForPause(
  deps: { messages: MessageRepository },
  doc: Pick<MessageDoc, '_id' | 'lastReply'>,
  pausedUntil: number,
  policy: RetryPolicy,
): Promise<{ next: NextStep; status: MessageStatus; settingsVersion: number; lastReply: string }> {
  await deps.messages.setStatus(doc._id, 'retrying');
  const left = pausedUntil - Date.now();
  // A little past the end (jittered), so the messages that waited do not all arrive in the same instant.
  const delayMs = Math.max(1, left) + retryDelayMs({ ...policy, initialMs: Math.min(policy.initialMs, 1000) }, 'transient', 1, Math.random);
  return {
    next: {
      kind: 'retry',
      delayMs,
      cls: 'throttled',
      reason: `the tenant's sending is paused for ${formatDuration(left)} (a quota or rate refusal)`,
    },
    status: 'retrying',
    settingsVersion: 0,
    lastReply: doc.lastReply ?? '',
  };
}
