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
import { classifyMail, type MailForClassification, type MailVerdict } from '../domain/mail/classify';
import { fieldValue } from '../domain/mail/fields';
import { parsePool } from './parse-pool';
import { fieldError, keepOrDrop, type InboundLimits } from './request';

export type MimeLimits = Pick<InboundLimits, 'maxAttachmentBytes' | 'maxMimeParts'>;

/** What a provider knows about a delivery besides the raw message. */
interface MimeExtra {
  providerId?: string | null;
  envelopeTo?: string[];
  envelopeFrom?: string | null;
  spamScore?: number | null;
}

/** A received message as the classifier's front half (mailForClassification) reads it. */
type ClassifiableEmail = Pick<InboundEmail, 'headers' | 'subject' | 'from' | 'text' | 'html' | 'parts' | 'raw'>;

/** Bytes as they cross to a parser thread and back: a Buffer arrives as a plain Uint8Array. */
type Wire<T extends { content: Buffer }> = Omit<T, 'content'> & { content: Uint8Array };

/**
 * The jobs the parse pool runs (src/inbound/parse-pool.ts, thread src/inbound/parse-worker.ts): everything here
 * that reads a whole message, so that no message, however large or hostile, holds the caller's event loop.
 */
export type ParseJob =
  | { op: 'mime'; raw: Uint8Array; provider: InboundProvider; limits: MimeLimits; extra: MimeExtra }
  | { op: 'classify-raw'; raw: Uint8Array }
  | {
      op: 'verdict';
      mail: Omit<ClassifiableEmail, 'parts' | 'raw'> & { parts: Array<Wire<ClassifiableEmail['parts'][number]>>; raw: Uint8Array | null };
    };

/** A view that owns its memory: cloning a view copies all of its backing ArrayBuffer (Buffer.from shares a pool). */
const ownBytes = (b: Uint8Array): Uint8Array => (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b));
/** Bytes back from the other side of a thread, as the Buffer they were, without a copy. */
const asBuffer = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const partsOut = <T extends { content: Buffer }>(parts: T[]): Array<Wire<T>> => parts.map((p) => ({ ...p, content: ownBytes(p.content) }));
const partsIn = <T extends { content: Uint8Array }>(parts: T[]): Array<Omit<T, 'content'> & { content: Buffer }> =>
  parts.map((p) => ({ ...p, content: asBuffer(p.content) }));

/** Runs one ParseJob where it is called: on a parser thread (parse-worker.ts). */
export async function runParseJob(job: ParseJob): Promise<unknown> {
  switch (job.op) {
    case 'mime': {
      const mail = await parseRawMime(asBuffer(job.raw), job.provider, job.limits, job.extra);
      // The caller still holds the raw bytes: they do not travel back.
      return { ...mail, raw: null, parts: partsOut(mail.parts) };
    }
    case 'classify-raw': {
      const mail = await mailForClassification(await parseRawMime(asBuffer(job.raw), 'mime', CLASSIFY_ONLY_LIMITS));
      return { ...mail, parts: partsOut([...mail.parts]) };
    }
    case 'verdict': {
      const m = job.mail;
      return classifyMail(await mailForClassification({ ...m, parts: partsIn(m.parts), raw: m.raw === null ? null : asBuffer(m.raw) }));
    }
  }
}

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
 * The parsing runs on the parse pool's threads: a message that cannot be parsed within INBOUND_PARSE_TIMEOUT_MS is
 * refused (400), and a full pool answers 503 so that the provider retries.
 */
export async function fromRawMime(
  raw: Buffer,
  provider: InboundProvider,
  limits: MimeLimits,
  extra: MimeExtra = {},
): Promise<InboundEmail> {
  if (raw.length === 0) throw fieldError('(body)', 'empty message');
  const job: ParseJob = {
    op: 'mime',
    raw: ownBytes(raw),
    provider,
    limits: { maxAttachmentBytes: limits.maxAttachmentBytes, maxMimeParts: limits.maxMimeParts },
    extra,
  };
  const parsed = (await parsePool().run(job)) as Omit<InboundEmail, 'parts'> & { parts: Array<Wire<InboundPart>> };
  return { ...parsed, parts: partsIn(parsed.parts), raw };
}

/** fromRawMime on the caller's thread: what a parser thread runs. */
async function parseRawMime(raw: Buffer, provider: InboundProvider, limits: MimeLimits, extra: MimeExtra = {}): Promise<InboundEmail> {
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
 * bounce-mailbox watch, `cli parse-mail`), parsed on the parse pool. Refuses what fromRawMime refuses
 * (ValidationError). Its callers run classifyMail themselves: it reads a bounded window of the mail
 * (CLASSIFY_WINDOW), so its cost no longer grows with the message.
 */
export async function mailFromRaw(raw: Buffer): Promise<MailForClassification> {
  if (raw.length === 0) throw fieldError('(body)', 'empty message');
  const mail = (await parsePool().run({ op: 'classify-raw', raw: ownBytes(raw) } satisfies ParseJob)) as Omit<
    MailForClassification,
    'parts'
  > & {
    parts: Array<Wire<MailForClassification['parts'][number]>>;
  };
  return { ...mail, parts: partsIn([...mail.parts]) };
}

/** The classifier's verdict on a received message, worked out on the parse pool (inbound ingestion). */
export async function classifyInbound(mail: ClassifiableEmail): Promise<MailVerdict> {
  const job: ParseJob = {
    op: 'verdict',
    mail: {
      headers: mail.headers,
      subject: mail.subject,
      from: mail.from,
      text: mail.text,
      html: mail.html,
      parts: partsOut(mail.parts),
      raw: mail.raw === null ? null : ownBytes(mail.raw),
    },
  };
  return (await parsePool().run(job)) as MailVerdict;
}

const RETURNED = new Set(['message/rfc822', 'text/rfc822-headers', 'message/global', 'message/global-headers']);

/** A received message, as classifyMail reads it: the same for every channel mail arrives on. */
export async function mailForClassification(mail: ClassifiableEmail): Promise<MailForClassification> {
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
