import { createHash } from 'node:crypto';
import type { ObjectId } from 'mongodb';
import { normalizeSubject, type InboundEmail } from '../domain/inbound/email';
import type { MailVerdict } from '../domain/mail/classify';
import { recordCaseEvent, type CaseRecorderDeps } from '../cases/record';
import type { EventRepository } from '../store/events';
import type { InboundDoc, InboundRepository, StoredPart } from '../store/inbound';
import type { MessageRepository } from '../store/messages';
import { DependencyUnavailableError } from '../errors';
import { asMailVerdict, combineVerdicts } from '../domain/mail/combine';
import { BODY_BUDGET_CHARS, classifyInbound } from './mime';
import { forwardingConfirmation } from '../domain/inbound/forwarding';
import { sisimai } from './sisimai';
import { findCase, type ThreadingDeps } from './threading';
import type { BounceHandler } from './bounces';

/** The classification rule of Gmail's forwarding approval: stored, never threaded, the tenant told. */
const FORWARDING_RULE = 'gmail-forwarding-confirmation';

export interface IngestDeps extends CaseRecorderDeps, ThreadingDeps {
  inbound: InboundRepository;
  messages: MessageRepository;
  events: EventRepository;
  onBounce: BounceHandler;
}

export interface IngestResult {
  id: string;
  duplicate: boolean;
  kind: InboundDoc['kind'];
  caseId: string | null;
  rule: string;
  dropped: number;
}

/**
 * `i_` + 32 hex of SHA-256 over the tenant and the Message-ID — or the provider's id, or the raw
 * bytes / content when neither exists — so every retry of the same message maps to the same `_id`.
 */
export function inboundIdFor(tenantId: string, mail: InboundEmail): string {
  const basis = mail.messageId
    ? `mid:${mail.messageId}`
    : mail.providerId
      ? `pid:${mail.provider}:${mail.providerId}`
      : `sha:${createHash('sha256')
          .update(
            mail.raw ??
              Buffer.from(JSON.stringify([mail.from?.address, mail.subject, mail.date?.toISOString(), mail.text.slice(0, 100_000)])),
          )
          .digest('hex')}`;
  return `i_${createHash('sha256').update(`${tenantId}\n${basis}`).digest('hex').slice(0, 32)}`;
}

/** A new case for an inbound message that threads nowhere: derived from its id, so retries agree. */
export const newCaseIdFor = (inboundId: string) => `c_${inboundId.slice(2, 26)}`;

/**
 * The classifier's verdict, worked out on the parse pool. Should it ever throw on a strange message (or outlast
 * INBOUND_PARSE_TIMEOUT_MS), the mail is still stored and threaded as a reply (a person can look at it) with the
 * failure as the rule, never lost to a 500 that the provider would retry for days. Only a full pool is passed on
 * (503): the provider's retry then gets a real verdict.
 */
async function verdictFor(mail: InboundEmail): Promise<MailVerdict> {
  try {
    // Sisimai reads the raw message when the provider posted one (raw MIME); it answers null when it cannot.
    const [cartero, records] = await Promise.all([classifyInbound(mail), mail.raw ? sisimai().verdicts(mail.raw) : Promise.resolve(null)]);
    return asMailVerdict(combineVerdicts(cartero, records));
  } catch (err) {
    if (err instanceof DependencyUnavailableError) throw err;
    return { kind: 'human', rule: `unclassified: ${(err as Error).message.slice(0, 200)}`, bounces: [], originalMessageId: null };
  }
}

/**
 * Stores one inbound message and does everything that follows from it, idempotently:
 * 1. already stored and complete → a duplicate delivery: nothing more (the case was told once);
 * 2. classify, thread (replies only), store files (GridFS) then the document — the durable write;
 * 3. index its Message-ID and subject, append the timeline and the `inbound.received` event, signal
 *    the case; 4. mark complete. A failure in 3 leaves `complete: false`; the provider's retry
 *    (we answer 5xx) repeats 3 with the stored decision, and each step there collapses repeats.
 */
export async function ingestEmail(deps: IngestDeps, tenantId: string, mail: InboundEmail, now = new Date()): Promise<IngestResult> {
  const id = inboundIdFor(tenantId, mail);
  let doc = await deps.inbound.find(id);
  if (doc && doc.tenantId === tenantId && doc.complete) {
    return { id, duplicate: true, kind: doc.kind, caseId: doc.caseId, rule: doc.threading.rule, dropped: doc.dropped.length };
  }
  if (!doc) doc = await store(deps, tenantId, id, mail, now);
  await followUp(deps, doc);
  await deps.inbound.markComplete(doc._id);
  return { id, duplicate: false, kind: doc.kind, caseId: doc.caseId, rule: doc.threading.rule, dropped: doc.dropped.length };
}

