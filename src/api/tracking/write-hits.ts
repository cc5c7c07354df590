import type { Logger } from 'pino';
import { classifyHits, type Cidr, type Hit, type HitClass, type HitKind, type Verdict } from '../../domain/tracking/classify';
import { summarize, type TrackingSummary } from '../../domain/tracking/summary';
import type { EventInput } from '../../domain/events';
import type { HitNotice } from '../../domain/tracking/notice';
import type { EventRepository } from '../../store/events';
import type { MessageDoc, MessageRepository } from '../../store/messages';
import {
  fromStoredHit,
  HITS_PER_BUCKET,
  MAX_STORED_HITS,
  overflowCounts,
  toStoredHit,
  type StoredHit,
  type TrackingDoc,
  type TrackingRepository,
  type TrackingWrite,
} from '../../store/tracking';
import type { PendingHit } from './hit-buffer';

export interface HitWriterDeps {
  messages: MessageRepository;
  tracking: TrackingRepository;
  events: EventRepository;
  scannerNetworks: readonly Cidr[];
  /**
   * Most open events, and apart click events, per message and recipient (TRACKING_MAX_EVENTS); a
   * shared body (no recipient in its tokens) gets this many per envelope recipient. Hits past it
   * are stored and counted but announced to nobody: no event, no webhook, no case signal.
   */
  maxEvents: number;
  logger: Logger;
  /**
   * The case seam (src/cases/record.ts caseHitNotifier): called once per human hit after it is
   * stored. A failure here is logged, never retried through the batch (the hit is already safe).
   */
  onHumanHit?: (notice: HitNotice) => Promise<void>;
}

/** When the message's server first took it: the start of the first accepted SMTP attempt. */
export function deliveredAtOf(msg: Pick<MessageDoc, 'attempts'>): number | null {
  const a = msg.attempts.find((x) => x.outcome === 'accepted');
  return a ? a.at.getTime() : null;
}

/** A message's counts as GET /v1/messages/:id shows them. */
export function trackingSummaryOf(
  msg: MessageDoc,
  { doc, hits: stored }: { doc: TrackingDoc | null; hits: StoredHit[] },
  scannerNetworks: readonly Cidr[] = [],
): TrackingSummary & { enabled: { opens: boolean; clicks: boolean; unsubscribe: boolean } } {
  const hits = stored.map(fromStoredHit);
  const verdicts = classifyHits(hits, { deliveredAt: deliveredAtOf(msg), scannerNetworks });
  const s = summarize(hits, verdicts, msg.tracking?.links ?? [], overflowCounts(doc));
  return {
    enabled: {
      opens: msg.tracking?.opens ?? false,
      clicks: msg.tracking?.clicks ?? false,
      unsubscribe: msg.tracking?.unsubscribe ?? false,
    },
    ...s,
  };
}

/**
 * What the writer remembers about recently hit messages, so a busy message costs one write per
 * batch instead of re-reading its whole hit document: the message (re-read after MSG_TTL_MS, or
 * after 5 s while not yet delivered) and its last RECENT_HITS hits (enough for the sequence rules,
 * whose windows are seconds). With several API processes each sees only its own recent hits, which
 * affects only the verdicts in events; counts are always computed from every stored hit.
 */
const CACHED_MESSAGES = 5_000;
const RECENT_HITS = 200;
const MSG_TTL_MS = 10 * 60_000;
const UNDELIVERED_TTL_MS = 5_000;

interface Recent {
  msg: MessageDoc;
  msgReadAt: number;
  stored: number;
  hits: Hit[];
  ids: Set<string>;
  /** Events announced so far per kind and recipient (`eventKey`), as the store counted them. */
  announced: Map<string, number>;
}

/** `o0`, `c3`: open/click events of recipient 0/3; `ox` for a shared body's hits (no recipient). */
const eventKey = (h: Pick<Hit, 'kind' | 'recipient'>): string => `${h.kind === 'open' ? 'o' : 'c'}${h.recipient ?? 'x'}`;

/**
 * Writes a batch of hits (off the response path, from HitBuffer): per message, classify the
 * message's whole sequence, append `message.opened` / `message.clicked` to the events outbox for
 * every new hit up to `maxEvents` per kind and recipient — human and machine alike, with `machine`
 * and the deciding `rule`, so the product sees what we saw and can filter (docs/tracking.md) —
 * then store the hits and the events' count. Events go first: a batch retried after the events
 * landed finds its hits still new and decides the same again (same ids, nothing doubled); once
 * the hits are stored, a retry finds them stored and announces nothing more. Every step is
 * idempotent (hits by id, events by `message.opened:<hit id>`), so a retried batch is harmless.
 */
