import { Router, type Request } from 'express';
import { z } from 'zod';
import { RELAY_EVENT_PROVIDERS, type RelayEventProvider } from '../../domain/provider-events';
import { AuthenticationError, NotFoundError } from '../../errors';
import { caseFeedbackSignaller } from '../../cases/record';
import { BodySlots, withBody } from '../../inbound/body';
import { applyProviderEvent, type ProviderEventOutcome } from '../../inbound/provider-events/apply';
import type { ProviderEventContext, ProviderEventResult } from '../../inbound/provider-events/context';
import { PROVIDER_EVENT_GATES } from '../../inbound/provider-events/gates';
import { parseBrevoEvents } from '../../inbound/provider-events/brevo';
import { parseMailgunEvents } from '../../inbound/provider-events/mailgun';
import { parsePostmarkEvents } from '../../inbound/provider-events/postmark';
import { parseSendgridEvents } from '../../inbound/provider-events/sendgrid';
import { parseSesEvents } from '../../inbound/provider-events/ses';
import type { InboundRequest } from '../../inbound/request';
import type { OpenInboundSettings } from '../../store/inbound';
import { admitProvider, type InboundRouteDeps } from './inbound';

const PARSERS: Record<RelayEventProvider, (req: InboundRequest, ctx: ProviderEventContext) => Promise<ProviderEventResult>> = {
  ses: parseSesEvents,
  sendgrid: parseSendgridEvents,
  brevo: parseBrevoEvents,
  mailgun: parseMailgunEvents,
  postmark: parsePostmarkEvents,
};
const providerSchema = z.enum(RELAY_EVENT_PROVIDERS);
/** SendGrid batches up to a few hundred events (~1 MB); the others post one event (SNS at most 256 KB). */
const EVENT_BODY_LIMIT_BYTES = 2 * 1024 * 1024;

async function admit(
  deps: InboundRouteDeps,
  req: Request,
): Promise<{ provider: RelayEventProvider; tenantId: string; settings: OpenInboundSettings }> {
  const provider = providerSchema.safeParse(req.params.provider);
  if (!provider.success) throw new NotFoundError('inbound key or provider', '(given)');
  return { provider: provider.data, ...(await admitProvider(deps, req, provider.data, PROVIDER_EVENT_GATES[provider.data])) };
}

/**
 * `POST /v1/provider-events/:provider/:inboundKey` (docs/provider-events.md): a relay's delivery,
 * bounce, complaint and delay webhooks for mail Cartero sent through it. Authenticated like the
 * inbound routes (URL key, then the provider's scheme: SNS signature, Mailgun HMAC, SendGrid ECDSA,
 * basic auth or bearer), before the body is read where the scheme allows. Answers 200 once every
 * event is applied (events about messages that are not this tenant's are counted, not acted on, so
 * the relay does not retry them); 401/404/400/413 as the inbound routes; 5xx so the relay retries.
 */
export function providerEventRoutes(deps: InboundRouteDeps): Router {
  const r = Router();
  const slots = new BodySlots(deps.maxConcurrentBodies);
  const feedbackDeps = {
    messages: deps.messages,
    suppressions: deps.suppressions,
    events: deps.events,
    signalCase: caseFeedbackSignaller(deps),
    ...(deps.pause ? { pause: deps.pause } : {}),
  };
  r.post('/v1/provider-events/:provider/:inboundKey', async (req, res) => {
    res.setHeader('Connection', 'close');
    const { provider, tenantId, settings } = await admit(deps, req);
    await withBody(req, res, slots, Math.min(deps.bodyLimitBytes, EVENT_BODY_LIMIT_BYTES), async (body) => {
      const ctx: ProviderEventContext = {
        tenantId,
        settings,
        now: new Date(),
        sns: deps.sns,
        snsConfirm: deps.snsConfirm,
        signatureMaxAgeMs: deps.limits.mailgunMaxAgeMs,
      };
      const result = await PARSERS[provider]({ headers: req.headers, body }, ctx);
      if (result.kind === 'ack') {
        res.json({ ack: result.detail });
        return;
      }
      const { events, ignored } = result.batch;
      if (result.replayToken !== undefined) {
        const ids = events.map((e) => e.eventId);
        const firstUse = await deps.inbound.claimReplayToken(tenantId, `events:${result.replayToken}`, ids);
        if (firstUse !== null && firstUse.join() !== ids.join())
          throw new AuthenticationError('this Mailgun token was already used (replayed request)');
      }
      const applied: ProviderEventOutcome[] = [];
      for (const e of events) applied.push(await applyProviderEvent(feedbackDeps, tenantId, e));
      res.json({ received: events.length, ignored, unmatched: applied.filter((a) => !a.matched).length, applied });
    });
  });
  return r;
}
