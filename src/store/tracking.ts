import type { Collection, Db } from 'mongodb';
import type { Hit, HitClass, HitKind } from '../domain/tracking/classify';

/**
 * Opens and clicks of tracked messages. Every filter is an `_id` (the only one FerretDB serves from
 * an index):
 * - `message_tracking`, `_id` = message id: how many hits were stored, in how many buckets, and
 *   overflow counters;
 * - `message_tracking_hits`, `_id` = `<message id>#<n>`: the hits themselves, HITS_PER_BUCKET per
 *   document, so adding a hit rewrites a small document however busy the message is (FerretDB
 *   rewrites the whole document on every update).
 * Hits are added with `$addToSet` and de-duplicated by id when read, so writing the same batch
 * twice (a retried flush, a spool file replayed by two processes) stores and counts each hit once.
 * Counts are computed from the hits when read (domain/tracking/summary.ts): no counters to drift,
 * and a rule change applies to old hits too. A message keeps at most MAX_STORED_HITS hits; later
 * ones only bump `overflow` counters by class (a widely forwarded message must not grow forever).
 */
export const MAX_STORED_HITS = 2_000;
export const HITS_PER_BUCKET = 100;

export interface StoredHit {
  id: string;
  k: 'o' | 'c';
  r: number | null;
  l: number | null;
  at: Date;
  m: 'GET' | 'HEAD';
  ua: string;
  ip: string;
  p: string | null;
}

export interface TrackingDoc {
  _id: string;
  tenantId: string;
  /** Hits stored so far (at-least-once: places hits in buckets and enforces the cap, never counted). */
  count: number;
  /** Highest bucket number written. */
  buckets: number;
  /** `overflow.<kind>.<class>`: hits past MAX_STORED_HITS. */
  overflow?: Partial<Record<HitKind, Partial<Record<HitClass, number>>>>;
  /** `events.<o|c><recipient|x>`: hits announced as events (the writer caps these; TRACKING_MAX_EVENTS). */
  events?: Record<string, number>;
  updatedAt: Date;
}

interface BucketDoc {
  _id: string;
  hits: StoredHit[];
}

export interface TrackingWrite {
  messageId: string;
  tenantId: string;
  /** New hits by bucket number. */
  buckets: Array<{ n: number; hits: StoredHit[] }>;
  overflow: Partial<Record<`${HitKind}.${HitClass}`, number>>;
  /** Events announced by this write, by `<o|c><recipient|x>`. */
  events?: Record<string, number>;
}

/** The overflow counters in the flat form summaries take (`open.human`…). */
export function overflowCounts(doc: Pick<TrackingDoc, 'overflow'> | null): Partial<Record<`${HitKind}.${HitClass}`, number>> {
  const out: Partial<Record<`${HitKind}.${HitClass}`, number>> = {};
  for (const kind of ['open', 'click'] as const) {
    for (const cls of ['human', 'machine'] as const) {
      const n = doc?.overflow?.[kind]?.[cls];
      if (n) out[`${kind}.${cls}`] = n;
    }
  }
  return out;
}

export const toStoredHit = (h: Hit): StoredHit => ({
  id: h.id,
  k: h.kind === 'open' ? 'o' : 'c',
  r: h.recipient,
  l: h.link,
  at: new Date(h.at),
  m: h.method,
  ua: h.userAgent,
  ip: h.ip,
  p: h.purpose,
});

export const fromStoredHit = (s: StoredHit): Hit => ({
  id: s.id,
  kind: s.k === 'o' ? 'open' : 'click',
  recipient: s.r,
  link: s.l,
  at: s.at.getTime(),
  method: s.m,
  userAgent: s.ua,
  ip: s.ip,
  purpose: s.p,
});

const bucketId = (messageId: string, n: number) => `${messageId}#${n}`;

export class TrackingRepository {
  readonly col: Collection<TrackingDoc>;
  private readonly hitsCol: Collection<BucketDoc>;

  constructor(db: Db) {
    this.col = db.collection<TrackingDoc>('message_tracking');
    this.hitsCol = db.collection<BucketDoc>('message_tracking_hits');
  }

  /** Every stored hit of a message (de-duplicated by id), with its summary document. */
  async load(messageId: string): Promise<{ doc: TrackingDoc | null; hits: StoredHit[] }> {
    const doc = await this.col.findOne({ _id: messageId });
    if (!doc) return { doc, hits: [] };
    const buckets = await Promise.all(
      Array.from({ length: doc.buckets + 1 }, (_, n) => this.hitsCol.findOne({ _id: bucketId(messageId, n) })),
    );
    const seen = new Set<string>();
    const hits = buckets.flatMap((b) => b?.hits ?? []).filter((h) => !seen.has(h.id) && (seen.add(h.id), true));
    return { doc, hits };
  }

  /** The summary document and the hits of the last bucket (what the writer needs to go on). */
  async loadRecent(messageId: string): Promise<{ doc: TrackingDoc | null; hits: StoredHit[] }> {
    const doc = await this.col.findOne({ _id: messageId });
    if (!doc) return { doc, hits: [] };
    const last = await this.hitsCol.findOne({ _id: bucketId(messageId, doc.buckets) });
    return { doc, hits: last?.hits ?? [] };
  }

  /** All messages of a batch: their hits, then their counters. */
  async write(entries: TrackingWrite[]): Promise<void> {
    const now = new Date();
    const hitOps = entries.flatMap((e) =>
      e.buckets
        .filter((b) => b.hits.length > 0)
        .map((b) => ({
          updateOne: { filter: { _id: bucketId(e.messageId, b.n) }, update: { $addToSet: { hits: { $each: b.hits } } }, upsert: true },
        })),
    );
    // One updateOne per document, concurrently, not bulkWrite: FerretDB v1 (SQLite) was seen to
    // stop answering an unordered bulk update on documents it had just updated (bench/tracking).
    await Promise.all(hitOps.map((op) => this.hitsCol.updateOne(op.updateOne.filter, op.updateOne.update, { upsert: true })));
    const docOps = entries
      .map((e) => ({ e, added: e.buckets.reduce((n, b) => n + b.hits.length, 0) }))
      .filter(({ e, added }) => added > 0 || Object.keys(e.overflow).length > 0)
      .map(({ e, added }) => ({
        updateOne: {
          filter: { _id: e.messageId },
          update: {
            $inc: {
              count: added,
              ...Object.fromEntries(Object.entries(e.overflow).map(([k, n]) => [`overflow.${k}`, n])),
              ...Object.fromEntries(Object.entries(e.events ?? {}).map(([k, n]) => [`events.${k}`, n])),
            },
            $max: { buckets: Math.max(0, ...e.buckets.map((b) => b.n)) },
            $set: { tenantId: e.tenantId, updatedAt: now },
          },
          upsert: true,
        },
      }));
    await Promise.all(docOps.map((op) => this.col.updateOne(op.updateOne.filter, op.updateOne.update, { upsert: true })));
  }
}
