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
  return {
    headers,
    subject: parsed.subject ?? '',
    from: firstAddress(parsed.from),
    text: parsed.text ?? '',
    html: typeof parsed.html === 'string' ? parsed.html : null,
    parts: parsed.attachments.map((a) => ({ contentType: a.contentType, filename: a.filename ?? null, content: a.content })),
  };
}

/** `Subject: a\r\n b` → `a b` (header value without its name, continuation lines joined). */
function unfold(line: string): string {
  const colon = line.indexOf(':');
  return line.slice(colon + 1).replace(/\r?\n[ \t]+/g, ' ').trim();
}

function firstAddress(from: AddressObject | undefined): string | null {
  const first = from?.value[0];
  return first?.address?.toLowerCase() ?? (first?.name || null);
}