async function store(deps: IngestDeps, tenantId: string, id: string, mail: InboundEmail, now: Date): Promise<InboundDoc> {
  const forwarding = forwardingConfirmation(mail);
  // Gmail's forwarding approval is for the tenant's admin, not a customer's reply: never a case.
  const verdict: MailVerdict = forwarding
    ? { kind: 'autoreply', rule: FORWARDING_RULE, bounces: [], originalMessageId: null }
    : await verdictFor(mail);
  const threaded = !forwarding && (verdict.kind === 'human' || verdict.kind === 'autoreply');
  const decision = threaded
    ? await findCase(deps, tenantId, mail, now)
    : { caseId: null, rule: `not threaded: ${verdict.kind}`, matched: null };
  const caseId = threaded ? (decision.caseId ?? newCaseIdFor(id)) : null;
  const files: ObjectId[] = [];
  try {
    const parts: StoredPart[] = [];
    for (const p of mail.parts) {
      const fileId = await deps.inbound.putFile(tenantId, p.filename ?? 'part', p.content, { inboundId: id, contentType: p.contentType });
      files.push(fileId);
      parts.push({
        fileId,
        filename: p.filename,
        contentType: p.contentType,
        contentId: p.contentId,
        disposition: p.disposition,
        size: p.content.length,
      });
    }
    const rawFileId = mail.raw
      ? await deps.inbound.putFile(tenantId, `${id}.eml`, mail.raw, { inboundId: id, contentType: 'message/rfc822' })
      : null;
    if (rawFileId) files.push(rawFileId);
    const truncated = mail.text.length > BODY_BUDGET_CHARS || (mail.html?.length ?? 0) > BODY_BUDGET_CHARS;
    const { doc, inserted } = await deps.inbound.insert({
      _id: id,
      tenantId,
      provider: mail.provider,
      providerId: mail.providerId,
      messageId: mail.messageId,
      inReplyTo: mail.inReplyTo,
      references: mail.references,
      from: mail.from,
      to: mail.to.slice(0, 200),
      cc: mail.cc.slice(0, 200),
      replyTo: mail.replyTo.slice(0, 20),
      envelopeTo: mail.envelopeTo.slice(0, 200),
      subject: mail.subject,
      date: mail.date,
      text: mail.text.slice(0, BODY_BUDGET_CHARS),
      html: mail.html === null ? null : mail.html.slice(0, BODY_BUDGET_CHARS),
      truncated,
      headers: mail.headers.slice(0, 500),
      parts,
      dropped: mail.dropped,
      rawFileId,
      spamScore: mail.spamScore,
      kind: verdict.kind,
      classification: { rule: verdict.rule, bounces: verdict.bounces, originalMessageId: verdict.originalMessageId },
      caseId,
      threading: { rule: caseId && decision.rule === 'new-case' ? 'new-case' : decision.rule, matched: decision.matched },
      complete: false,
      receivedAt: now,
    });
    // Another delivery of the same message stored it first: keep its decision, drop our files.
    if (!inserted) await deps.inbound.deleteFiles(files);
    return doc;
  } catch (err) {
    await deps.inbound.deleteFiles(files);
    throw err;
  }
}

async function followUp(deps: IngestDeps, doc: InboundDoc): Promise<void> {
  const at = doc.receivedAt;
  if (doc.caseId) {
    if (doc.messageId) {
      await deps.cases.registerMessageId({
        tenantId: doc.tenantId,
        messageId: doc.messageId,
        caseId: doc.caseId,
        kind: 'received',
        ref: doc._id,
        at,
      });
    }
    if (doc.from && doc.kind === 'human')
      await deps.cases.noteSubject(doc.tenantId, normalizeSubject(doc.subject), doc.from.address, doc.caseId, at);
  }
  await deps.events.append({
    id: `inbound.received:${doc._id}`,
    tenantId: doc.tenantId,
    type: 'inbound.received',
    caseId: doc.caseId,
    data: {
      inboundId: doc._id,
      provider: doc.provider,
      messageId: doc.messageId,
      kind: doc.kind,
      classificationRule: doc.classification.rule,
      threadingRule: doc.threading.rule,
      from: doc.from?.address ?? null,
      subject: doc.subject,
      attachments: doc.parts.length,
      dropped: doc.dropped,
    },
  });
  if (doc.classification.rule === FORWARDING_RULE) {
    const found = forwardingConfirmation(doc);
    await deps.events.append({
      id: `tenant.forwarding_confirmation:${doc._id}`,
      tenantId: doc.tenantId,
      type: 'tenant.forwarding_confirmation',
      data: {
        inboundId: doc._id,
        confirmationUrl: found?.confirmationUrl ?? null,
        code: found?.code ?? null,
        subject: doc.subject,
        what: "Gmail asks to approve forwarding to Cartero's inbound address; inbound replies start once the tenant's admin opens the link (docs/inbound.md)",
      },
    });
  }
  if (doc.caseId) {
    await recordCaseEvent(
      deps,
      doc.tenantId,
      doc.caseId,
      {
        eventId: `inbound:${doc._id}`,
        kind: doc.kind === 'autoreply' ? 'autoreply' : 'inbound',
        at: at.getTime(),
        ref: doc._id,
        participants: doc.from ? [doc.from.address] : [],
        subject: doc.subject,
      },
      {
        inboundId: doc._id,
        from: doc.from?.address ?? null,
        subject: doc.subject,
        rule: doc.threading.rule,
        matched: doc.threading.matched,
      },
    );
  } else {
    await deps.onBounce(doc);
  }
}
