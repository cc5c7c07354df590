import { addressIn, fieldGroups, fieldValue } from './fields';
import { outcomeFor, type Bounce } from './reasons';

/** One per-recipient block of an RFC 3464 delivery-status report. */
export interface DsnRecipient {
  action: 'failed' | 'delayed' | 'delivered' | 'relayed' | 'expanded' | 'unknown';
  bounce: Bounce;
}

const ACTIONS = new Set(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);

/**
 * Parses a message/delivery-status body (RFC 3464 §2): one per-message group, then one group per
 * recipient. Final-Recipient names the address (Original-Recipient is what the sender wrote and is
 * preferred when present, because that is the address we know); Status is the enhanced code;
 * Diagnostic-Code carries the remote server's reply (`smtp; 550 5.1.1 ...`).
 */
export function parseDeliveryStatus(text: string, onlyRecipient: string | null = null): DsnRecipient[] {
  const out: DsnRecipient[] = [];
  const groups = fieldGroups(text);
  // Per-recipient groups are the ones with an Action or a Status (the first group is per-message).
  const recipientGroups = groups.filter((g) => fieldValue(g, 'action') !== null || fieldValue(g, 'status') !== null);
  for (const group of groups) {
    const finalRecipient = fieldValue(group, 'final-recipient');
    const named = addressIn(fieldValue(group, 'original-recipient')) ?? addressIn(finalRecipient);
    // A report with one recipient group whose Final-Recipient is missing or names no address (`LOCAL; bob`): the
    // returned message's only recipient is whom it is about (onlyRecipient, from classifyMail).
    const recipient = named ?? (recipientGroups.length === 1 && recipientGroups[0] === group ? onlyRecipient : null);
    if (!recipient) continue;
    const actionWord = (fieldValue(group, 'action') ?? '').toLowerCase().split(/[\s(;]/)[0] ?? '';
    // SendGrid writes `Action: expired` (not an RFC 3464 value) when it gave up retrying: a failure.
    const actionText = actionWord === 'expired' ? 'failed' : actionWord;
    const action = (ACTIONS.has(actionText) ? actionText : 'unknown') as DsnRecipient['action'];
    const statusText = fieldValue(group, 'status');
    const status = /^[245]\.\d{1,3}\.\d{1,3}/.exec(statusText ?? '')?.[0] ?? null;
    const diagnostic = diagnosticOf(fieldValue(group, 'diagnostic-code'));
    // No Action but a 5.x.x status is still a failure (some MTAs omit the required field).
    const failed = action === 'failed' || (action === 'unknown' && status?.startsWith('5') === true);
    const outcome = outcomeFor({ status, diagnostic, failed });
    out.push({
      action: action === 'unknown' ? (failed ? 'failed' : status?.startsWith('4') ? 'delayed' : 'unknown') : action,
      bounce: { recipient, status: outcome.status, hard: outcome.hard, reason: outcome.reason, diagnostic },
    });
  }
  return out;
}

/** `smtp; 550 5.1.1 <a@b>: User unknown` → `550 5.1.1 <a@b>: User unknown`. */
function diagnosticOf(value: string | null): string | null {
  if (!value) return null;
  const stripped = value.replace(/^[A-Z0-9-]+\s*;\s*/i, '').trim();
  return stripped || null;
}
