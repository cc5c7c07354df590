import { randomBytes } from 'node:crypto';
import { normalizeSubject } from '../domain/inbound/email';
import type { CaseRepository } from '../store/cases';
import type { InboundRepository } from '../store/inbound';
import type { MessageDoc, MessageRepository } from '../store/messages';
import type { TenantDoc } from '../store/tenants';
import { replyAddress, replyTokenFor } from './reply-token';

/**
 * How outbound messages join cases, the same way inbound ones do: every message has a case (the
 * product's `caseId`, the parent's, or a new one), its Message-ID names the message (and so the
 * case) by itself, and each recipient is remembered with the subject for the subject+participants rule.
 */
export interface OutboundCaseDeps {
  cases: CaseRepository;
  inbound: InboundRepository;
  messages: MessageRepository;
}

export function newCaseId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return `c_${Date.now().toString(36)}${Array.from(randomBytes(12), (b) => alphabet[b % 62]).join('')}`;
}

/** The message a reply answers: one we sent (m_…) or one we received (i_…), with its thread. */
export async function findReplyParent(
  deps: OutboundCaseDeps,
  tenantId: string,
  id: string,
): Promise<{ messageId: string | null; references: string[]; caseId: string | null } | null> {
  if (id.startsWith('i_')) {
    const doc = await deps.inbound.find(id);
    if (!doc || doc.tenantId !== tenantId) return null;
    return { messageId: doc.messageId, references: doc.references, caseId: doc.caseId };
  }
  const doc = await deps.messages.find(tenantId, id);
  return doc ? { messageId: doc.messageId, references: doc.references, caseId: doc.caseId } : null;
}

/** `Reply-To: forwarding+<token>@domain` when the tenant has a forwarding address (and the product set none). */
export function replyToFor(tenant: TenantDoc, caseId: string): string | null {
  const forwarding = tenant.settings.inbound.forwardingAddresses[0];
  return forwarding ? replyAddress(forwarding, replyTokenFor(tenant.inboundKey, caseId)) : null;
}

/** Indexes an accepted outbound message for threading. Idempotent (a retried request repeats it). */
export async function registerOutbound(deps: OutboundCaseDeps, tenant: TenantDoc, doc: MessageDoc, usedReplyToken: boolean): Promise<void> {
  const caseId = doc.caseId;
  if (!caseId) return;
  const subject = normalizeSubject(doc.subject);
  // Independent, idempotent writes to different collections: in parallel, so the 202 waits for one round trip, not three.
  // The Message-ID is not indexed: it names the message itself (src/inbound/threading.ts caseOfMessageId).
  await Promise.all([
    deps.cases.ensure(tenant._id, caseId, doc.subject, doc.createdAt),
    ...doc.recipients.map((r) => deps.cases.noteSubject(tenant._id, subject, r.address, caseId, doc.createdAt)),
    ...(usedReplyToken ? [deps.cases.registerReplyToken(tenant._id, replyTokenFor(tenant.inboundKey, caseId), caseId)] : []),
  ]);
}
