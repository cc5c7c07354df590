import { Splitter } from '@zone-eu/mailsplit';
import type { SplitterChunk } from '@zone-eu/mailsplit/lib/types';
import { simpleParser, type AddressObject, type ParsedMail } from 'mailparser';
import {
  cleanAddress,
  cleanHeaderValue,
  parseMessageIds,
  type DroppedPart,
  type InboundAddress,
  type InboundEmail,
  type InboundPart,
  type InboundProvider,
} from '../domain/inbound/email';
import type { MailForClassification } from '../domain/mail/classify';
import { fieldValue } from '../domain/mail/fields';
import { fieldError, keepOrDrop, type InboundLimits } from './request';

export type MimeLimits = Pick<InboundLimits, 'maxAttachmentBytes' | 'maxMimeParts'>;

/** Text and HTML kept in the document; longer bodies are cut (the raw message keeps everything). */
export const BODY_BUDGET_CHARS = 2 * 1024 * 1024;

function addresses(v: AddressObject | AddressObject[] | undefined): InboundAddress[] {
  const out: InboundAddress[] = [];
  for (const obj of Array.isArray(v) ? v : v ? [v] : []) {
    for (const a of obj.value) {
      for (const m of a.group ?? [a]) {
        const c = cleanAddress(m.address, m.name);
        if (c) out.push(c);
      }
    }
  }
  return out;
}

/**
 * The one mailparser front door. Parses a raw RFC 5322 message with mailparser (charsets, encoded
 * words, nested multiparts) into the one inbound shape; mail that is only classified (the
 * bounce-mailbox watch, the CLI) goes through it too (mailFromRaw). Delivery reports and attached messages are kept as parts, so the
 * classifier sees message/delivery-status, message/rfc822 and feedback reports. A message with more
 * MIME parts than the limit, or whose headers cannot be read, is refused (400), never half stored.
 */
export async function fromRawMime(
  raw: Buffer,
  provider: InboundProvider,
  limits: MimeLimits,
  extra: { providerId?: string | null; envelopeTo?: string[]; envelopeFrom?: string | null; spamScore?: number | null } = {},
): Promise<InboundEmail> {
  if (raw.length === 0) throw fieldError('(body)', 'empty message');
  let mail: ParsedMail;
  try {
    mail = await simpleParser(raw, {
      keepDeliveryStatus: true,
      skipTextToHtml: true,
      skipImageLinks: true,
      keepCidLinks: true,
      maxChildNodes: limits.maxMimeParts,
      maxHtmlLengthToParse: BODY_BUDGET_CHARS,
      checksumAlgo: false,
    });
  } catch (err) {
    throw fieldError('(body)', `unreadable MIME message: ${(err as Error).message.slice(0, 200)}`);
  }
  const headers = mail.headerLines.map((h) => {
    const colon = h.line.indexOf(':');
    return { name: h.line.slice(0, colon).trim(), value: cleanHeaderValue(h.line.slice(colon + 1)) };
  });
  if (headers.length === 0 || !headers.some((h) => /^(?:from|subject|message-id|to|date)$/i.test(h.name))) {
    throw fieldError('(body)', 'not an RFC 5322 message: no From, To, Subject, Date or Message-ID header');
  }
  const parts: InboundPart[] = [];
  const dropped: DroppedPart[] = [];
  for (const a of mail.attachments) {
    keepOrDrop(
      {
        filename: a.filename ? cleanHeaderValue(a.filename, 255) : null,
        contentType: a.contentType,
        content: a.content,
        size: a.size ?? a.content.length,
        contentId: a.contentId ? cleanHeaderValue(a.contentId, 250) : null,
        inline: a.contentDisposition === 'inline' || a.related === true,
      },
      limits,
      parts,
      dropped,
    );
  }
  const text = mail.text ?? '';
  const html = typeof mail.html === 'string' ? mail.html : null;
  const refs = Array.isArray(mail.references) ? mail.references.join(' ') : mail.references;
  const date = mail.date && !Number.isNaN(mail.date.getTime()) ? mail.date : null;
  return {
    provider,
    providerId: extra.providerId ?? null,
    messageId: parseMessageIds(mail.messageId, 1)[0] ?? null,
    inReplyTo: parseMessageIds(mail.inReplyTo),
    references: parseMessageIds(refs),
    from: addresses(mail.from)[0] ?? null,
    to: addresses(mail.to),
    cc: addresses(mail.cc),
    replyTo: addresses(mail.replyTo),
    envelopeTo: extra.envelopeTo ?? [],
    envelopeFrom: extra.envelopeFrom ?? null,
    subject: cleanHeaderValue(mail.subject ?? ''),
    date,
    text,
    html,
    headers,
    parts,
    dropped,
    raw,
    spamScore: extra.spamScore ?? null,
  };
}

/**
 * Limits for mail that is classified, never stored: no part is dropped for its size (a returned
 * message may carry large attachments), and as many MIME parts as mailparser allows by default.
 */
const CLASSIFY_ONLY_LIMITS: MimeLimits = { maxAttachmentBytes: Number.POSITIVE_INFINITY, maxMimeParts: 1000 };

/**
 * Raw bytes → what classifyMail reads, for mail that is classified but not stored (the
 * bounce-mailbox watch, `cli parse-mail`). Refuses what fromRawMime refuses (ValidationError).
 */
export async function mailFromRaw(raw: Buffer): Promise<MailForClassification> {
  return mailForClassification(await fromRawMime(raw, 'mime', CLASSIFY_ONLY_LIMITS));
}

const RETURNED = new Set(['message/rfc822', 'text/rfc822-headers', 'message/global', 'message/global-headers']);

/** A received message, as classifyMail reads it: the same for every channel mail arrives on. */
export async function mailForClassification(mail: InboundEmail): Promise<MailForClassification> {
  const parts = mail.parts.map((p) => ({ contentType: p.contentType, filename: p.filename, content: p.content }));
  if (mail.raw && !parts.some((p) => RETURNED.has(p.contentType))) {
    const embedded = await embeddedHeaders(mail.raw);
    if (embedded) parts.push({ contentType: 'text/rfc822-headers', filename: null, content: embedded });
  }
  return {
    headers: mail.headers,
    subject: mail.subject,
    // A bounce's From is often a bare `MAILER-DAEMON` or a name without an address: the classifier
    // still needs to see it (BOUNCE_SENDER).
    from: mail.from?.address ?? senderText(fieldValue(mail.headers, 'from')),
    text: mail.text,
    html: mail.html,
    parts,
  };
}

function senderText(value: string | null): string | null {
  const text = value?.replace(/["<>]/g, ' ').replace(/\s+/g, ' ').trim();
  return text || null;
}

/**
 * mailparser keeps a message/rfc822 part as an attachment only when its disposition is not
 * `inline`; an inline one (ARF reports send it so) is folded into the text and its headers are
 * lost. mailsplit (mailparser's own splitter) still sees that embedded message's header block.
 */
async function embeddedHeaders(raw: Buffer): Promise<Buffer | null> {
  // Most mail has no embedded message at all: skip the second pass over it.
  if (!/message\/rfc822/i.test(raw.toString('latin1'))) return null;
  const splitter = new Splitter();
  splitter.end(raw);
  let found: Buffer | null = null;
  // Drain the whole stream (stopping early would leave the splitter paused mid-message).
  for await (const chunk of splitter as AsyncIterable<SplitterChunk>) {
    if (found || chunk.type !== 'node') continue;
    const parent = chunk.parentNode;
    if (parent && parent.contentType === 'message/rfc822') found = chunk.getHeaders();
  }
  return found;
}
