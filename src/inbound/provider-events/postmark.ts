import { z } from 'zod';
import { carteroIdFrom, CORRELATION_KEY, type ProviderEvent } from '../../domain/provider-events';
import { statusIn } from '../../domain/mail/reasons';
import { zodToValidationError } from '../../errors';
import { parseJsonBody, type InboundRequest } from '../request';
import { clip, type ProviderEventContext, type ProviderEventResult } from './context';

/**
 * Postmark's Bounce, Delivery and SpamComplaint webhooks: one JSON record per POST (`RecordType`),
 * basic auth in the webhook URL (checked before the body). `MessageID` is Postmark's own id, not the
 * Message-ID header, so the message is found by the `cartero_id` metadata (X-PM-Metadata-cartero_id
 * at send) only.
 */
const body = z.looseObject({
  RecordType: z.string().max(64),
  ID: z.union([z.number(), z.string()]).nullish(),
  Type: z.string().max(64).nullish(),
  MessageID: z.string().max(200).nullish(),
  Email: z.string().max(998).nullish(),
  Recipient: z.string().max(998).nullish(),
  Details: z.string().nullish(),
  Description: z.string().nullish(),
  BouncedAt: z.string().max(64).nullish(),
  DeliveredAt: z.string().max(64).nullish(),
  Metadata: z.record(z.string(), z.unknown()).nullish(),
});

/** Postmark bounce types (its "Bounce types" table) that Cartero acts on; the rest (auto-responders, subscriptions…) are ignored. */
const BOUNCE_TYPES: Record<string, { kind: ProviderEvent['kind']; permanent: boolean; hint: ProviderEvent['reasonHint'] }> = {
  HardBounce: { kind: 'bounce', permanent: true, hint: 'userunknown' },
  BadEmailAddress: { kind: 'bounce', permanent: true, hint: 'syntaxerror' },
  SoftBounce: { kind: 'bounce', permanent: false, hint: null },
  DnsError: { kind: 'bounce', permanent: false, hint: 'networkerror' },
  Blocked: { kind: 'bounce', permanent: false, hint: 'blocked' },
  DMARCPolicy: { kind: 'bounce', permanent: false, hint: 'policyviolation' },
  Transient: { kind: 'delay', permanent: false, hint: null },
  SpamComplaint: { kind: 'complaint', permanent: false, hint: null },
};

export async function parsePostmarkEvents(req: InboundRequest, _ctx: ProviderEventContext): Promise<ProviderEventResult> {
  const parsed = body.safeParse(parseJsonBody(req));
  if (!parsed.success) throw zodToValidationError(parsed.error);
  const e = parsed.data;
  const carteroId = carteroIdFrom(e.Metadata?.[CORRELATION_KEY]);
  const base = { provider: 'postmark' as const, carteroId, rfcMessageId: null, status: null, permanent: null, reasonHint: null };
  const id = `${e.RecordType}:${e.ID ?? e.MessageID ?? 'none'}`;
  if (e.RecordType === 'Delivery' && e.Recipient) {
    return {
      kind: 'events',
      batch: {
        events: [{ ...base, eventId: `${id}:${e.Recipient}`, kind: 'delivered', recipient: e.Recipient, diagnostic: clip(e.Details) }],
        ignored: 0,
      },
    };
  }
  if (e.RecordType === 'SpamComplaint' && e.Email) {
    return {
      kind: 'events',
      batch: { events: [{ ...base, eventId: id, kind: 'complaint', recipient: e.Email, diagnostic: null }], ignored: 0 },
    };
  }
  const t = BOUNCE_TYPES[e.Type ?? ''];
  if (e.RecordType !== 'Bounce' || !t || !e.Email) return { kind: 'events', batch: { events: [], ignored: 1 } };
  const diagnostic = clip(e.Details) ?? clip(e.Description);
  return {
    kind: 'events',
    batch: {
      events: [
        {
          ...base,
          eventId: id,
          kind: t.kind,
          recipient: e.Email,
          status: statusIn(diagnostic ?? ''),
          diagnostic,
          permanent: t.permanent,
          reasonHint: t.hint,
        },
      ],
      ignored: 0,
    },
  };
}
