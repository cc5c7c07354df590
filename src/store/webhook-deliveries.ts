import { createHash } from 'node:crypto';
import { type Collection, type Db, type Filter } from 'mongodb';
import { isDuplicateKey } from './upsert';
import type { DeliveryState } from '../domain/webhooks';
import type { EventDoc } from './events';

/**
 * The delivery log: one document per event sent (or skipped) to a tenant's webhook, `_id` = the
 * `webhook-id` header, with every attempt. Written only by the delivery activity and by manual
 * redelivery (which reopens the document); read by `GET /v1/webhooks/deliveries`.
 */
export interface DeliveryAttempt {
  n: number;
  at: Date;
  /** Which round the attempt belongs to: 0 = the original delivery, 1… = manual redeliveries. */
  round: number;
  url: string;
  status: number | null;
  error: string | null;
  durationMs: number;
}

export interface DeliveryDoc {
  _id: string;
  tenantId: string;
  eventId: string;
  eventType: string;
  caseId: string | null;
  messageId: string | null;
  eventCreatedAt: Date;
  state: DeliveryState;
  /** Why it failed or was skipped; the last failure while still retrying. */
  reason: string | null;
  attemptCount: number;
  /** The most recent attempts (at most MAX_KEPT_ATTEMPTS; `attemptCount` has the total). */
  attempts: DeliveryAttempt[];
  /** Failures in the current round (drives the backoff). */
  roundFailures: number;
  roundStartedAt: Date | null;
  redeliveries: number;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

export const MAX_KEPT_ATTEMPTS = 50;

/**
 * `webhook-id` of an event: stable across retries and redeliveries (receivers may dedupe on it),
 * free of `.` (the signed string is `id.timestamp.body`) and of the producer's id format.
 */
export function deliveryIdFor(eventId: string): string {
  return `msg_${createHash('sha256').update(eventId).digest('hex').slice(0, 32)}`;
}

export class WebhookDeliveryRepository {
  readonly col: Collection<DeliveryDoc>;

  constructor(db: Db) {
    this.col = db.collection<DeliveryDoc>('webhook_deliveries');
  }

  static async ensureIndexes(db: Db): Promise<void> {
    await db.collection('webhook_deliveries').createIndex({ tenantId: 1, createdAt: -1, _id: -1 }, { name: 'tenant_created' });
  }

  async get(id: string): Promise<DeliveryDoc | null> {
    return this.col.findOne({ _id: id });
  }

  /** The delivery of an event, created `pending` on first sight. */
  async open(event: EventDoc, now = new Date()): Promise<DeliveryDoc> {
    const doc: DeliveryDoc = {
      _id: deliveryIdFor(event._id),
      tenantId: event.tenantId,
      eventId: event._id,
      eventType: event.type,
      caseId: event.caseId,
      messageId: event.messageId,
      eventCreatedAt: event.createdAt,
      state: 'pending',
      reason: null,
      attemptCount: 0,
      attempts: [],
      roundFailures: 0,
      roundStartedAt: null,
      redeliveries: 0,
      createdAt: now,
      updatedAt: now,
      completedAt: null,
    };
    try {
      await this.col.insertOne(doc);
      return doc;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const existing = await this.get(doc._id);
      if (!existing) throw err;
      return existing;
    }
  }

  /** Records one attempt and the state it led to. */
  async recordAttempt(
    id: string,
    attempt: DeliveryAttempt,
    next: { state: DeliveryState; reason: string | null; failed: boolean; roundStartedAt: Date },
  ): Promise<void> {
    const now = new Date();
    await this.col.updateOne(
      { _id: id },
      {
        $push: { attempts: { $each: [attempt], $slice: -MAX_KEPT_ATTEMPTS } },
        $inc: { attemptCount: 1, roundFailures: next.failed ? 1 : 0 },
        $set: {
          state: next.state,
          reason: next.reason,
          roundStartedAt: next.roundStartedAt,
          updatedAt: now,
          completedAt: next.state === 'pending' ? null : now,
        },
      },
    );
  }

  /** Ends a delivery without an HTTP attempt (no webhook configured, tenant or event gone). */
  async skip(id: string, reason: string): Promise<void> {
    const now = new Date();
    await this.col.updateOne({ _id: id, state: 'pending' }, { $set: { state: 'skipped', reason, updatedAt: now, completedAt: now } });
  }

  /**
   * Reopens a finished delivery for a manual redelivery: a new round with its own backoff and
   * give-up clock. False when it is still pending (it is going to be delivered anyway).
   */
  async reopen(tenantId: string, id: string): Promise<DeliveryDoc | null> {
    return this.col.findOneAndUpdate(
      { _id: id, tenantId, state: { $ne: 'pending' } },
      {
        $set: { state: 'pending', reason: null, roundFailures: 0, roundStartedAt: null, updatedAt: new Date(), completedAt: null },
        $inc: { redeliveries: 1 },
      },
      { returnDocument: 'after' },
    );
  }

  /** A tenant's deliveries, newest first, after the cursor `before`. */
  async list(
    tenantId: string,
    q: { state?: DeliveryState; eventType?: string; limit: number; before?: { createdAt: Date; id: string } },
  ): Promise<DeliveryDoc[]> {
    const filter: Filter<DeliveryDoc> = { tenantId };
    if (q.state) filter.state = q.state;
    if (q.eventType) filter.eventType = q.eventType;
    if (q.before) {
      filter.$or = [{ createdAt: { $lt: q.before.createdAt } }, { createdAt: q.before.createdAt, _id: { $lt: q.before.id } }];
    }
    return this.col.find(filter).sort({ createdAt: -1, _id: -1 }).limit(q.limit).toArray();
  }
}