export function createHitWriter(deps: HitWriterDeps): (batch: PendingHit[]) => Promise<void> {
  const cache = new Map<string, Recent>();

  const load = async (messageId: string): Promise<Recent | null> => {
    const now = Date.now();
    const cached = cache.get(messageId);
    cache.delete(messageId); // re-inserted after a successful write: a failed batch re-reads the store
    if (cached) {
      const ttl = deliveredAtOf(cached.msg) === null ? UNDELIVERED_TTL_MS : MSG_TTL_MS;
      if (now - cached.msgReadAt > ttl) {
        const msg = await deps.messages.findAny(messageId);
        if (!msg) return null;
        return { ...cached, msg, msgReadAt: now };
      }
      return cached;
    }
    const [msg, recent] = await Promise.all([deps.messages.findAny(messageId), deps.tracking.loadRecent(messageId)]);
    if (!msg) return null;
    const hits = recent.hits.map(fromStoredHit);
    return {
      msg,
      msgReadAt: now,
      stored: recent.doc?.count ?? 0,
      hits,
      ids: new Set(hits.map((h) => h.id)),
      announced: new Map(Object.entries(recent.doc?.events ?? {})),
    };
  };

  /** Reads (or remembers) one message and works out what to write for its part of the batch. */
  const plan = async (messageId: string, batch: PendingHit[]) => {
    const recent = await load(messageId);
    const tenantId = batch[0]!.tenantId;
    // Tokens are signed, so this only happens for a deleted message (or a tenant that was deleted).
    if (!recent || recent.msg.tenantId !== tenantId) {
      deps.logger.debug({ messageId, hits: batch.length }, 'tracking hits for an unknown message dropped');
      return null;
    }
    const msg = recent.msg;
    const fresh = batch.filter((h) => !recent.ids.has(h.id));
    const room = Math.max(0, MAX_STORED_HITS - recent.stored);
    const all: Hit[] = [...recent.hits, ...fresh];
    const ctx = { deliveredAt: deliveredAtOf(msg), scannerNetworks: deps.scannerNetworks };
    const verdicts = classifyHits(all, ctx);
    const verdictOf = new Map(all.map((h, i) => [h.id, verdicts[i]!]));
    // A retried hit no longer in the recent window: stored already ($addToSet), verdict from itself.
    for (const h of batch) if (!verdictOf.has(h.id)) verdictOf.set(h.id, classifyHits([h], ctx)[0]!);
    const overflow: Partial<Record<`${HitKind}.${HitClass}`, number>> = {};
    for (const h of fresh.slice(room)) {
      const key = `${h.kind}.${verdictOf.get(h.id)!.cls}` as const;
      overflow[key] = (overflow[key] ?? 0) + 1;
    }
    const kept = all.slice(-RECENT_HITS);
    const buckets = new Map<number, StoredHit[]>();
    fresh.slice(0, room).forEach((h, i) => {
      const n = Math.floor((recent.stored + i) / HITS_PER_BUCKET);
      const bucket = buckets.get(n);
      if (bucket) bucket.push(toStoredHit(h));
      else buckets.set(n, [toStoredHit(h)]);
    });
    // Only new hits are announced, in arrival order, while their kind and recipient have room.
    const limit = (h: Hit) => (h.recipient === null ? deps.maxEvents * Math.max(1, msg.recipients.length) : deps.maxEvents);
    const announced = new Map(recent.announced);
    const added: Record<string, number> = {};
    const announce = fresh.filter((h) => {
      const key = eventKey(h);
      const n = announced.get(key) ?? 0;
      if (n >= limit(h)) return false;
      announced.set(key, n + 1);
      added[key] = (added[key] ?? 0) + 1;
      return true;
    });
    if (announce.length < fresh.length)
      deps.logger.debug({ messageId, unannounced: fresh.length - announce.length }, 'tracking hits past the event cap: counted only');
    const write: TrackingWrite = { messageId, tenantId, buckets: [...buckets].map(([n, hits]) => ({ n, hits })), overflow, events: added };
    return {
      write,
      // Aggregate-only tenants (consent regimes): counts, but no per-hit events leave the system.
      events: msg.tracking?.aggregateOnly ? [] : announce.map((h) => hitEvent(msg, h, verdictOf.get(h.id)!)),
      human: announce
        .filter((h) => verdictOf.get(h.id)!.cls === 'human')
        .map((h) => ({ message: msg, hit: h, verdict: verdictOf.get(h.id)! })),
      remember: () => {
        cache.set(messageId, {
          msg,
          msgReadAt: recent.msgReadAt,
          stored: recent.stored + fresh.length,
          hits: kept,
          ids: new Set(kept.map((h) => h.id)),
          announced,
        });
        if (cache.size > CACHED_MESSAGES) cache.delete(cache.keys().next().value!);
      },
    };
  };

  // One round trip for every message's hits and one for all events: the store's per-command cost,
  // not the hit count, is what a busy batch pays.
  return async (batch) => {
    const byMessage = new Map<string, PendingHit[]>();
    for (const h of batch) {
      const list = byMessage.get(h.messageId);
      if (list) list.push(h);
      else byMessage.set(h.messageId, [h]);
    }
    const plans = (await Promise.all([...byMessage].map(([id, hits]) => plan(id, hits)))).filter((p) => p !== null);
    await deps.events.appendMany(plans.flatMap((p) => p.events));
    await deps.tracking.write(plans.map((p) => p.write));
    for (const p of plans) p.remember();
    if (deps.onHumanHit) {
      for (const notice of plans.flatMap((p) => p.human)) {
        await deps
          .onHumanHit(notice)
          .catch((err: unknown) =>
            deps.logger.warn({ messageId: notice.message._id, err: (err as Error).message }, 'case notification for a tracking hit failed'),
          );
      }
    }
  };
}

function hitEvent(msg: MessageDoc, h: PendingHit, v: Verdict): EventInput {
  const opened = h.kind === 'open';
  return {
    id: `message.${opened ? 'opened' : 'clicked'}:${h.id}`,
    tenantId: msg.tenantId,
    type: opened ? 'message.opened' : 'message.clicked',
    caseId: msg.caseId,
    messageId: msg._id,
    data: {
      messageId: msg._id,
      rfcMessageId: msg.messageId,
      recipient: h.recipient !== null ? (msg.recipients[h.recipient]?.address ?? null) : null,
      machine: v.cls === 'machine',
      rule: v.rule,
      proxied: v.proxied,
      ...(opened ? {} : { link: h.link, url: h.link !== null ? (msg.tracking?.links[h.link] ?? null) : null }),
      at: new Date(h.at).toISOString(),
      userAgent: h.userAgent,
      ip: h.ip,
    },
  };
}
