import { MongoBulkWriteError, type Collection, type Db } from 'mongodb';
import { isDuplicateKey } from './upsert';
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

/**
 * "Not yet handed to the delivery workflow": one small document per event, written before the
 * event and deleted once Temporal has the event (docs/webhooks.md). Normally near-empty, so the
 * sweeper's scan of it stays cheap even on FerretDB, where only `_id` equality uses an index.
 */
export interface UndispatchedDoc {
  _id: string;
  tenantId: string;
  createdAt: Date;
  /** Orders this process's appends made in the same millisecond (a case's events often are). */
  seq: number;
}

let appendSeq = 0;

/** Told after every append (installed at bootstrap: hands the tenant's events to Temporal). */
export type AppendListener = (tenantId: string) => void;
/** Whether a tenant's new events need handing over at all (no webhook: they are only recorded). */
export type HandoverFilter = (tenantId: string) => Promise<boolean>;

export class EventRepository {
  private readonly col: Collection<EventDoc>;
  private readonly undispatched: Collection<UndispatchedDoc>;
  private listener: AppendListener | null = null;
  private handoverFilter: HandoverFilter | null = null;

  constructor(db: Db) {
    this.col = db.collection<EventDoc>('events');
    this.undispatched = db.collection<UndispatchedDoc>('events_undispatched');
  }

  static async ensureIndexes(db: Db): Promise<void> {
    await db.collection('events').createIndex({ tenantId: 1, createdAt: 1 }, { name: 'tenant_created' });
  }

  /** One listener per process; producers keep calling `append` and never see it. */
  setAppendListener(listener: AppendListener | null): void {
    this.listener = listener;
  }

  /** Installed at bootstrap next to the listener; without one every event is handed over. */
  setHandoverFilter(filter: HandoverFilter | null): void {
    this.handoverFilter = filter;
  }

  private async needsHandover(tenantId: string): Promise<boolean> {
    return this.handoverFilter ? this.handoverFilter(tenantId) : true;
  }

  /**
   * Appends an event; returns whether it was new (false when that id was appended before).
   * `knownWebhook`: the caller has just read the tenant and knows it has a webhook.
   */
  async append(event: EventInput, now = new Date(), knownWebhook?: true): Promise<boolean> {
    const handover = knownWebhook ?? (await this.needsHandover(event.tenantId));
    // The marker first: a crash between the two writes leaves a marker without an event (the
    // sweeper drops it), never an event nobody will hand over.
    if (handover)
      await this.insertIgnoringDuplicate(this.undispatched, { _id: event.id, tenantId: event.tenantId, createdAt: now, seq: ++appendSeq });
    const isNew = await this.insertIgnoringDuplicate(this.col, eventDoc(event, now));
    // A repeat append (a retried producer) still wakes the dispatcher: its first run may have died
    // before the handover; the delivery workflow ignores what it already has.
    if (handover) this.listener?.(event.tenantId);
    return isNew;
  }

  /** Appends several events in two round trips (markers, then events), in order; ids appended before are skipped. */
  async appendMany(events: EventInput[], now = new Date()): Promise<void> {
    if (events.length === 0) return;
    const tenants = [...new Set(events.map((e) => e.tenantId))];
    const wanted = new Set(
      (await Promise.all(tenants.map(async (t) => ((await this.needsHandover(t)) ? t : null)))).filter((t) => t !== null),
    );
    const markers = events
      .filter((e) => wanted.has(e.tenantId))
      .map((e) => ({ _id: e.id, tenantId: e.tenantId, createdAt: now, seq: ++appendSeq }));
    if (markers.length > 0) await this.insertManyIgnoringDuplicates(this.undispatched, markers);
    await this.insertManyIgnoringDuplicates(
      this.col,
      events.map((e) => eventDoc(e, now)),
    );
    for (const t of wanted) this.listener?.(t);
  }

  private async insertManyIgnoringDuplicates<T extends { _id: string }>(
    col: Collection<T>,
    docs: Parameters<Collection<T>['insertMany']>[0],
  ): Promise<void> {
    try {
      await col.insertMany(docs, { ordered: false });
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

  /** Events of a tenant not yet handed over, oldest first. */
  async undispatchedForTenant(tenantId: string, limit = 500): Promise<UndispatchedDoc[]> {
    return this.undispatched.find({ tenantId }).sort({ createdAt: 1, seq: 1 }).limit(limit).toArray();
  }

  /** Every tenant with events not handed over since before `olderThan` (the sweeper). */
  async tenantsWithUndispatched(olderThan: Date, limit = 1000): Promise<string[]> {
    const docs = await this.undispatched
      .find({ createdAt: { $lt: olderThan } })
      .project<{ tenantId: string }>({ tenantId: 1 })
      .limit(limit)
      .toArray();
    return [...new Set(docs.map((d) => d.tenantId))];
  }

  async markDispatched(ids: string[]): Promise<void> {
    // One `_id` delete each (the only filter FerretDB serves from an index), in parallel.
    await Promise.all(ids.map((_id) => this.undispatched.deleteOne({ _id })));
  }

  private async insertIgnoringDuplicate<T extends { _id: string }>(col: Collection<T>, doc: T): Promise<boolean> {
    try {
      await col.insertOne(doc as Parameters<Collection<T>['insertOne']>[0]);
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }
}

function eventDoc(e: EventInput, now: Date): EventDoc {
  return {
    _id: e.id,
    tenantId: e.tenantId,
    type: e.type,
    caseId: e.caseId ?? null,
    messageId: e.messageId ?? null,
    data: e.data,
    createdAt: now,
  };
}
