import { z } from 'zod';
import { bracketed, carteroIdFrom, CORRELATION_KEY, type ProviderEvent } from '../../domain/provider-events';
import { statusIn } from '../../domain/mail/reasons';
import { zodToValidationError } from '../../errors';
import type { InboundRequest } from '../request';
import { openSnsPost } from '../sns-post';
import { clip, MAX_EVENTS_PER_REQUEST, type ProviderEventContext, type ProviderEventResult } from './context';

/**
 * SES bounce, complaint, delivery (and, with event publishing, DeliveryDelay) notifications through
 * SNS: the same signature and topic checks as inbound SES mail (src/inbound/providers/ses.ts). Both
 * notification shapes are read: identity notifications (`notificationType`) and configuration-set
 * event publishing (`eventType`). The message is found by the `cartero_id` tag (event publishing) or
 * the original headers (`X-Cartero-Id`, Message-ID; "Include original headers" on the identity).
 */
const recipient = z.looseObject({ emailAddress: z.string().max(998), status: z.string().nullish(), diagnosticCode: z.string().nullish() });
const notification = z.looseObject({
  notificationType: z.string().nullish(),
  eventType: z.string().nullish(),
  mail: z
    .looseObject({
      messageId: z.string().nullish(),
      headers: z
        .array(z.looseObject({ name: z.string(), value: z.string() }))
        .max(1000)
        .nullish(),
      commonHeaders: z.looseObject({ messageId: z.string().nullish() }).nullish(),
      tags: z.record(z.string(), z.array(z.string())).nullish(),
    })
    .nullish(),
  bounce: z
    .looseObject({
      bounceType: z.string().nullish(),
      bounceSubType: z.string().nullish(),
      feedbackId: z.string().nullish(),
      bouncedRecipients: z.array(recipient).max(MAX_EVENTS_PER_REQUEST),
    })
    .nullish(),
  complaint: z
    .looseObject({ feedbackId: z.string().nullish(), complainedRecipients: z.array(recipient).max(MAX_EVENTS_PER_REQUEST) })
    .nullish(),
  delivery: z
    .looseObject({ recipients: z.array(z.string().max(998)).max(MAX_EVENTS_PER_REQUEST), smtpResponse: z.string().nullish() })
    .nullish(),
  deliveryDelay: z
    .looseObject({ delayType: z.string().nullish(), delayedRecipients: z.array(recipient).max(MAX_EVENTS_PER_REQUEST) })
    .nullish(),
});

/** SES bounce sub-types that name the address itself (docs: "Bounce types"), as a reason when the reply says nothing. */
const SUBTYPE_HINT: Record<string, ProviderEvent['reasonHint']> = {
  NoEmail: 'userunknown',
  Suppressed: 'userunknown',
  OnAccountSuppressionList: 'userunknown',
  MailboxFull: 'mailboxfull',
  MessageTooLarge: 'mesgtoobig',
  ContentRejected: 'contenterror',
  AttachmentRejected: 'contenterror',
  UnsupportedAttachment: 'contenterror',
};

export async function parseSesEvents(req: InboundRequest, ctx: ProviderEventContext): Promise<ProviderEventResult> {
  const opened = await openSnsPost(req, ctx, ctx.snsConfirm, 'an SES notification');
  if (opened.kind === 'ack') return opened;
  const inner = opened.message;
  const n = notification.safeParse(inner);
  if (!n.success) throw zodToValidationError(n.error, 'Message');
  const d = n.data;
  const type = d.eventType ?? d.notificationType ?? '';
  const headers = d.mail?.headers ?? [];
  const headerValue = (name: string) => headers.find((h) => h.name.toLowerCase() === name)?.value ?? null;
  const carteroId = carteroIdFrom(d.mail?.tags?.[CORRELATION_KEY]) ?? carteroIdFrom(headerValue('x-cartero-id'));
  const rfcMessageId = bracketed(headerValue('message-id') ?? d.mail?.commonHeaders?.messageId ?? null);
  const base = { provider: 'ses' as const, carteroId, rfcMessageId };
  const eventId = (suffix: string) => `${opened.snsMessageId}:${suffix}`;
  const events: ProviderEvent[] = [];
  if (type === 'Bounce' && d.bounce) {
    const b = d.bounce;
    // Permanent: SES will not try again, and the sub-type says why; Transient: SES gave up after retrying;
    // Undetermined: SES could not tell.
    const permanent = b.bounceType === 'Permanent' ? true : b.bounceType === 'Transient' ? false : null;
    for (const r of b.bouncedRecipients) {
      const diagnostic = clip(r.diagnosticCode);
      events.push({
        ...base,
        eventId: eventId(r.emailAddress),
        kind: 'bounce',
        recipient: r.emailAddress,
        status: r.status ?? statusIn(diagnostic ?? ''),
        diagnostic: diagnostic ?? (b.bounceSubType ? `SES ${b.bounceType ?? ''} bounce: ${b.bounceSubType}` : null),
        permanent,
        reasonHint: SUBTYPE_HINT[b.bounceSubType ?? ''] ?? null,
      });
    }
  } else if (type === 'Complaint' && d.complaint) {
    for (const r of d.complaint.complainedRecipients)
      events.push({
        ...base,
        eventId: eventId(r.emailAddress),
        kind: 'complaint',
        recipient: r.emailAddress,
        status: null,
        diagnostic: null,
        permanent: null,
        reasonHint: null,
      });
  } else if (type === 'Delivery' && d.delivery) {
    for (const r of d.delivery.recipients)
      events.push({
        ...base,
        eventId: eventId(r),
        kind: 'delivered',
        recipient: r,
        status: null,
        diagnostic: clip(d.delivery.smtpResponse),
        permanent: null,
        reasonHint: null,
      });
  } else if (type === 'DeliveryDelay' && d.deliveryDelay) {
    for (const r of d.deliveryDelay.delayedRecipients) {
      const diagnostic = clip(r.diagnosticCode) ?? clip(d.deliveryDelay.delayType);
      events.push({
        ...base,
        eventId: eventId(r.emailAddress),
        kind: 'delay',
        recipient: r.emailAddress,
        status: r.status ?? statusIn(diagnostic ?? ''),
        diagnostic,
        permanent: false,
        reasonHint: null,
      });
    }
  } else {
    return { kind: 'events', batch: { events: [], ignored: 1 } };
  }
  return { kind: 'events', batch: { events, ignored: 0 } };
}
