import { Splitter } from '@zone-eu/mailsplit';
import type { SplitterChunk } from '@zone-eu/mailsplit/lib/types';
import { simpleParser, type AddressObject } from 'mailparser';
import type { MailForClassification } from '../domain/mail/classify';

/** Raw RFC 5322 bytes → what classifyMail reads (mailparser does the MIME work). */
export async function mailFromRaw(raw: Buffer): Promise<MailForClassification> {
  const parsed = await simpleParser(raw, {
    // Keep delivery reports as parts: by default mailparser folds them into the text body.
    keepDeliveryStatus: true,
    skipHtmlToText: true,
    skipTextToHtml: true,
    skipImageLinks: true,
  });
  const headers = parsed.headerLines.map((h) => ({ name: h.key, value: unfold(h.line) }));
  const parts = parsed.attachments.map((a) => ({ contentType: a.contentType, filename: a.filename ?? null, content: a.content }));
  if (!parts.some((p) => RETURNED.has(p.contentType.toLowerCase()))) {
    const embedded = await embeddedHeaders(raw);
    if (embedded) parts.push({ contentType: 'text/rfc822-headers', filename: null, content: embedded });
  }
  return {
    headers,
    subject: parsed.subject ?? '',
    from: firstAddress(parsed.from),
    text: parsed.text ?? '',
    html: typeof parsed.html === 'string' ? parsed.html : null,
    parts,
  };
}

/** `Subject: a\r\n b` → `a b` (header value without its name, continuation lines joined). */
function unfold(line: string): string {
  const colon = line.indexOf(':');
  return line
    .slice(colon + 1)
    .replace(/\r?\n[ \t]+/g, ' ')
    .trim();
}

function firstAddress(from: AddressObject | undefined): string | null {
  const first = from?.value[0];
  return first?.address?.toLowerCase() ?? (first?.name || null);
}

const RETURNED = new Set(['message/rfc822', 'text/rfc822-headers', 'message/global', 'message/global-headers']);

/**
 * mailparser keeps a message/rfc822 part as an attachment only when its disposition is not
 * `inline`; an inline one (ARF reports send it so) is folded into the text and its headers are
 * lost. mailsplit (mailparser's own splitter) still sees that embedded message's header block.
 */
async function embeddedHeaders(raw: Buffer): Promise<Buffer | null> {
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
