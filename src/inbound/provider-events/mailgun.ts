import { z } from 'zod';
import { bracketed, carteroIdFrom, CORRELATION_KEY, type ProviderEvent } from '../../domain/provider-events';
import { statusIn } from '../../domain/mail/reasons';
import { AuthenticationError, zodToValidationError } from '../../errors';
import { constantTimeEqual } from '../../security/crypto';
import { mailgunSignature } from '../providers/mailgun';
import { parseJsonBody, type InboundRequest } from '../request';
import { clip, type ProviderEventContext, type ProviderEventResult } from './context';

/**
 * Mailgun webhooks (delivered, failed, complained): JSON `{signature:{timestamp,token,signature},
 * "event-data":{…}}`, the signature an HMAC-SHA256 of `timestamp + token` with the tenant's signing
 * key (as for inbound routes), the token used once. `failed` with `severity: temporary` is a delay
 * (Mailgun retries); `permanent` a bounce. The message is found by the `cartero_id` user variable
 * (X-Mailgun-Variables at send) or `message.headers.message-id`.
 */
const body = z.looseObject({
  signature: z.looseObject({ timestamp: z.string().max(20), token: z.string().min(1).max(200), signature: z.string().max(200) }),
  'event-data': z.looseObject({
    id: z.string().max(200).nullish(),
    event: z.string().max(64),
    severity: z.string().max(32).nullish(),
    reason: z.string().max(200).nullish(),
    recipient: z.string().max(998).nullish(),
    message: z.looseObject({ headers: z.looseObject({ 'message-id': z.string().nullish() }).nullish() }).nullish(),
    'delivery-status': z
      .looseObject({
        code: z.union([z.number(), z.string()]).nullish(),
        'enhanced-code': z.string().nullish(),
        message: z.string().nullish(),
        description: z.string().nullish(),
      })
      .nullish(),
    'user-variables': z.record(z.string(), z.unknown()).nullish(),
  }),
});

export async function parseMailgunEvents(req: InboundRequest, ctx: ProviderEventContext): Promise<ProviderEventResult> {
  const signingKey = ctx.settings.signingKey;
  if (!signingKey)
    throw new AuthenticationError('no Mailgun signing key configured for this tenant (PUT /v1/tenants/{id}/inbound/mailgun)');
  const raw = parseJsonBody(req);
  const sig = z.looseObject({ signature: body.shape.signature }).safeParse(raw);
  if (!sig.success) throw new AuthenticationError('missing Mailgun timestamp, token or signature');
  const { timestamp, token, signature } = sig.data.signature;
  if (!/^\d{1,12}$/.test(timestamp) || !constantTimeEqual(mailgunSignature(signingKey, timestamp, token), signature.toLowerCase()))
    throw new AuthenticationError('the Mailgun signature does not verify');
  if (Math.abs(ctx.now.getTime() - Number(timestamp) * 1000) > ctx.signatureMaxAgeMs)
    throw new AuthenticationError(
      `the Mailgun signature timestamp is more than ${Math.round(ctx.signatureMaxAgeMs / 60_000)} minutes away from now`,
    );
  const parsed = body.safeParse(raw);
  if (!parsed.success) throw zodToValidationError(parsed.error);
  const e = parsed.data['event-data'];
  const kind: ProviderEvent['kind'] | null =
    e.event === 'delivered'
      ? 'delivered'
      : e.event === 'failed'
        ? e.severity === 'temporary'
          ? 'delay'
          : 'bounce'
        : e.event === 'complained'
          ? 'complaint'
          : null;
  if (!kind || !e.recipient) return { kind: 'events', batch: { events: [], ignored: 1 }, replayToken: token };
  const ds = e['delivery-status'];
  const diagnostic = clip(ds?.message) ?? clip(ds?.description);
  const event: ProviderEvent = {
    provider: 'mailgun',
    eventId: e.id ?? token,
    kind,
    recipient: e.recipient,
    carteroId: carteroIdFrom(e['user-variables']?.[CORRELATION_KEY]),
    rfcMessageId: bracketed(e.message?.headers?.['message-id']),
    status:
      ds?.['enhanced-code'] && /^[245]\.\d{1,3}\.\d{1,3}$/.test(ds['enhanced-code']) ? ds['enhanced-code'] : statusIn(diagnostic ?? ''),
    diagnostic,
    permanent: kind === 'bounce' ? e.severity === 'permanent' : kind === 'delay' ? false : null,
    // Mailgun's own reasons: `suppress-bounce` (on its bounce list), `suppress-complaint`, `old` (gave up).
    reasonHint: e.reason === 'suppress-bounce' ? 'userunknown' : e.reason === 'old' ? 'expired' : null,
  };
  return { kind: 'events', batch: { events: [event], ignored: 0 }, replayToken: token };
}
