import { createHmac } from 'node:crypto';
import {
  cleanAddress,
  cleanHeaderValue,
  parseAddressList,
  parseMessageIds,
  type DroppedPart,
  type InboundPart,
} from '../../domain/inbound/email';
import { AuthenticationError } from '../../errors';
import { constantTimeEqual } from '../../security/crypto';
import { fromRawMime } from '../mime';
import {
  fieldError,
  fieldText,
  headerValue,
  keepOrDrop,
  parseForm,
  type AdapterContext,
  type AdapterResult,
  type InboundRequest,
  type ProviderGate,
} from '../request';

/**
 * Mailgun routes `forward()`: urlencoded, or multipart when there are attachments. Parsed mode
 * carries `message-headers` (JSON list of [name, value]) and `body-plain`/`body-html`; the MIME
 * mode (route URL ending in `mime`; here: any post with `body-mime`) carries the raw message.
 * Signature: hex HMAC-SHA256 of `timestamp + token` with the tenant's webhook signing key; the
 * timestamp must be fresh and the token unused (the caller claims it once the message ids are known).
 * The signature is in the body, so nothing but the key and the provider being enabled can be checked
 * before it is read (bounded by INBOUND_BODY_LIMIT_BYTES and INBOUND_MAX_CONCURRENT).
 */
export function mailgunSignature(signingKey: string, timestamp: string, token: string): string {
  return createHmac('sha256', signingKey)
    .update(timestamp + token)
    .digest('hex');
}

export const mailgunGate: ProviderGate = {
  enabled: (s) => s.signingKey !== undefined,
  checkHead: () => undefined,
};

export async function parseMailgun(req: InboundRequest, ctx: AdapterContext): Promise<AdapterResult> {
  const signingKey = ctx.settings.signingKey;
  if (!signingKey)
    throw new AuthenticationError('no Mailgun signing key configured for this tenant (PUT /v1/tenants/{id}/inbound/mailgun)');
  const { fields, files } = await parseForm(req, ctx.limits.maxAttachmentBytes);
  const timestamp = fieldText(fields, 'timestamp');
  const token = fieldText(fields, 'token');
  const signature = fieldText(fields, 'signature');
  if (!timestamp || !token || !signature) throw new AuthenticationError('missing Mailgun timestamp, token or signature');
  if (!/^\d{1,12}$/.test(timestamp) || !constantTimeEqual(mailgunSignature(signingKey, timestamp, token), signature.toLowerCase())) {
    throw new AuthenticationError('the Mailgun signature does not verify');
  }
  if (Math.abs(ctx.now.getTime() - Number(timestamp) * 1000) > ctx.limits.mailgunMaxAgeMs) {
    throw new AuthenticationError(
      `the Mailgun signature timestamp is more than ${Math.round(ctx.limits.mailgunMaxAgeMs / 60_000)} minutes away from now`,
    );
  }
  const envelopeTo = (fieldText(fields, 'recipient') ?? '')
    .split(',')
    .map((a) => cleanAddress(a.trim())?.address)
    .filter((a): a is string => !!a);
  const envelopeFrom = cleanAddress(fieldText(fields, 'sender'))?.address ?? null;

  const mime = fields.get('body-mime')?.[0];
  if (mime !== undefined) {
    return { kind: 'emails', emails: [await fromRawMime(mime, 'mailgun', ctx.limits, { envelopeTo, envelopeFrom })], replayToken: token };
  }
  const rawHeaders = fieldText(fields, 'message-headers');
  let headers: Array<{ name: string; value: string }> = [];
  if (rawHeaders !== null) {
    let list: unknown;
    try {
      list = JSON.parse(rawHeaders);
    } catch {
      throw fieldError('message-headers', 'is not valid JSON');
    }
    if (!Array.isArray(list)) throw fieldError('message-headers', 'must be a JSON list of [name, value] pairs');
    headers = list
      .filter(
        (x): x is [string, string] =>
          Array.isArray(x) && typeof x[0] === 'string' && typeof x[1] === 'string' && /^[\x21-\x39\x3b-\x7e]{1,76}$/.test(x[0]),
      )
      .slice(0, 500)
      .map(([name, value]) => ({ name, value: cleanHeaderValue(value) }));
  }
  // Every MIME header is also posted as its own field; prefer message-headers, fall back to fields.
  const h = (name: string) => headerValue(headers, name) ?? fieldText(fields, name) ?? fieldText(fields, name.toLowerCase());
  if (fieldText(fields, 'body-plain') === null && fieldText(fields, 'body-html') === null && headers.length === 0) {
    throw fieldError('body-plain', 'missing: neither body-mime nor the parsed fields (body-plain, message-headers) were posted');
  }
  const parts: InboundPart[] = [];
  const dropped: DroppedPart[] = [];
  let cidMap: Record<string, string> = {};
  try {
    cidMap = JSON.parse(fieldText(fields, 'content-id-map') ?? '{}') as Record<string, string>;
  } catch {
    cidMap = {};
  }
  const cidOf = Object.fromEntries(Object.entries(cidMap).map(([cid, field]) => [field, cid.replace(/^<|>$/g, '')]));
  for (const f of files) keepOrDrop({ ...f, contentId: cidOf[f.field] ?? null, inline: f.field in cidOf }, ctx.limits, parts, dropped);
  const date = h('Date');
  const parsedDate = date ? new Date(date) : null;
  return {
    kind: 'emails',
    emails: [
      {
        provider: 'mailgun',
        providerId: null,
        messageId: parseMessageIds(h('Message-Id'), 1)[0] ?? null,
        inReplyTo: parseMessageIds(h('In-Reply-To')),
        references: parseMessageIds(h('References')),
        from: parseAddressList(fieldText(fields, 'from') ?? h('From'))[0] ?? null,
        to: parseAddressList(h('To')),
        cc: parseAddressList(h('Cc')),
        replyTo: parseAddressList(h('Reply-To')),
        envelopeTo,
        envelopeFrom,
        subject: cleanHeaderValue(fieldText(fields, 'subject') ?? h('Subject') ?? ''),
        date: parsedDate && !Number.isNaN(parsedDate.getTime()) ? parsedDate : null,
        text: fieldText(fields, 'body-plain') ?? '',
        html: fieldText(fields, 'body-html'),
        headers,
        parts,
        dropped,
        raw: null,
        spamScore: null,
      },
    ],
    replayToken: token,
  };
}
