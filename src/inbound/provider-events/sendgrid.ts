import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { bracketed, carteroIdFrom, CORRELATION_KEY, type ProviderEvent } from '../../domain/provider-events';
import { statusIn } from '../../domain/mail/reasons';
import { AuthenticationError, zodToValidationError } from '../../errors';
import { header, parseJsonBody, type InboundRequest } from '../request';
import { clip, MAX_EVENTS_PER_REQUEST, type ProviderEventContext, type ProviderEventResult } from './context';

/**
 * SendGrid's Event Webhook: a JSON array of events, signed (Signed Event Webhook) with ECDSA P-256
 * over `timestamp + body` — the timestamp from `X-Twilio-Email-Event-Webhook-Timestamp`, the
 * signature (base64 DER) from `X-Twilio-Email-Event-Webhook-Signature`, the tenant's verification
 * key (base64 DER SubjectPublicKeyInfo) from its SendGrid settings. The message is found by the
 * `cartero_id` unique argument (X-SMTPAPI header at send) or `smtp-id`, the Message-ID.
 */
const event = z.looseObject({
  email: z.string().max(998),
  event: z.string().max(64),
  sg_event_id: z.string().max(200).nullish(),
  sg_message_id: z.string().max(400).nullish(),
  'smtp-id': z.string().max(998).nullish(),
  timestamp: z.number().nullish(),
  reason: z.string().nullish(),
  response: z.string().nullish(),
  status: z.string().max(32).nullish(),
  type: z.string().max(32).nullish(),
});
const body = z.array(event).max(MAX_EVENTS_PER_REQUEST);

export function verifySendgridSignature(keyBase64: string, signatureBase64: string, timestamp: string, raw: Buffer): boolean {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: Buffer.from(keyBase64, 'base64'), format: 'der', type: 'spki' });
  } catch {
    throw new AuthenticationError('the configured SendGrid verification key is not a public key');
  }
  try {
    return verify('sha256', Buffer.concat([Buffer.from(timestamp, 'utf8'), raw]), key, Buffer.from(signatureBase64, 'base64'));
  } catch {
    return false;
  }
}

export async function parseSendgridEvents(req: InboundRequest, ctx: ProviderEventContext): Promise<ProviderEventResult> {
  const key = ctx.settings.eventVerificationKey;
  if (!key)
    throw new AuthenticationError('no SendGrid eventVerificationKey configured for this tenant (PUT /v1/tenants/{id}/inbound/sendgrid)');
  const signature = header(req, 'x-twilio-email-event-webhook-signature') ?? '';
  const timestamp = header(req, 'x-twilio-email-event-webhook-timestamp') ?? '';
  if (!/^\d{1,12}$/.test(timestamp) || !verifySendgridSignature(key, signature, timestamp, req.body))
    throw new AuthenticationError('the SendGrid Event Webhook signature does not verify');
  if (Math.abs(ctx.now.getTime() - Number(timestamp) * 1000) > ctx.signatureMaxAgeMs)
    throw new AuthenticationError(
      `the SendGrid signature timestamp is more than ${Math.round(ctx.signatureMaxAgeMs / 60_000)} minutes away from now`,
    );
  const parsed = body.safeParse(parseJsonBody(req));
  if (!parsed.success) throw zodToValidationError(parsed.error);
  const events: ProviderEvent[] = [];
  let ignored = 0;
  for (const [i, e] of parsed.data.entries()) {
    const kind: ProviderEvent['kind'] | null =
      e.event === 'delivered'
        ? 'delivered'
        : e.event === 'bounce' || e.event === 'dropped'
          ? 'bounce'
          : e.event === 'deferred'
            ? 'delay'
            : e.event === 'spamreport'
              ? 'complaint'
              : null;
    if (!kind) {
      ignored++;
      continue;
    }
    const diagnostic = clip(e.reason) ?? clip(e.response);
    events.push({
      provider: 'sendgrid',
      eventId: e.sg_event_id ?? `${e.sg_message_id ?? 'none'}:${e.event}:${e.email}:${e.timestamp ?? i}`,
      kind,
      recipient: e.email,
      carteroId: carteroIdFrom((e as Record<string, unknown>)[CORRELATION_KEY]),
      rfcMessageId: bracketed(e['smtp-id']),
      status: e.status && /^[245]\.\d{1,3}\.\d{1,3}$/.test(e.status) ? e.status : statusIn(diagnostic ?? ''),
      diagnostic,
      // `bounce` with type `blocked` is SendGrid's soft bounce; `dropped` never reached a server.
      permanent: kind === 'bounce' ? e.event === 'bounce' && e.type !== 'blocked' : kind === 'delay' ? false : null,
      reasonHint: e.event === 'dropped' ? 'rejected' : e.type === 'blocked' ? 'blocked' : null,
    });
  }
  return { kind: 'events', batch: { events, ignored } };
}
