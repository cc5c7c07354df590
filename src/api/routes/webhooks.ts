import { randomBytes } from 'node:crypto';
import { Router, type Request } from 'express';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { DELIVERY_STATES, laneOf } from '../../domain/webhooks';
import { EVENT_TYPES } from '../../domain/events';
import { ConflictError, DependencyUnavailableError, NotFoundError, zodToValidationError } from '../../errors';
import type { EventRepository } from '../../store/events';
import type { TenantRepository } from '../../store/tenants';
import { deliveryIdFor, type DeliveryDoc, type WebhookDeliveryRepository } from '../../store/webhook-deliveries';
import { wakeWebhookDelivery } from '../../temporal/handoffs/webhook-delivery';
import { principalOf } from '../auth';
import { decodeCursor, nextCursor } from '../pagination';
import { tenantFor } from '../tenant-scope';
import { parseBody, parseParam } from '../validate';
import { deliveryIdSchema, tenantQuerySchema } from '../params';

/** The delivery log, manual redelivery and a test event (docs/webhooks.md). */
export interface WebhookRouteDeps {
  tenants: TenantRepository;
  events: EventRepository;
  deliveries: WebhookDeliveryRepository;
  temporal: Client;
  taskQueue: string;
}

export function deliveryView(d: DeliveryDoc) {
  return {
    id: d._id,
    eventId: d.eventId,
    eventType: d.eventType,
    caseId: d.caseId,
    messageId: d.messageId,
    state: d.state,
    reason: d.reason,
    attemptCount: d.attemptCount,
    redeliveries: d.redeliveries,
    attempts: d.attempts.map((a) => ({
      n: a.n,
      at: a.at.toISOString(),
      round: a.round,
      url: a.url,
      status: a.status,
      error: a.error,
      durationMs: a.durationMs,
    })),
    eventCreatedAt: d.eventCreatedAt.toISOString(),
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
    completedAt: d.completedAt?.toISOString() ?? null,
  };
}

const listQuerySchema = z.strictObject({
  tenantId: tenantQuerySchema,
  state: z.enum(DELIVERY_STATES).optional(),
  eventType: z.enum(EVENT_TYPES).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: z.string().max(200).optional(),
});
const testBodySchema = z.strictObject({ tenantId: tenantQuerySchema });

export function webhookRoutes(deps: WebhookRouteDeps): Router {
  const r = Router();

  const scope = async (req: Request, named: string | undefined): Promise<string> => (await tenantFor(deps.tenants, req, named))._id;

  const visibleDelivery = async (req: Request): Promise<DeliveryDoc> => {
    const id = parseParam(req.params.id, 'id', deliveryIdSchema);
    const d = await deps.deliveries.get(id);
    const p = principalOf(req);
    if (!d || (p.kind === 'tenant' && d.tenantId !== p.tenantId)) throw new NotFoundError('delivery', id);
    return d;
  };

  r.get('/v1/webhooks/deliveries', async (req, res) => {
    const q = listQuerySchema.safeParse(req.query);
    if (!q.success) throw zodToValidationError(q.error);
    const tenantId = await scope(req, q.data.tenantId);
    const before = decodeCursor(q.data.cursor);
    const docs = await deps.deliveries.list(tenantId, {
      ...(q.data.state ? { state: q.data.state } : {}),
      ...(q.data.eventType ? { eventType: q.data.eventType } : {}),
      limit: q.data.limit,
      ...(before ? { before } : {}),
    });
    res.json({ items: docs.map(deliveryView), nextCursor: nextCursor(docs, q.data.limit) });
  });

  r.get('/v1/webhooks/deliveries/:id', async (req, res) => {
    res.json(deliveryView(await visibleDelivery(req)));
  });

  r.post('/v1/webhooks/deliveries/:id/redeliver', async (req, res) => {
    const d = await visibleDelivery(req);
    const event = await deps.events.get(d.eventId);
    if (!event) throw new NotFoundError('event', d.eventId);
    const tenant = await deps.tenants.get(d.tenantId);
    if (!tenant.settings.webhook) throw new ConflictError('the tenant has no webhook URL; set one first');
    const reopened = await deps.deliveries.reopen(d.tenantId, d._id);
    if (!reopened) throw new ConflictError(`delivery ${d._id} is still pending; it is being delivered`);
    // Behind what its lane holds: queued at the time of the request, for this new round.
    await deps.events.enqueue([{ id: event._id, tenantId: d.tenantId, lane: laneOf(event), at: Date.now(), round: reopened.redeliveries }]);
    try {
      await wakeWebhookDelivery(deps.temporal, deps.taskQueue, d.tenantId);
    } catch (err) {
      throw new DependencyUnavailableError('temporal', 'cannot hand the redelivery to Temporal; retry', err);
    }
    res.status(202).json(deliveryView(reopened));
  });

  r.post('/v1/webhooks/test', async (req, res) => {
    // An empty POST is fine (a tenant key needs nothing else); a body must be JSON.
    const hasBody = req.headers['content-type'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
    const body = hasBody ? parseBody(req, testBodySchema) : {};
    const tenant = await tenantFor(deps.tenants, req, body.tenantId);
    const tenantId = tenant._id;
    if (!tenant.settings.webhook) throw new ConflictError('the tenant has no webhook URL; set one with PATCH /v1/tenants/:id');
    const eventId = `webhook.test:${tenantId}:${randomBytes(9).toString('base64url')}`;
    // Handed over whatever a cache says: the tenant read just now has a webhook.
    await deps.events.append(
      { id: eventId, tenantId, type: 'webhook.test', data: { message: 'A test event from Cartero', url: tenant.settings.webhook.url } },
      new Date(),
      true,
    );
    res.status(202).json({ eventId, deliveryId: deliveryIdFor(eventId) });
  });

  return r;
}
