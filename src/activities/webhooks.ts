import { decideAfterWebhookAttempt, webhookPayload, type QueuedEvent, type WebhookPolicy } from '../domain/webhooks';
import type { AllowableClass } from '../domain/network';
import { NotFoundError } from '../errors';
import { webhookHeaders } from '../security/webhook-signature';
import type { EventDoc, EventRepository } from '../store/events';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import type { DeliveryDoc, WebhookDeliveryRepository } from '../store/webhook-deliveries';
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

/** Queued events looked at, at most, when looking for lanes to start (the rest wait their turn). */
const LANE_SCAN_LIMIT = 2_000;

export function createWebhookActivities(deps: WebhookActivityDeps) {
  const { webhookDeliveries: deliveries } = deps;
  /** One HTTP attempt for a pending delivery, recorded in the log; what the lane does next. */
  async function attempt(tenantId: string, event: EventDoc, delivery: DeliveryDoc): Promise<WebhookStep> {
    if (delivery.state !== 'pending') return { kind: 'done' };
    let tenant: TenantDoc;
    try {
      tenant = await deps.tenants.get(tenantId);
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
  }

  return {
    /**
     * One attempt to deliver an event, recorded in the delivery log before returning. The backoff
     * and give-up decision is made here (domain/webhooks.ts) from the log, so a retried activity
     * or a continued-as-new workflow never loses count.
     */
    async attemptWebhook(input: { tenantId: string; eventId: string }): Promise<WebhookStep> {
      const event = await deps.events.get(input.eventId);
      if (!event) {
        await deps.events.dequeue(input.eventId, Number.MAX_SAFE_INTEGER);
        return { kind: 'done' };
      }
      const delivery = await deliveries.open(event);
      const step = await attempt(input.tenantId, event, delivery);
      // Off the queue once over; a redelivery asked for meanwhile queued a later round, which stays.
      if (step.kind === 'done') await deps.events.dequeue(event._id, delivery.redeliveries);
      return step;
    },

    /**
     * The delivery workflow's reads of its queue: the next events (at most `perLane`) of the lanes
     * it works on whose window is used up (`refill`), and of up to `newLanes` more lanes, oldest
     * head first, other than the `busy` ones. A lane with nothing left comes back with no ids.
     * `complete`: every queued event of the tenant was looked at for new lanes.
     */
    async nextWebhookEvents(input: {
      tenantId: string;
      refill: string[];
      busy: string[];
      newLanes: number;
      perLane: number;
    }): Promise<{ lanes: Array<{ lane: string; ids: string[] }>; complete: boolean }> {
      const busy = new Set([...input.busy, ...input.refill]);
      const found = await deps.events.queuedLanes(input.tenantId, busy, input.newLanes, LANE_SCAN_LIMIT);
      const lanes = await Promise.all(
        [...input.refill, ...found.lanes].map(async (lane) => ({
          lane,
          ids: await deps.events.queuedInLane(input.tenantId, lane, input.perLane),
        })),
      );
      return { lanes, complete: found.complete };
    },

    /** Queues ids handed over the old way (a signal carrying them, a run continued with its queue). */
    async enqueueWebhookEvents(input: { tenantId: string; events: QueuedEvent[] }): Promise<void> {
      await deps.events.enqueue(input.events.map((e) => ({ id: e.id, tenantId: input.tenantId, lane: e.lane, at: e.at })));
    },

    /** The sweeper's pass; returns when to sweep next (the worker's setting, so changes apply). */
    async sweepUndispatchedEvents(): Promise<{ handedOver: number; nextInMs: number }> {
      const handedOver = await deps.webhookDispatcher.sweep();
      await deps.webhookDispatcher.wakeQueued();
      return { handedOver, nextInMs: deps.webhookSweepIntervalMs };
    },
  };
}
