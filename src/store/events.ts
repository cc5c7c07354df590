import { type Collection, type Db } from 'mongodb';
import { CoalescedInserts } from './coalesce';
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

/**
 * An event waiting for delivery to the tenant's webhook (`webhook_queue`, `_id` = event id): the
 * delivery workflow's queue lives here, not in the workflow (docs/webhooks.md). Written at handover,
 * deleted by the delivery activity once the event is delivered, failed for good or skipped.
 */
export interface QueuedEventDoc {
  _id: string;
  tenantId: string;
  /** Ordering lane (domain/webhooks.ts laneOf). */
  lane: string;
  /** The order within the lane: the event's time (a redelivery: when it was asked for). */
  at: Date;
  seq: number;
  /** The delivery round it is for (0, then one more per manual redelivery). */
  round: number;
  queuedAt: Date;
}

/** What a handover queues: the event, its lane and its place in the lane. */
export interface QueueEntry {
  id: string;
  tenantId: string;
  lane: string;
  at: number;
  seq?: number;
  round?: number;
}

let appendSeq = 0;

/** Told after every append (installed at bootstrap: hands the tenant's events to Temporal). */
export type AppendListener = (tenantId: string) => void;
/** Whether a tenant's new events need handing over at all (no webhook: they are only recorded). */
export type HandoverFilter = (tenantId: string) => Promise<boolean>;

/** Where a producer appends its events: the repository itself, or a batch of it. */
export type EventSink = Pick<EventRepository, 'append'>;

export interface EventBatch extends EventSink {
  flush(): Promise<void>;
}

export class EventRepository {
  private readonly col: Collection<EventDoc>;
  private readonly undispatched: Collection<UndispatchedDoc>;
  private readonly queue: Collection<QueuedEventDoc>;
  private listener: AppendListener | null = null;
  private handoverFilter: HandoverFilter | null = null;
  /** Appends, coalesced under load (src/store/coalesce.ts). */
  private readonly eventInserts: CoalescedInserts<EventDoc>;
  private readonly markerInserts: CoalescedInserts<UndispatchedDoc>;
  /** Not coalesced (the webhook queue is not on the send path): one insert per call. */
  private readonly queueInserts: CoalescedInserts<QueuedEventDoc>;

  constructor(db: Db, coalesceWrites = false) {
    this.col = db.collection<EventDoc>('events');
    this.undispatched = db.collection<UndispatchedDoc>('events_undispatched');
    this.queue = db.collection<QueuedEventDoc>('webhook_queue');
    this.eventInserts = new CoalescedInserts(this.col, coalesceWrites);
    this.markerInserts = new CoalescedInserts(this.undispatched, coalesceWrites);
    this.queueInserts = new CoalescedInserts(this.queue, false);
  }

  static async ensureIndexes(db: Db): Promise<void> {
    await db.collection('events').createIndex({ tenantId: 1, createdAt: 1 }, { name: 'tenant_created' });
    // MongoDB serves the delivery workflow's two reads from these; FerretDB v1 scans the (small:
    // pending deliveries only) collection in Go either way.
    await db.collection('webhook_queue').createIndex({ tenantId: 1, lane: 1, at: 1, seq: 1, _id: 1 }, { name: 'tenant_lane_order' });
    await db.collection('webhook_queue').createIndex({ tenantId: 1, at: 1, seq: 1, _id: 1 }, { name: 'tenant_order' });
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
    if (handover) await this.markerInserts.insert({ _id: event.id, tenantId: event.tenantId, createdAt: now, seq: ++appendSeq });
    const isNew = (await this.eventInserts.insert(eventDoc(event, now))) === 'inserted';
    // A repeat append (a retried producer) still wakes the dispatcher: its first run may have died
    // before the handover; the delivery workflow ignores what it already has.
    if (handover) this.listener?.(event.tenantId);
    return isNew;
  }

  /**
   * Collects events to append together (appendMany) when `flush()` is called: a producer that
   * announces several outcomes of one step (a message's `message.sent` and its case's
   * `case.updated`) pays one round trip for them. Events not flushed are not appended: the caller
   * must be a step whose retry announces them again (their ids are deterministic).
   */
  batch(): EventBatch {
    const pending: EventInput[] = [];
    return {
      append: async (event: EventInput) => {
        pending.push(event);
        return true;
      },
      flush: async () => {
        await this.appendMany(pending.splice(0));
      },
    };
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
    await this.markerInserts.insertAll(markers);
    await this.eventInserts.insertAll(events.map((e) => eventDoc(e, now)));
    for (const t of wanted) this.listener?.(t);
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

  /**
   * Queues events for delivery. An event queued already keeps its place (a repeated handover);
   * a redelivery (`round` > 0) takes a new place behind what its lane holds.
   */
  async enqueue(entries: QueueEntry[], now = new Date()): Promise<void> {
    const doc = (e: QueueEntry): QueuedEventDoc => ({
      _id: e.id,
      tenantId: e.tenantId,
      lane: e.lane,
      at: new Date(e.at),
      seq: e.seq ?? 0,
      round: e.round ?? 0,
      queuedAt: now,
    });
    const fresh = entries.filter((e) => !e.round);
    // One insert for the new ones; an id queued before is left as it is.
    await this.queueInserts.insertAll(fresh.map(doc));
    for (const e of entries.filter((x) => x.round)) {
      const { _id, ...rest } = doc(e);
      await this.queue.updateOne({ _id }, { $set: rest }, { upsert: true });
    }
  }

  /** The next events of a lane, in order (at most `limit`). */
  async queuedInLane(tenantId: string, lane: string, limit: number): Promise<string[]> {
    const docs = await this.queue
      .find({ tenantId, lane })
      .sort({ at: 1, seq: 1, _id: 1 })
      .limit(limit)
      .project<{ _id: string }>({ _id: 1 })
      .toArray();
    return docs.map((d) => d._id);
  }

  /**
   * Lanes of a tenant with queued events, oldest head first, skipping `busy` ones: at most `want`,
   * looking at no more than `scanLimit` queued events. `complete`: every queued event was looked at.
   */
  async queuedLanes(
    tenantId: string,
    busy: ReadonlySet<string>,
    want: number,
    scanLimit: number,
  ): Promise<{ lanes: string[]; complete: boolean }> {
    const lanes: string[] = [];
    if (want <= 0) return { lanes, complete: false };
    const cursor = this.queue
      .find({ tenantId })
      .sort({ at: 1, seq: 1, _id: 1 })
      .limit(scanLimit + 1)
      .project<{ lane: string }>({ lane: 1 });
    let seen = 0;
    try {
      for await (const d of cursor) {
        if (++seen > scanLimit) return { lanes, complete: false };
        if (busy.has(d.lane) || lanes.includes(d.lane)) continue;
        lanes.push(d.lane);
        if (lanes.length >= want) return { lanes, complete: false };
      }
    } finally {
      await cursor.close();
    }
    return { lanes, complete: true };
  }

  /** Takes an event off the queue once its delivery is over, unless a later round queued it again. */
  async dequeue(id: string, round: number): Promise<void> {
    await this.queue.deleteOne({ _id: id, round: { $lte: round } });
  }

  /** Tenants with events queued since before `olderThan` (the sweeper wakes their workflows). */
  async tenantsWithQueued(olderThan: Date): Promise<string[]> {
    return (await this.queue.distinct('tenantId', { queuedAt: { $lt: olderThan } })).filter((t): t is string => typeof t === 'string');
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
