import type { Collection, Db } from 'mongodb';
import type { Hit, HitClass, HitKind } from '../domain/tracking/classify';

/**
 * Opens and clicks, one document per tracked message (`_id` = message id, the only filter
 * FerretDB serves from an index). Hits are added with `$addToSet`, so writing the same batch twice
 * (a flush retried after an ambiguous store failure, a spool file replayed by two processes)
 * stores each hit once. Counts are computed from the hits when read (domain/tracking/summary.ts),
 * so there are no counters to drift and a rule change applies to old hits too.
 *
 * A message keeps at most MAX_STORED_HITS hits; later ones only bump `overflow` counters by
 * class (a widely forwarded message must not grow one document without bound).
 */
export const MAX_STORED_HITS = 2_000;

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
  hits: StoredHit[];
  /** `overflow.<kind>.<class>`: hits past MAX_STORED_HITS. */
  overflow?: Partial<Record<HitKind, Partial<Record<HitClass, number>>>>;
  updatedAt: Date;
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

export class TrackingRepository {
  readonly col: Collection<TrackingDoc>;

  constructor(db: Db) {
    this.col = db.collection<TrackingDoc>('message_tracking');
  }

  async get(messageId: string): Promise<TrackingDoc | null> {
    return this.col.findOne({ _id: messageId });
  }

  /** Idempotent per hit id. */
  async addHits(messageId: string, tenantId: string, hits: StoredHit[]): Promise<void> {
    if (hits.length === 0) return;
    await this.col.updateOne(
      { _id: messageId },
      { $addToSet: { hits: { $each: hits } }, $set: { tenantId, updatedAt: new Date() } },
      { upsert: true },
    );
  }

  /** Past the storage cap: counted, not stored (at-least-once: a retried batch may count twice). */
  async addOverflow(messageId: string, tenantId: string, counts: Partial<Record<`${HitKind}.${HitClass}`, number>>): Promise<void> {
    const inc = Object.fromEntries(Object.entries(counts).map(([k, n]) => [`overflow.${k}`, n]));
    if (Object.keys(inc).length === 0) return;
    await this.col.updateOne({ _id: messageId }, { $inc: inc, $set: { tenantId, updatedAt: new Date() } }, { upsert: true });
  }
}
