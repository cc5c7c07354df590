import { type Collection, type Db } from 'mongodb';
import { isDuplicateKey } from './upsert';

/**
 * A tenant's suppression list: addresses never to send to again (hard bounces, complaints,
 * unsubscribes, manual). `_id` is `<tenant>:<lowercased address>`, so adding is idempotent and a
 * lookup is by primary key.
 */
export interface SuppressionDoc {
  _id: string;
  tenantId: string;
  address: string;
  reason: string;
  source: 'bounce' | 'complaint' | 'unsubscribe' | 'manual' | 'smtp';
  detail: string | null;
  createdAt: Date;
}

const keyOf = (tenantId: string, address: string) => `${tenantId}:${address.toLowerCase()}`;

export class SuppressionRepository {
  private readonly col: Collection<SuppressionDoc>;

  constructor(db: Db) {
    this.col = db.collection<SuppressionDoc>('suppressions');
  }

  static async ensureIndexes(db: Db): Promise<void> {
    await db.collection('suppressions').createIndex({ tenantId: 1, createdAt: -1 }, { name: 'tenant_created' });
  }

  /** The subset of `addresses` that is suppressed for the tenant (lowercased). */
  async suppressedAmong(tenantId: string, addresses: string[]): Promise<Map<string, SuppressionDoc>> {
    // One `_id` read per address rather than `$in`: `_id` equality is the only filter FerretDB's
    // SQLite backend serves from an index, and messages have few recipients.
    const docs = await Promise.all(addresses.map((a) => this.col.findOne({ _id: keyOf(tenantId, a) })));
    return new Map(docs.filter((d): d is SuppressionDoc => d !== null).map((d) => [d.address.toLowerCase(), d]));
  }

  /** Adds an address; an existing entry keeps its first reason. Returns whether it was new. */
  async add(tenantId: string, address: string, source: SuppressionDoc['source'], reason: string, detail: string | null): Promise<boolean> {
    try {
      await this.col.insertOne({
        _id: keyOf(tenantId, address),
        tenantId,
        address: address.toLowerCase(),
        source,
        reason,
        detail,
        createdAt: new Date(),
      });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  async get(tenantId: string, address: string): Promise<SuppressionDoc | null> {
    return this.col.findOne({ _id: keyOf(tenantId, address) });
  }

  /** Removes an address; returns whether it was there. */
  async remove(tenantId: string, address: string): Promise<boolean> {
    const r = await this.col.deleteOne({ _id: keyOf(tenantId, address) });
    return r.deletedCount === 1;
  }

  /** A tenant's entries, newest first, keyset-paginated on (createdAt, _id). Not a hot path. */
  async list(tenantId: string, q: { limit: number; before?: { createdAt: Date; id: string } }): Promise<SuppressionDoc[]> {
    const filter: Record<string, unknown> = { tenantId };
    if (q.before) filter.$or = [{ createdAt: { $lt: q.before.createdAt } }, { createdAt: q.before.createdAt, _id: { $lt: q.before.id } }];
    return this.col.find(filter).sort({ createdAt: -1, _id: -1 }).limit(q.limit).toArray();
  }
}
