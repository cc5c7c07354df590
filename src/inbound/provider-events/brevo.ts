import { z } from 'zod';
import { bracketed, carteroIdFrom, type ProviderEvent } from '../../domain/provider-events';
import { statusIn } from '../../domain/mail/reasons';
import { zodToValidationError } from '../../errors';
import { parseJsonBody, type InboundRequest } from '../request';
import { clip, type ProviderEventContext, type ProviderEventResult } from './context';

/**
 * Brevo's transactional webhook: one JSON event per POST (`event`: delivered, hard_bounce,
 * soft_bounce, blocked, invalid_email, deferred, spam, …), authenticated by basic auth or a bearer
 * (checked before the body by the gate). The message is found by `X-Mailin-custom` (set at send,
 * `cartero_id:<id>`) or `message-id`.
 */
const body = z.looseObject({
  event: z.string().max(64),
  email: z.string().max(998).nullish(),
  id: z.union([z.number(), z.string()]).nullish(),
  'message-id': z.string().max(998).nullish(),
  ts_event: z.number().nullish(),
  ts_epoch: z.number().nullish(),
  reason: z.string().nullish(),
  'X-Mailin-custom': z.string().max(2000).nullish(),
});

const KINDS: Record<string, { kind: ProviderEvent['kind']; permanent: boolean | null; hint: ProviderEvent['reasonHint'] }> = {
  delivered: { kind: 'delivered', permanent: null, hint: null },
  hard_bounce: { kind: 'bounce', permanent: true, hint: 'userunknown' },
  invalid_email: { kind: 'bounce', permanent: true, hint: 'syntaxerror' },
  soft_bounce: { kind: 'bounce', permanent: false, hint: null },
  blocked: { kind: 'bounce', permanent: false, hint: 'blocked' },
  deferred: { kind: 'delay', permanent: false, hint: null },
  spam: { kind: 'complaint', permanent: null, hint: null },
  complaint: { kind: 'complaint', permanent: null, hint: null },
};

export async function parseBrevoEvents(req: InboundRequest, _ctx: ProviderEventContext): Promise<ProviderEventResult> {
  const parsed = body.safeParse(parseJsonBody(req));
  if (!parsed.success) throw zodToValidationError(parsed.error);
  const e = parsed.data;
  const k = KINDS[e.event];
  if (!k || !e.email) return { kind: 'events', batch: { events: [], ignored: 1 } };
  const diagnostic = clip(e.reason);
  const event: ProviderEvent = {
    provider: 'brevo',
    eventId: `${e['message-id'] ?? 'none'}:${e.event}:${e.email}:${e.ts_event ?? e.ts_epoch ?? e.id ?? ''}`,
    kind: k.kind,
    recipient: e.email,
    carteroId: carteroIdFrom(e['X-Mailin-custom']),
    rfcMessageId: bracketed(e['message-id']),
    status: statusIn(diagnostic ?? ''),
    diagnostic,
    permanent: k.permanent,
    reasonHint: k.hint,
  };
  return { kind: 'events', batch: { events: [event], ignored: 0 } };
}
