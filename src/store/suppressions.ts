import { MongoServerError, type Collection, type Db } from 'mongodb';

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
      await this.col.insertOne({ _id: keyOf(tenantId, address), tenantId, address: address.toLowerCase(), source, reason, detail, createdAt: new Date() });
      return true;
    } catch (err) {
      if (err instanceof MongoServerError && err.code === 11000) return false;
      throw err;
    }
  }
}
