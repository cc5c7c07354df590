import { randomBytes } from 'node:crypto';
import MailComposer from 'nodemailer/lib/mail-composer';
import {
  domainOf,
  envelopeRecipients,
  mailboxAddress,
  referencesFor,
  rfcMessageId,
  type Mailbox,
  type MessageCreateInput,
} from '../domain/message';
import { relayCorrelationHeaders } from '../domain/provider-events';
import type { MessageTracking } from '../domain/tracking/message';
import { ValidationError } from '../errors';
import { findReplyParent, newCaseId, replyToFor, type OutboundCaseDeps } from '../cases/outbound';
import type { RecipientRecord } from '../store/messages';
import type { TenantDoc } from '../store/tenants';
import { composeTracking, type TrackingComposer } from './tracking';

export interface ComposeDeps extends OutboundCaseDeps {
  tracking: TrackingComposer;
}

/** A message checked against its tenant and composed once: the bytes every attempt sends, and what to store beside them. */
export interface ComposedMessage {
  mime: Buffer;
  /** The RFC 5322 Message-ID (`<id.cartero@from-domain>`). */
  messageId: string;
  from: string;
  caseId: string;
  inReplyTo: string | null;
  references: string[];
  sendAt: Date | null;
  recipients: Array<Pick<RecipientRecord, 'address' | 'kind'>>;
  tracking: MessageTracking | null;
  /** A `Reply-To: forwarding+<token>` was added: the token is registered for the case. */
  usedReplyToken: boolean;
  /** The case id was made for this message (no `caseId` given, no parent). */
  newCase: boolean;
}

/** Time-ordered, unguessable ids: 9 base36 chars of milliseconds + 16 random base62 chars. */
export function newMessageId(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const rand = Array.from(randomBytes(16), (b) => alphabet[b % 62]).join('');
  return `m_${Date.now().toString(36).padStart(9, '0')}${rand}`;
}

const toAddressObject = (m: Mailbox) => (typeof m === 'string' ? m : { address: m.address, name: m.name });

/**
 * Checks the message against the tenant (sending domains, limits, `sendAt`, `inReplyTo`) and
 * composes its MIME with MailComposer: threading headers from the parent, the tracking rewrite,
 * the case's Reply-To token. Every problem is a ValidationError naming the field, before anything
 * is stored.
 */
export async function composeMessage(deps: ComposeDeps, tenant: TenantDoc, body: MessageCreateInput, id: string): Promise<ComposedMessage> {
  const problems: Array<{ field: string; message: string }> = [];
  const from = mailboxAddress(body.from);
  const fromDomain = domainOf(from);
  if (!tenant.settings.domains.includes(fromDomain)) {
    problems.push({
      field: 'from',
      message: `${fromDomain} is not one of the tenant's sending domains (${tenant.settings.domains.join(', ')})`,
    });
  }
  const recipients = envelopeRecipients(body);
  const limits = tenant.settings.limits;
  if (recipients.length > limits.maxRecipientsPerMessage) {
    problems.push({
      field: 'to',
      message: `${recipients.length} recipients; the tenant allows ${limits.maxRecipientsPerMessage} per message`,
    });
  }
  for (const [name, w] of [
    ['perMinute', limits.perMinute],
    ['perHour', limits.perHour],
    ['perDay', limits.perDay],
  ] as const) {
    if (w && w.countBy === 'recipients' && recipients.length > w.max) {
      problems.push({
        field: 'to',
        message: `${recipients.length} recipients can never fit the tenant's ${name} limit of ${w.max} recipients`,
      });
    }
  }
  let sendAt: Date | null = null;
  if (body.sendAt) {
    sendAt = new Date(body.sendAt);
    if (sendAt.getTime() < Date.now() - 1000) problems.push({ field: 'sendAt', message: 'is in the past' });
  }
  let caseId = body.caseId ?? null;
  let inReplyTo: string | null = null;
  let references: string[] = [];
  if (body.inReplyTo) {
    const parent = await findReplyParent(deps, tenant._id, body.inReplyTo);
    if (!parent) {
      problems.push({ field: 'inReplyTo', message: `no message ${body.inReplyTo} for this tenant` });
    } else {
      if (parent.messageId) {
        inReplyTo = parent.messageId;
        references = referencesFor({ messageId: parent.messageId, references: parent.references });
      }
      caseId ??= parent.caseId;
    }
  }
  const tracked = composeTracking(deps.tracking, { id: tenant._id, settings: tenant.settings }, body, id, recipients.length);
  problems.push(...tracked.problems);
  // Every outbound message belongs to a case; replies find it by Message-ID or the Reply-To token.
  const newCase = caseId === null;
  caseId ??= newCaseId();
  const tokenReplyTo = body.replyTo ? null : replyToFor(tenant, caseId);
  const attachments = body.attachments.map((a) => ({ ...a, content: Buffer.from(a.contentBase64, 'base64') }));
  const rawSize = attachments.reduce((n, a) => n + a.content.length, 0);
  if (rawSize > limits.maxMessageBytes) {
    problems.push({
      field: 'attachments',
      message: `attachments total ${rawSize} bytes; the tenant's limit is ${limits.maxMessageBytes} bytes per message`,
    });
  }
  if (problems.length > 0) throw new ValidationError(`invalid ${[...new Set(problems.map((p) => p.field))].join(', ')}`, problems);

  const messageId = rfcMessageId(id, fromDomain);
  const correlation = Object.fromEntries(
    Object.entries(relayCorrelationHeaders(tenant.settings.preset, id)).map(([k, v]) => [k, { prepared: true as const, value: v }]),
  );
  const mime = await new MailComposer({
    from: toAddressObject(body.from),
    to: body.to.map(toAddressObject),
    cc: body.cc.map(toAddressObject),
    bcc: body.bcc.map(toAddressObject),
    ...(body.replyTo ? { replyTo: toAddressObject(body.replyTo) } : tokenReplyTo ? { replyTo: tokenReplyTo } : {}),
    subject: body.subject,
    ...(body.text !== undefined ? { text: body.text } : {}),
    ...(tracked.html !== undefined ? { html: tracked.html } : {}),
    attachments: attachments.map((a) => ({
      filename: a.filename,
      content: a.content,
      contentType: a.contentType,
      ...(a.contentId ? { cid: a.contentId } : {}),
    })),
    // A relay echoes its correlation header back in its delivery/bounce/complaint events (docs/provider-events.md).
    // Prepared: nodemailer would otherwise RFC 2047-encode a line over 78 characters, which no relay decodes.
    headers: { ...body.headers, ...tracked.headers, ...correlation, 'X-Cartero-Id': id },
    messageId,
    date: new Date(),
    ...(inReplyTo ? { inReplyTo } : {}),
    ...(references.length ? { references } : {}),
  })
    .compile()
    .build();
  if (mime.length > limits.maxMessageBytes) {
    throw new ValidationError('message too large', [
      {
        field: body.attachments.length ? 'attachments' : 'html',
        message: `the composed message is ${mime.length} bytes; the tenant's limit is ${limits.maxMessageBytes} bytes`,
      },
    ]);
  }
  return {
    mime,
    messageId,
    from,
    caseId,
    inReplyTo,
    references,
    sendAt,
    recipients,
    tracking: tracked.tracking,
    usedReplyToken: tokenReplyTo !== null,
    newCase,
  };
}
