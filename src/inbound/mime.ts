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
import { fieldError, keepOrDrop, type InboundLimits } from './request';

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
 * Parses a raw RFC 5322 message with mailparser (charsets, encoded words, nested multiparts) into
 * the one inbound shape. Delivery reports and attached messages are kept as parts, so the
 * classifier sees message/delivery-status, message/rfc822 and feedback reports. A message with more
 * MIME parts than the limit, or whose headers cannot be read, is refused (400), never half stored.
 */
export async function fromRawMime(
  raw: Buffer,
  provider: InboundProvider,
  limits: InboundLimits,
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
  if (headers.length === 0 || !headers.some((h) => /^(from|subject|message-id|to|date)$/i.test(h.name))) {
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
