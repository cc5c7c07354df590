import type { RecipientStatus } from './message';

/**
 * Our outbound Message-ID is `<{id without m_}.cartero@{domain}>` (rfcMessageId), so the message a
 * bounce or complaint reports on is found by `_id` — one index lookup, no scan — from the returned
 * Message-ID alone. Returns null for any other Message-ID.
 */
export function messageIdFromRfc(rfcMessageId: string | null): string | null {
  const m = /^<([A-Za-z0-9]{10,40})\.cartero@[^<>\s@]+>$/.exec(rfcMessageId?.trim() ?? '');
  return m?.[1] ? `m_${m[1]}` : null;
}

/**
 * Which of the message's recipients a report names. A DSN's Final-Recipient may be the address the
 * recipient's domain forwarded to; when the message had a single recipient it can only be that one.
 */
export function matchRecipient(recipients: ReadonlyArray<{ address: string }>, reported: string): number {
  const wanted = reported.toLowerCase();
  const i = recipients.findIndex((r) => r.address.toLowerCase() === wanted);
  if (i >= 0) return i;
  return recipients.length === 1 ? 0 : -1;
}

/** The message status once some recipients bounced after it was sent (DESIGN.md statuses). */
export function statusAfterBounces(recipients: ReadonlyArray<{ status: RecipientStatus }>): 'bounced' | 'partially_sent' | null {
  const delivered = recipients.filter((r) => r.status === 'sent').length;
  const bounced = recipients.filter((r) => r.status === 'bounced').length;
  if (bounced === 0) return null;
  return delivered === 0 ? 'bounced' : 'partially_sent';
}
