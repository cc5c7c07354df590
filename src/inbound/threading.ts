import { normalizeSubject, ownMessageRef, type InboundEmail } from '../domain/inbound/email';
import { replyTokensIn } from '../cases/reply-token';
import type { CaseRepository } from '../store/cases';
import type { InboundRepository } from '../store/inbound';
import type { MessageRepository } from '../store/messages';

export type ThreadRule = 'in-reply-to' | 'references' | 'reply-token' | 'subject-participants' | 'new-case';

export interface ThreadDecision {
  caseId: string | null;
  rule: ThreadRule;
  /** What matched: the Message-ID, the token, or the normalised subject. */
  matched: string | null;
}

export interface ThreadingDeps {
  cases: CaseRepository;
  messages: MessageRepository;
  inbound: InboundRepository;
  /** How recent a same-subject case with the same participant must be to be joined. */
  subjectWindowMs: number;
}

/**
 * Which case an inbound message joins, in the order: In-Reply-To, then References (newest
 * first) against every Message-ID we sent or received; then a reply token in a recipient address;
 * then the normalised subject with the sender as a participant of that case within the window;
 * otherwise a new case. Our own outbound Message-IDs name the message directly
 * (`<id.cartero@domain>`), so a reply that overtakes its send's bookkeeping still finds the case.
 */
export async function findCase(deps: ThreadingDeps, tenantId: string, mail: InboundEmail, now: Date): Promise<ThreadDecision> {
  const candidates: Array<{ id: string; rule: ThreadRule }> = [
    ...mail.inReplyTo.map((id) => ({ id, rule: 'in-reply-to' as const })),
    ...[...mail.references].reverse().map((id) => ({ id, rule: 'references' as const })),
  ];
  const seen = new Set<string>();
  for (const c of candidates) {
    if (seen.has(c.id) || c.id === mail.messageId) continue;
    seen.add(c.id);
    const caseId = await caseOfMessageId(deps, tenantId, c.id);
    if (caseId) return { caseId, rule: c.rule, matched: c.id };
  }
  for (const token of replyTokensIn([...mail.envelopeTo, ...mail.to.map((a) => a.address), ...mail.cc.map((a) => a.address)])) {
    const caseId = await deps.cases.caseForReplyToken(tenantId, token);
    if (caseId) return { caseId, rule: 'reply-token', matched: token };
  }
  const subject = normalizeSubject(mail.subject);
  if (subject && mail.from) {
    const hit = await deps.cases.subjectCase(tenantId, subject, mail.from.address);
    if (hit && now.getTime() - hit.lastAt.getTime() <= deps.subjectWindowMs)
      return { caseId: hit.caseId, rule: 'subject-participants', matched: subject };
  }
  return { caseId: null, rule: 'new-case', matched: null };
}

/**
 * Our own outbound Message-IDs are looked up on the message itself (outbound messages are not put in
 * `message_ids`: that saves a write per accepted message), and first: an inbound mail that reuses one
 * of them as its own Message-ID is indexed under it, and must not draw the replies to our message
 * into its case.
 */
async function caseOfMessageId(deps: ThreadingDeps, tenantId: string, messageId: string): Promise<string | null> {
  const own = ownMessageRef(messageId);
  if (own) {
    const m = await deps.messages.find(tenantId, own);
    // The id part found the message by `_id` (case-sensitive); a mail client may change the domain's case.
    if (m?.caseId && m.messageId.toLowerCase() === messageId.toLowerCase()) return m.caseId;
  }
  const indexed = await deps.cases.lookupMessageId(tenantId, messageId);
  return indexed?.caseId ?? null;
}
