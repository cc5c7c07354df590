import {
  cleanAddress,
  cleanHeaderValue,
  parseAddressList,
  parseMessageIds,
  type DroppedPart,
  type InboundPart,
} from '../../domain/inbound/email';
import { fromRawMime } from '../mime';
import {
  checkBasicAuth,
  decodeCharset,
  fieldError,
  fieldText,
  headerValue,
  keepOrDrop,
  parseForm,
  parseHeaderBlock,
  type AdapterContext,
  type AdapterResult,
  type InboundRequest,
  type ProviderGate,
  hasBasicAuth,
} from '../request';

/**
 * SendGrid Inbound Parse: `multipart/form-data` in both modes. Raw mode ("send raw") posts the
 * whole message in `email`; parsed mode posts `headers` (the header block as text), `text`/`html`
 * in the charsets named by the `charsets` JSON, and the files. Route on `envelope` (JSON), not `to`.
 * Auth: basic credentials in the URL (required to enable the provider; checked before the body).
 * SendGrid retries only on 5xx; a 4xx drops the mail for good, so only truly bad requests get one.
 */
function jsonField<T>(raw: string | null, field: string): T | null {
  if (raw === null || raw.trim() === '') return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw fieldError(field, 'is not valid JSON');
  }
}

export const sendgridGate: ProviderGate = {
  enabled: hasBasicAuth,
  checkHead: (head, s) => checkBasicAuth(head, s.username ?? '', s.password ?? ''),
};

export async function parseSendgrid(req: InboundRequest, ctx: AdapterContext): Promise<AdapterResult> {
  const { fields, files } = await parseForm(req, ctx.limits.maxAttachmentBytes);
  const envelope = jsonField<{ to?: unknown; from?: unknown }>(fieldText(fields, 'envelope'), 'envelope');
  const envelopeTo = (Array.isArray(envelope?.to) ? envelope.to : [])
    .map((a) => (typeof a === 'string' ? cleanAddress(a)?.address : undefined))
    .filter((a): a is string => !!a);
  const envelopeFrom = typeof envelope?.from === 'string' ? (cleanAddress(envelope.from)?.address ?? null) : null;
  const spam = Number(fieldText(fields, 'spam_score'));
  const spamScore = Number.isFinite(spam) && fields.has('spam_score') ? spam : null;

  const raw = fields.get('email')?.[0];
  if (raw !== undefined) {
    return { kind: 'emails', emails: [await fromRawMime(raw, 'sendgrid', ctx.limits, { envelopeTo, envelopeFrom, spamScore })] };
  }
  const headerBlock = fieldText(fields, 'headers');
  if (headerBlock === null) throw fieldError('headers', 'missing: neither the raw `email` field nor the parsed `headers` field was posted');
  const headers = parseHeaderBlock(headerBlock);
  const charsets = jsonField<Record<string, string>>(fieldText(fields, 'charsets'), 'charsets') ?? {};
  const textBytes = fields.get('text')?.[0];
  const htmlBytes = fields.get('html')?.[0];
  const info =
    jsonField<Record<string, { filename?: string; name?: string; type?: string; 'content-id'?: string }>>(
      fieldText(fields, 'attachment-info'),
      'attachment-info',
    ) ?? {};
  const parts: InboundPart[] = [];
  const dropped: DroppedPart[] = [];
  for (const f of files) {
    const meta = info[f.field];
    const filename = meta?.filename ?? meta?.name ?? f.filename;
    keepOrDrop(
      {
        ...f,
        filename: filename ? cleanHeaderValue(filename, 255) : null,
        contentType: meta?.type ?? f.contentType,
        contentId: meta?.['content-id'] ?? null,
        inline: Boolean(meta?.['content-id']),
      },
      ctx.limits,
      parts,
      dropped,
    );
  }
  const date = headerValue(headers, 'date');
  const parsedDate = date ? new Date(date) : null;
  return {
    kind: 'emails',
    emails: [
      {
        provider: 'sendgrid',
        providerId: null,
        messageId: parseMessageIds(headerValue(headers, 'message-id'), 1)[0] ?? null,
        inReplyTo: parseMessageIds(headerValue(headers, 'in-reply-to')),
        references: parseMessageIds(headerValue(headers, 'references')),
        // to/from/cc/subject are UTF-8 in parsed mode; text/html are in the charset SendGrid names.
        from: parseAddressList(fieldText(fields, 'from'))[0] ?? null,
        to: parseAddressList(fieldText(fields, 'to')),
        cc: parseAddressList(fieldText(fields, 'cc')),
        replyTo: parseAddressList(headerValue(headers, 'reply-to')),
        envelopeTo,
        envelopeFrom,
        subject: cleanHeaderValue(fieldText(fields, 'subject') ?? ''),
        date: parsedDate && !Number.isNaN(parsedDate.getTime()) ? parsedDate : null,
        text: textBytes ? decodeCharset(textBytes, charsets.text) : '',
        html: htmlBytes ? decodeCharset(htmlBytes, charsets.html) : null,
        headers,
        parts,
        dropped,
        raw: null,
        spamScore,
      },
    ],
  };
}
