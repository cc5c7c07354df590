import { messageIdFromRfc } from '../../domain/bounce-match';
import type { MailVerdict } from '../../domain/mail/classify';
import { isHardReason, outcomeFor, type BounceReason } from '../../domain/mail/reasons';
import type { ProviderEvent } from '../../domain/provider-events';
import { handleBounceOrComplaint, type BounceHandlingDeps } from '../feedback';

export interface ProviderEventOutcome {
  eventId: string;
  kind: ProviderEvent['kind'];
  recipient: string;
  /** The Cartero message the event is about, or null when it names none of this tenant's messages. */
  messageId: string | null;
  matched: boolean;
  suppressed: boolean;
}

/** Reason and hardness of a relay's bounce: the reply text and status first (as for a DSN), the relay's category when they say nothing. */
export function relayBounceOutcome(e: Pick<ProviderEvent, 'status' | 'diagnostic' | 'permanent' | 'reasonHint'>): {
  reason: BounceReason;
  hard: boolean;
  status: string | null;
} {
  const o = outcomeFor({ status: e.status, diagnostic: e.diagnostic, failed: true });
  const reason = o.reason !== 'undefined' ? o.reason : (e.reasonHint ?? 'undefined');
  // The relay's "temporary" wins (it retried or will); its "permanent" still needs a reason that names
  // the address (a 5xx about the sender — relaying, policy, DMARC — is not a dead address: docs/bounces.md).
  const hard = e.permanent === false ? false : isHardReason(reason) && (e.permanent === true || o.hard);
  return { reason, hard, status: o.status };
}

/**
 * Acts on one relay event through the same path as a bounce notice received as mail
 * (handleBounceOrComplaint: recipient status, suppression with evidence, `message.*` events, the
 * case), marked trusted: it is signed by the relay. A delivery appends `message.delivered`.
 * The message is found by the echoed Cartero id, else by the reported Message-ID; only this
 * tenant's messages match.
 */
export async function applyProviderEvent(deps: BounceHandlingDeps, tenantId: string, e: ProviderEvent): Promise<ProviderEventOutcome> {
  const byId = e.carteroId ? await deps.messages.find(tenantId, e.carteroId) : null;
  const byHeader = !byId && e.rfcMessageId ? messageIdFromRfc(e.rfcMessageId) : null;
  const doc = byId ?? (byHeader ? await deps.messages.find(tenantId, byHeader) : null);
  const none = { eventId: e.eventId, kind: e.kind, recipient: e.recipient, messageId: null, matched: false, suppressed: false };
  if (!doc || (!byId && doc.messageId !== e.rfcMessageId)) return none;
  const source = { channel: `provider:${e.provider}`, noticeId: e.eventId, trusted: true as const };

  if (e.kind === 'delivered') {
    const recipient = doc.recipients.find((r) => r.address.toLowerCase() === e.recipient.toLowerCase());
    if (!recipient) return none;
    await deps.events.append({
      id: `message.delivered:${doc._id}:${recipient.address.toLowerCase()}`,
      tenantId,
      type: 'message.delivered',
      caseId: doc.caseId,
      messageId: doc._id,
      data: { recipient: recipient.address, source: source.channel, response: e.diagnostic },
    });
    return { ...none, messageId: doc._id, matched: true };
  }

  let bounce: MailVerdict['bounces'][number];
  if (e.kind === 'complaint') {
    bounce = { recipient: e.recipient, status: null, hard: true, reason: 'spamdetected', diagnostic: `${e.provider} complaint report` };
  } else if (e.kind === 'delay') {
    const o = outcomeFor({ status: e.status, diagnostic: e.diagnostic, failed: false });
    bounce = { recipient: e.recipient, status: o.status, hard: false, reason: o.reason, diagnostic: e.diagnostic };
  } else {
    const o = relayBounceOutcome(e);
    bounce = { recipient: e.recipient, status: o.status, hard: o.hard, reason: o.reason, diagnostic: e.diagnostic };
  }
  const verdict: MailVerdict = { kind: e.kind, rule: `provider-event-${e.provider}`, bounces: [bounce], originalMessageId: doc.messageId };
  const result = await handleBounceOrComplaint(deps, tenantId, verdict, source);
  const r = result.recipients[0];
  return { ...none, messageId: result.messageId, matched: r?.matched ?? false, suppressed: r?.suppressed ?? false };
}
