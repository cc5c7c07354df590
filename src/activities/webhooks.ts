import { decideAfterWebhookAttempt, webhookPayload, type WebhookPolicy } from '../domain/webhooks';
import type { AllowableClass } from '../domain/network';
import { NotFoundError } from '../errors';
import { webhookHeaders } from '../security/webhook-signature';
import type { EventRepository } from '../store/events';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import type { WebhookDeliveryRepository } from '../store/webhook-deliveries';
import type { WebhookDispatcher } from '../temporal/webhook-dispatch';
import { postWebhook } from './webhook-http';

export interface WebhookActivityDeps {
  events: EventRepository;
  tenants: TenantRepository;
  webhookDeliveries: WebhookDeliveryRepository;
  webhookDispatcher: WebhookDispatcher;
  webhookPolicy: WebhookPolicy;
  webhookAllowPrivateNetworks: readonly AllowableClass[];
  webhookSweepIntervalMs: number;
}

/** What the delivery workflow does next with the head of a lane. */
export type WebhookStep = { kind: 'done' } | { kind: 'retry'; delayMs: number };

export function createWebhookActivities(deps: WebhookActivityDeps) {
  const { webhookDeliveries: deliveries } = deps;
  return {
    /**
     * One attempt to deliver an event, recorded in the delivery log before returning. The backoff
     * and give-up decision is made here (domain/webhooks.ts) from the log, so a retried activity
     * or a continued-as-new workflow never loses count.
     */
    async attemptWebhook(input: { tenantId: string; eventId: string }): Promise<WebhookStep> {
      const event = await deps.events.get(input.eventId);
      if (!event) return { kind: 'done' };
      const delivery = await deliveries.open(event);
      if (delivery.state !== 'pending') return { kind: 'done' };
      let tenant: TenantDoc;
      try {
        tenant = await deps.tenants.get(input.tenantId);
      } catch (err) {
        if (!(err instanceof NotFoundError)) throw err;
        await deliveries.skip(delivery._id, 'the tenant was deleted');
        return { kind: 'done' };
      }
      const url = tenant.settings.webhook?.url;
      if (!url) {
        await deliveries.skip(delivery._id, 'no webhook URL is configured');
        return { kind: 'done' };
      }
      const body = JSON.stringify(webhookPayload(event));
      const at = new Date();
      const headers = webhookHeaders(deps.tenants.openWebhookSecret(tenant), delivery._id, Math.floor(at.getTime() / 1000), body);
      const res = await postWebhook({
        url,
        headers: { ...headers, 'user-agent': 'Cartero-Webhooks/1' },
        body,
        timeoutMs: deps.webhookPolicy.timeoutMs,
        allowPrivateNetworks: deps.webhookAllowPrivateNetworks,
      });
      const roundStartedAt = delivery.roundStartedAt ?? at;
      const decision = decideAfterWebhookAttempt(
        res,
        { failuresSoFar: delivery.roundFailures, firstAttemptAt: roundStartedAt.getTime(), now: Date.now() },
        deps.webhookPolicy,
        Math.random,
      );
      await deliveries.recordAttempt(
        delivery._id,
        {
          n: delivery.attemptCount + 1,
          at,
          round: delivery.redeliveries,
          url,
          status: res.status,
          error: res.error,
          durationMs: res.durationMs,
        },
        {
          state: decision.kind === 'delivered' ? 'delivered' : decision.kind === 'failed' ? 'failed' : 'pending',
          reason: decision.kind === 'delivered' ? null : decision.reason,
          failed: decision.kind !== 'delivered',
          roundStartedAt,
        },
      );
      if (decision.kind === 'failed' && decision.disable) await deps.tenants.disableWebhook(tenant._id, url);
      return decision.kind === 'retry' ? { kind: 'retry', delayMs: decision.delayMs } : { kind: 'done' };
    },

    /** The sweeper's pass; returns when to sweep next (the worker's setting, so changes apply). */
    async sweepUndispatchedEvents(): Promise<{ handedOver: number; nextInMs: number }> {
      const handedOver = await deps.webhookDispatcher.sweep();
      return { handedOver, nextInMs: deps.webhookSweepIntervalMs };
    },
  };
}
