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

/**
 * Why a bounce or complaint report naming the recipient at `index` may be acted on (suppression,
 * recipient status, the case), or null when it may only be recorded (docs/bounces.md "Whose report
 * is trusted"). The adversary is a co-recipient: it knows the Message-ID and every To and Cc
 * address, and can mail any report it likes to the tenant's inbound provider or bounce mailbox (our
 * envelope sender is the From address, so even the IMAP-watched mailbox takes anyone's mail). It
 * cannot learn a Bcc address, nor make our own SMTP session refuse a recipient. So a report is
 * trusted when:
 * - `only-recipient`: the message had one recipient (only that recipient saw it);
 * - `undisclosed-recipient`: it names a Bcc recipient, whose address no other recipient saw;
 * - `already-bounced`: the recipient already bounced, by our SMTP session's refusal or by an
 *   earlier trusted report, so the report only agrees with what is known.
 * A report naming a visible (To/Cc) recipient of a message with several recipients is not.
 */
export type FeedbackCorroboration = 'only-recipient' | 'undisclosed-recipient' | 'already-bounced';

export function feedbackCorroboration(
  recipients: ReadonlyArray<{ kind: 'to' | 'cc' | 'bcc'; status: RecipientStatus }>,
  index: number,
): FeedbackCorroboration | null {
  const r = recipients[index];
  if (!r) return null;
  if (recipients.length === 1) return 'only-recipient';
  if (r.kind === 'bcc') return 'undisclosed-recipient';
  if (r.status === 'bounced') return 'already-bounced';
  return null;
}

/** The message status once some recipients bounced after it was sent (DESIGN.md statuses). */
export function statusAfterBounces(recipients: ReadonlyArray<{ status: RecipientStatus }>): 'bounced' | 'partially_sent' | null {
  const delivered = recipients.filter((r) => r.status === 'sent').length;
  const bounced = recipients.filter((r) => r.status === 'bounced').length;
  if (bounced === 0) return null;
  return delivered === 0 ? 'bounced' : 'partially_sent';
}
