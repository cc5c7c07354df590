import { MongoBulkWriteError, MongoServerError, type Collection, type Db } from 'mongodb';
import type { EventInput, EventType } from '../domain/events';

/**
 * The events outbox. `_id` is the producer's deterministic event id, so appends are idempotent
 * (a retried activity appends the same id and gets `false`). Webhook delivery reads from here.
 */
export interface EventDoc {
  _id: string;
  tenantId: string;
  type: EventType;
  caseId: string | null;
  messageId: string | null;
  data: Record<string, unknown>;
  createdAt: Date;
}

export class EventRepository {
  private readonly col: Collection<EventDoc>;

  constructor(db: Db) {
    this.col = db.collection<EventDoc>('events');
  }

  static async ensureIndexes(db: Db): Promise<void> {
    await db.collection('events').createIndex({ tenantId: 1, createdAt: 1 }, { name: 'tenant_created' });
  }

  /** Appends an event; returns whether it was new (false when that id was appended before). */
  async append(event: EventInput, now = new Date()): Promise<boolean> {
    try {
      await this.col.insertOne({
        _id: event.id,
        tenantId: event.tenantId,
        type: event.type,
        caseId: event.caseId ?? null,
        messageId: event.messageId ?? null,
        data: event.data,
        createdAt: now,
      });
      return true;
    } catch (err) {
      if (err instanceof MongoServerError && err.code === 11000) return false;
      throw err;
    }
  }

  /** Appends several events in one round trip, in order; ids appended before are skipped. */
  async appendMany(events: EventInput[], now = new Date()): Promise<void> {
    if (events.length === 0) return;
    const docs: EventDoc[] = events.map((e) => ({ _id: e.id, tenantId: e.tenantId, type: e.type, caseId: e.caseId ?? null, messageId: e.messageId ?? null, data: e.data, createdAt: now }));
    try {
      await this.col.insertMany(docs, { ordered: false });
    } catch (err) {
      const dupOnly = err instanceof MongoBulkWriteError && [err.writeErrors].flat().every((w) => w.code === 11000);
      if (!dupOnly) throw err;
    }
  }

  async get(id: string): Promise<EventDoc | null> {
    return this.col.findOne({ _id: id });
  }

  /** A tenant's events, oldest first (for tests and the delivery log). */
  async listForTenant(tenantId: string, limit = 100): Promise<EventDoc[]> {
    return this.col.find({ tenantId }).sort({ createdAt: 1 }).limit(limit).toArray();
  }
}
