import { z } from 'zod';
import {
  cleanAddress,
  cleanHeaderValue,
  parseAddressList,
  parseMessageIds,
  type DroppedPart,
  type InboundAddress,
  type InboundPart,
} from '../../domain/inbound/email';
import { zodToValidationError } from '../../errors';
import { fromRawMime } from '../mime';
import {
  checkBasicAuth,
  hasBasicAuth,
  keepOrDrop,
  parseJsonBody,
  type AdapterContext,
  type AdapterResult,
  type InboundRequest,
  type ProviderGate,
} from '../request';

/**
 * Postmark inbound webhook JSON. `MessageID` is Postmark's UUID; the real Message-ID, In-Reply-To
 * and References are only in `Headers[]` (or in `RawEmail`, when the account includes it, which is
 * then parsed whole). Attachments are inline base64. Auth: basic credentials in the webhook URL
 * (required; checked before the body).
 */
const full = z.looseObject({ Email: z.string().nullish(), Name: z.string().nullish(), MailboxHash: z.string().nullish() });
const bodySchema = z.looseObject({
  MessageID: z.string().nullish(),
  From: z.string().nullish(),
  FromFull: full.nullish(),
  To: z.string().nullish(),
  ToFull: z.array(full).nullish(),
  Cc: z.string().nullish(),
  CcFull: z.array(full).nullish(),
  ReplyTo: z.string().nullish(),
  OriginalRecipient: z.string().nullish(),
  Subject: z.string().nullish(),
  Date: z.string().nullish(),
  TextBody: z.string().nullish(),
  HtmlBody: z.string().nullish(),
  Headers: z.array(z.looseObject({ Name: z.string(), Value: z.string() })).nullish(),
  Attachments: z
    .array(
      z.looseObject({
        Name: z.string().nullish(),
        Content: z.string(),
        ContentType: z.string().nullish(),
        ContentLength: z.number().nullish(),
        ContentID: z.string().nullish(),
      }),
    )
    .nullish(),
  RawEmail: z.string().nullish(),
  SpamScore: z.number().nullish(),
});

const fulls = (v: Array<z.infer<typeof full>> | null | undefined): InboundAddress[] =>
  (v ?? []).map((m) => cleanAddress(m.Email, m.Name)).filter((a): a is InboundAddress => a !== null);

export const postmarkGate: ProviderGate = {
  enabled: hasBasicAuth,
  checkHead: (head, s) => checkBasicAuth(head, s.username ?? '', s.password ?? ''),
};

export async function parsePostmark(req: InboundRequest, ctx: AdapterContext): Promise<AdapterResult> {
  const parsed = bodySchema.safeParse(parseJsonBody(req));
  if (!parsed.success) throw zodToValidationError(parsed.error);
  const p = parsed.data;
  const envelopeTo = p.OriginalRecipient ? [p.OriginalRecipient].map((a) => cleanAddress(a)?.address).filter((a): a is string => !!a) : [];
  const providerId = p.MessageID ? cleanHeaderValue(p.MessageID, 200) : null;
  if (p.RawEmail) {
    return {
      kind: 'emails',
      emails: [await fromRawMime(Buffer.from(p.RawEmail, 'utf8'), 'postmark', ctx.limits, { providerId, envelopeTo })],
    };
  }
  const headers = (p.Headers ?? [])
    .filter((x) => /^[\x21-\x39\x3b-\x7e]{1,76}$/.test(x.Name))
    .map((x) => ({ name: x.Name, value: cleanHeaderValue(x.Value) }));
  const h = (name: string) => headers.find((x) => x.name.toLowerCase() === name)?.value ?? null;
  const parts: InboundPart[] = [];
  const dropped: DroppedPart[] = [];
  (p.Attachments ?? []).forEach((a, i) => {
    const filename = a.Name ? cleanHeaderValue(a.Name, 255) : null;
    const contentType = a.ContentType ?? 'application/octet-stream';
    if (!/^[A-Z0-9+/=\s]*$/i.test(a.Content)) {
      dropped.push({ filename, contentType, size: a.ContentLength ?? null, reason: `Attachments.${i}.Content is not base64` });
      return;
    }
    const content = Buffer.from(a.Content, 'base64');
    keepOrDrop(
      { filename, contentType, content, size: content.length, contentId: a.ContentID || null, inline: Boolean(a.ContentID) },
      ctx.limits,
      parts,
      dropped,
    );
  });
  const date = p.Date ? new Date(p.Date) : null;
  return {
    kind: 'emails',
    emails: [
      {
        provider: 'postmark',
        providerId,
        messageId: parseMessageIds(h('message-id'), 1)[0] ?? null,
        inReplyTo: parseMessageIds(h('in-reply-to')),
        references: parseMessageIds(h('references')),
        from: p.FromFull ? cleanAddress(p.FromFull.Email, p.FromFull.Name) : (parseAddressList(p.From)[0] ?? null),
        to: p.ToFull ? fulls(p.ToFull) : parseAddressList(p.To),
        cc: p.CcFull ? fulls(p.CcFull) : parseAddressList(p.Cc),
        replyTo: parseAddressList(p.ReplyTo),
        envelopeTo,
        envelopeFrom: null,
        subject: cleanHeaderValue(p.Subject ?? ''),
        date: date && !Number.isNaN(date.getTime()) ? date : null,
        text: p.TextBody ?? '',
        html: p.HtmlBody || null,
        headers,
        parts,
        dropped,
        raw: null,
        spamScore: p.SpamScore ?? null,
      },
    ],
  };
}
