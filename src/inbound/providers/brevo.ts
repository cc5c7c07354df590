import { z } from 'zod';
import {
  cleanAddress,
  cleanHeaderValue,
  parseMessageIds,
  type DroppedPart,
  type InboundAddress,
  type InboundEmail,
  type InboundPart,
} from '../../domain/inbound/email';
import { zodToValidationError } from '../../errors';
import {
  checkBasicOrBearer,
  hasBasicAuth,
  keepOrDrop,
  parseJsonBody,
  type AdapterContext,
  type AdapterResult,
  type InboundRequest,
  type ProviderGate,
} from '../request';

/**
 * Brevo inbound parsing webhook: `{"items": [...]}`, one or more parsed emails per POST. No raw
 * MIME and no body signature: the inbound key in the URL plus basic auth or a bearer token (one of
 * them is required to enable the provider; both are headers, checked before the body). Attachments are not inline: each has a DownloadToken fetched with the tenant's own
 * Brevo API key. Field quirks accepted: `Uuid` array or string, `SpamScore` or `Spam.Score`,
 * `Recipients` as strings, objects or absent, repeated headers as arrays.
 */
const mailbox = z.looseObject({ Name: z.string().nullish(), Address: z.string().nullish() });
const mailboxes = z.union([z.array(mailbox), mailbox]).nullish();
const item = z.looseObject({
  Uuid: z.union([z.array(z.string()), z.string()]).nullish(),
  MessageId: z.string().nullish(),
  InReplyTo: z.string().nullish(),
  From: mailbox.nullish(),
  To: mailboxes,
  Cc: mailboxes,
  ReplyTo: mailboxes,
  Recipients: z.array(z.union([z.string(), mailbox])).nullish(),
  SentAtDate: z.string().nullish(),
  Subject: z.string().nullish(),
  RawHtmlBody: z.string().nullish(),
  RawTextBody: z.string().nullish(),
  ExtractedMarkdownMessage: z.string().nullish(),
  Attachments: z
    .array(
      z.looseObject({
        Name: z.string().nullish(),
        ContentType: z.string().nullish(),
        ContentLength: z.number().nullish(),
        ContentID: z.string().nullish(),
        DownloadToken: z.string().nullish(),
      }),
    )
    .nullish(),
  Headers: z.record(z.string(), z.union([z.string(), z.array(z.string()), z.number(), z.null()])).nullish(),
  SpamScore: z.number().nullish(),
  Spam: z.looseObject({ Score: z.number().nullish() }).nullish(),
});
const bodySchema = z.looseObject({ items: z.array(item).min(1).max(100) });

const list = (v: z.infer<typeof mailboxes>): InboundAddress[] =>
  (Array.isArray(v) ? v : v ? [v] : []).map((m) => cleanAddress(m.Address, m.Name)).filter((a): a is InboundAddress => a !== null);

export const brevoGate: ProviderGate = {
  enabled: (s) => hasBasicAuth(s) || s.bearerToken !== undefined,
  checkHead: checkBasicOrBearer,
};

export async function parseBrevo(req: InboundRequest, ctx: AdapterContext): Promise<AdapterResult> {
  const parsed = bodySchema.safeParse(parseJsonBody(req));
  if (!parsed.success) throw zodToValidationError(parsed.error);
  const emails: InboundEmail[] = [];
  for (const it of parsed.data.items) {
    const headers: Array<{ name: string; value: string }> = [];
    for (const [name, v] of Object.entries(it.Headers ?? {})) {
      if (!/^[\x21-\x39\x3b-\x7e]{1,76}$/.test(name)) continue;
      for (const value of Array.isArray(v) ? v : [v]) if (value !== null) headers.push({ name, value: cleanHeaderValue(String(value)) });
    }
    const h = (name: string) => headers.find((x) => x.name.toLowerCase() === name)?.value ?? null;
    const parts: InboundPart[] = [];
    const dropped: DroppedPart[] = [];
    for (const a of it.Attachments ?? []) {
      const filename = a.Name ? cleanHeaderValue(a.Name, 255) : null;
      const contentType = (a.ContentType ?? 'application/octet-stream').toLowerCase();
      if (!a.DownloadToken) {
        dropped.push({ filename, contentType, size: a.ContentLength ?? null, reason: 'no DownloadToken in the payload' });
      } else if ((a.ContentLength ?? 0) > ctx.limits.maxAttachmentBytes) {
        dropped.push({
          filename,
          contentType,
          size: a.ContentLength ?? null,
          reason: `larger than the ${ctx.limits.maxAttachmentBytes}-byte attachment limit`,
        });
      } else if (!ctx.settings.apiKey) {
        dropped.push({
          filename,
          contentType,
          size: a.ContentLength ?? null,
          reason: 'not fetched: no Brevo API key configured (PUT /v1/tenants/{id}/inbound/brevo {"apiKey": …})',
        });
      } else {
        // A fetch failure throws: the request answers 5xx and Brevo delivers again.
        const content = await ctx.brevoAttachment(a.DownloadToken, ctx.settings.apiKey);
        keepOrDrop(
          { filename, contentType, content, size: content.length, contentId: a.ContentID ?? null, inline: Boolean(a.ContentID) },
          ctx.limits,
          parts,
          dropped,
        );
      }
    }
    const uuid = Array.isArray(it.Uuid) ? it.Uuid[0] : it.Uuid;
    const date = it.SentAtDate ? new Date(it.SentAtDate) : null;
    emails.push({
      provider: 'brevo',
      providerId: uuid ? cleanHeaderValue(uuid, 200) : null,
      messageId: parseMessageIds(it.MessageId ?? h('message-id'), 1)[0] ?? null,
      inReplyTo: parseMessageIds(it.InReplyTo ?? h('in-reply-to')),
      references: parseMessageIds(h('references')),
      from: it.From ? cleanAddress(it.From.Address, it.From.Name) : null,
      to: list(it.To),
      cc: list(it.Cc),
      replyTo: list(it.ReplyTo),
      envelopeTo: (it.Recipients ?? [])
        .map((r) => (typeof r === 'string' ? cleanAddress(r) : cleanAddress(r.Address)))
        .filter((a): a is InboundAddress => a !== null)
        .map((a) => a.address),
      envelopeFrom: null,
      subject: cleanHeaderValue(it.Subject ?? ''),
      date: date && !Number.isNaN(date.getTime()) ? date : null,
      text: it.RawTextBody ?? it.ExtractedMarkdownMessage ?? '',
      html: it.RawHtmlBody ?? null,
      headers,
      parts,
      dropped,
      raw: null,
      spamScore: it.SpamScore ?? it.Spam?.Score ?? null,
    });
  }
  return { kind: 'emails', emails };
}

/** Production fetcher for Brevo attachments (`GET /v3/inbound/attachments/{token}` with `api-key`). */
export function brevoAttachmentFetcher(baseUrl = 'https://api.brevo.com/v3') {
  return async (downloadToken: string, apiKey: string): Promise<Buffer> => {
    const res = await fetch(`${baseUrl}/inbound/attachments/${encodeURIComponent(downloadToken)}`, {
      headers: { 'api-key': apiKey, accept: 'application/octet-stream' },
      signal: AbortSignal.timeout(30_000),
    });
    if (!res.ok) throw new Error(`Brevo attachment download answered HTTP ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  };
}
