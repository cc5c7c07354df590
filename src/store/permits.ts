import { randomUUID } from 'node:crypto';
import { SharedReads } from './tenant-cache';
import { MongoBulkWriteError, type Collection, type Db } from 'mongodb';
import { permitQueueKey, timeKey } from '../domain/rate-limit';
import { isDuplicateKey, upsertRetrying } from './upsert';

/**
 * The per-tenant rate limiter's queue and grant log (src/activities/rate-limiter.ts), so that the
 * limiter workflow carries counters only and a replaced limiter still knows what it granted.
 *
 * Keys carry the order: a request is `<tenant>:<acceptedAt, 15 digits>:<send workflow id>`, so the
 * queue head is the tenant's lowest `_id`s (an `_id` range read in `_id` order); a grant is
 * `<tenant>:<granted at, 15 digits>:<send workflow id>`, so the live log is the range after a
 * cutoff and pruning is one range delete. Only single-document writes and plain finds: FerretDB
 * 1.24 serves them as MongoDB does, without transactions or aggregation stages. FerretDB's SQLite
 * backend serves only `_id` equality from an index: every other read here scans the collection
 * (about 1.5 s per 20,000 waiting requests on the test machine), so the limiter makes one queue
 * read per turn, and the give-up sweep and the count only when due (src/activities/rate-limiter.ts).
 */
export interface PermitRequestDoc {
  _id: string;
  tenantId: string;
  workflowId: string;
  recipients: number;
  acceptedAt: number;
  /** When this wait began (epoch ms): the give-up policy counts from here. */
  waitingSince: number;
  /**
   * Set once when the request is stored: its grant records it, so a tick cut short after granting
   * (grant stored, request not yet removed) tells the sender again instead of granting twice.
   */
  token: string;
}

export interface GrantDoc {
  _id: string;
  tenantId: string;
  workflowId: string;
  /** Epoch ms: the `grantedAt` the sender was told, and what its windows count from. */
  at: number;
  recipients: number;
  token: string;
  /** The request's place and wait, to put it back where it was if the permit expires unused. */
  acceptedAt: number;
  waitingSince: number;
}

const REQUESTS = 'permit_requests';
const GRANTS = 'permit_grants';
const PAUSES = 'sending_pauses';

/**
 * A tenant's sending paused by its provider's quota or rate refusal (docs/bounces.md "Consequences"): `_id` is the
 * tenant id. Nothing is granted or sent for the tenant before `untilMs`.
 */
export interface SendingPauseDoc {
  _id: string;
  untilMs: number;
  kind: 'daily' | 'rate';
  /** The reply that paused it. */
  reply: string;
  at: Date;
}

/** `<tenant>:` up to, not including, `<tenant>;`: a tenant id never holds `:` or `;`. */
const tenantRange = (tenantId: string) => ({ $gte: `${tenantId}:`, $lt: `${tenantId};` });
const requestKey = (tenantId: string, acceptedAt: number, workflowId: string) => `${tenantId}:${permitQueueKey(acceptedAt, workflowId)}`;
const grantKey = (tenantId: string, at: number, workflowId: string) => `${tenantId}:${timeKey(at)}:${workflowId}`;

export interface NewPermitRequest {
  workflowId: string;
  recipients: number;
  acceptedAt: number;
}

export class PermitRepository {
  private readonly requests: Collection<PermitRequestDoc>;
  private readonly grants: Collection<GrantDoc>;
  private readonly pauses: Collection<SendingPauseDoc>;

  /** Per tenant, the pause end read within `pauseCacheMs` (see sendingPausedUntilRecent). */
  private readonly recentPauses = new Map<string, { untilMs: number; at: number }>();
  /** Bumped by every pause of this process: a read that began before one is not remembered. */
  private pauseGen = 0;
  /** Concurrent misses of one tenant's pause share one read. */
  private readonly pauseReads = new SharedReads<number>();

  constructor(
    db: Db,
    /** TENANT_CACHE_MS: how long an attempt may take a tenant's pause from memory (0: never). */
    private readonly pauseCacheMs = 0,
  ) {
    this.pauses = db.collection<SendingPauseDoc>(PAUSES);
    this.requests = db.collection<PermitRequestDoc>(REQUESTS);
    this.grants = db.collection<GrantDoc>(GRANTS);
  }

  static async ensureIndexes(db: Db): Promise<void> {
    // The give-up sweep and the next give-up time (the queue head and the grant log are `_id` ranges).
    await db.collection(REQUESTS).createIndex({ tenantId: 1, waitingSince: 1 }, { name: 'tenant_waiting' });
  }

  /**
   * Queues a request; asking again (same send workflow, same acceptance time) keeps the first
   * one's place and wait. Returns whether it was new.
   */
  async enqueue(tenantId: string, r: NewPermitRequest, now: number, waitingSince = now): Promise<boolean> {
    const res = await upsertRetrying(() =>
      this.requests.updateOne(
        { _id: requestKey(tenantId, r.acceptedAt, r.workflowId) },
        {
          $setOnInsert: {
            tenantId,
            workflowId: r.workflowId,
            recipients: r.recipients,
            acceptedAt: r.acceptedAt,
            waitingSince: Math.min(waitingSince, now),
            token: randomUUID(),
          },
        },
        { upsert: true },
      ),
    );
    return res.upsertedCount === 1;
  }

  /** Up to `limit` of the tenant's waiting requests in queue order, after the key `after` (exclusive). */
  async head(tenantId: string, after: string | null, limit: number): Promise<PermitRequestDoc[]> {
    const range = tenantRange(tenantId);
    const filter = after === null ? range : { $gt: after, $lt: range.$lt };
    return this.requests.find({ _id: filter }).sort({ _id: 1 }).limit(limit).toArray();
  }

  /** The tenant's longest waits, longest first (the give-up policy's sweep). */
  async longestWaiting(tenantId: string, limit: number): Promise<PermitRequestDoc[]> {
    return this.requests.find({ tenantId }).sort({ waitingSince: 1, _id: 1 }).limit(limit).toArray();
  }

  async countWaiting(tenantId: string): Promise<number> {
    return this.requests.countDocuments({ _id: tenantRange(tenantId) });
  }

  /** One `_id` delete each (the filter FerretDB serves from an index), some at a time. */
  async removeRequests(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 50) {
      await Promise.all(ids.slice(i, i + 50).map((_id) => this.requests.deleteOne({ _id })));
    }
  }

  /** Drops grants no window sees any more (granted at or before `cutoff`). */
  async pruneGrants(tenantId: string, cutoff: number): Promise<number> {
    const r = await this.grants.deleteMany({ _id: { $gte: `${tenantId}:`, $lt: `${tenantId}:${timeKey(cutoff + 1)}` } });
    return r.deletedCount;
  }

  /** The grants some window still sees (granted after `cutoff`), oldest first. */
  async liveGrants(tenantId: string, cutoff: number): Promise<GrantDoc[]> {
    return this.grants
      .find({ _id: { $gte: `${tenantId}:${timeKey(cutoff + 1)}`, $lt: `${tenantId};` } })
      .sort({ _id: 1 })
      .toArray();
  }

  /** Stores grants; one stored already (a tick run again) is kept as it was. */
  async recordGrants(docs: ReadonlyArray<Omit<GrantDoc, '_id'>>): Promise<void> {
    if (docs.length === 0) return;
    try {
      await this.grants.insertMany(
        docs.map((d) => ({ ...d, _id: grantKey(d.tenantId, d.at, d.workflowId) })),
        { ordered: false },
      );
    } catch (err) {
      if (err instanceof MongoBulkWriteError && err.writeErrors && [err.writeErrors].flat().every((e) => e.code === 11000)) return;
      if (isDuplicateKey(err)) return;
      throw err;
    }
  }

  /**
   * A permit that expired unused: its grant leaves the log (the slot is free again) and its request
   * goes back to the queue at its old place, keeping the time its wait began. The request is put
   * back first, so no tick sees the slot free before the request it belongs to is in line again.
   * Returns whether there was such a grant.
   */
  async requeueExpired(tenantId: string, workflowId: string, grantedAt: number, now: number): Promise<boolean> {
    const _id = grantKey(tenantId, grantedAt, workflowId);
    const g = await this.grants.findOne({ _id });
    if (!g) return false;
    await this.enqueue(tenantId, { workflowId, recipients: g.recipients, acceptedAt: g.acceptedAt }, now, g.waitingSince);
    await this.grants.deleteOne({ _id });
    return true;
  }

  /** Pauses the tenant's sending until `untilMs` (a later pause already recorded stays). */
  async pauseSending(tenantId: string, untilMs: number, kind: SendingPauseDoc['kind'], reply: string): Promise<void> {
    await upsertRetrying(() =>
      this.pauses.updateOne({ _id: tenantId }, { $max: { untilMs }, $set: { kind, reply, at: new Date() } }, { upsert: true }),
    );
    // This process's next attempts see its own pause at once.
    this.pauseGen++;
    this.recentPauses.delete(tenantId);
  }

  /**
   * sendingPausedUntil as read at most TENANT_CACHE_MS ago, for the attempt path (one read per
   * message saved). A pause only ever moves later, so a remembered pause is never wrong; a pause
   * recorded by another process (a DSN, a relay event) is seen within that time, and an attempt
   * that slips through meets the same refusal and pauses the tenant again.
   */
  async sendingPausedUntilRecent(tenantId: string, now: number): Promise<number> {
    const r = this.recentPauses.get(tenantId);
    if (r && now - r.at < this.pauseCacheMs) return r.untilMs > now ? r.untilMs : 0;
    const gen = this.pauseGen;
    const untilMs =
      this.pauseCacheMs > 0
        ? await this.pauseReads.run(tenantId, gen, () => this.sendingPausedUntil(tenantId, now))
        : await this.sendingPausedUntil(tenantId, now);
    if (this.pauseCacheMs > 0 && gen === this.pauseGen) {
      if (this.recentPauses.size >= 10_000) this.recentPauses.clear();
      this.recentPauses.set(tenantId, { untilMs, at: now });
    }
    return untilMs;
  }

  /** Until when the tenant's sending is paused (0: not paused, or the pause is over). One `_id` read. */
  async sendingPausedUntil(tenantId: string, now: number): Promise<number> {
    const p = await this.pauses.findOne({ _id: tenantId });
    return p && p.untilMs > now ? p.untilMs : 0;
  }
}
