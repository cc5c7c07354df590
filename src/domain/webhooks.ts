/**
 * Event webhooks to the product: what is sent, in which order, and what happens after each attempt.
 * Pure (no I/O, no Node built-ins): the delivery workflow imports the lane logic, the delivery
 * activity the attempt decision. Signing is in src/security/webhook-signature.ts (it needs crypto).
 */

/** Tunables, from the worker's environment (WEBHOOK_* in src/config/env.ts). */
export interface WebhookPolicy {
  /** First retry delay; doubles per failure (with jitter) up to `maxMs`. */
  initialMs: number;
  maxMs: number;
  /** A delivery still failing this long after its first attempt is recorded `failed` (3 days). */
  giveUpMs: number;
  /** Whole-request deadline (connect + send + response head). */
  timeoutMs: number;
}

export const DEFAULT_WEBHOOK_POLICY: WebhookPolicy = {
  initialMs: 5_000,
  maxMs: 60 * 60_000,
  giveUpMs: 3 * 24 * 60 * 60_000,
  timeoutMs: 15_000,
};

/** How many lanes (cases, messages) of one tenant may have a request in flight at once. */
export const MAX_PARALLEL_LANES = 8;

export const DELIVERY_STATES = ['pending', 'delivered', 'failed', 'skipped'] as const;
export type DeliveryState = (typeof DELIVERY_STATES)[number];

/**
 * The ordering lane of an event: events of one case strictly in order; events without a case in
 * order per message (a `message.deferred` must not overtake the `message.sent` after it); events
 * with neither are independent, each its own lane.
 */
export function laneOf(e: { _id: string; caseId: string | null; messageId: string | null }): string {
  if (e.caseId) return `case:${e.caseId}`;
  if (e.messageId) return `message:${e.messageId}`;
  return `event:${e._id}`;
}

/** What the product receives in the body (Standard Webhooks payload structure). */
export interface WebhookPayload {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

export function webhookPayload(e: { type: string; createdAt: Date; data: Record<string, unknown> }): WebhookPayload {
  return { type: e.type, timestamp: e.createdAt.toISOString(), data: e.data };
}

/** What one HTTP attempt produced: a status, or an error before any status (timeout, refused…). */
export interface WebhookAttemptOutcome {
  status: number | null;
  error: string | null;
  /** From a `Retry-After` header, when the receiver sent one. */
  retryAfterMs?: number | null;
  /** The address was refused by the private-network guard: retrying cannot help. */
  refused?: boolean;
}

export type WebhookDecision =
  { kind: 'delivered' } | { kind: 'retry'; delayMs: number; reason: string } | { kind: 'failed'; reason: string; disable: boolean };

/**
 * After an attempt: 2xx delivered; 410 Gone failed at once and the endpoint disabled (the receiver
 * said it wants no more); a refused address failed at once; anything else (3xx, 4xx, 5xx,
 * timeouts, connection errors) retried with exponential backoff and jitter, honouring
 * `Retry-After`, until `giveUpMs` after the first attempt, then failed.
 * `random` is injected so tests are exact.
 */
export function decideAfterWebhookAttempt(
  outcome: WebhookAttemptOutcome,
  ctx: { failuresSoFar: number; firstAttemptAt: number; now: number },
  policy: WebhookPolicy,
  random: () => number,
): WebhookDecision {
  const { status } = outcome;
  if (status !== null && status >= 200 && status < 300) return { kind: 'delivered' };
  const what = describeOutcome(outcome);
  if (status === 410) return { kind: 'failed', reason: `${what}: the endpoint is gone; webhook disabled`, disable: true };
  if (outcome.refused) return { kind: 'failed', reason: what, disable: false };
  const failures = ctx.failuresSoFar + 1;
  const exp = Math.min(policy.maxMs, policy.initialMs * 2 ** (failures - 1));
  // Half fixed, half jitter: receivers coming back from an outage are not hit by every lane at once.
  let delayMs = Math.round(exp / 2 + random() * (exp / 2));
  if (outcome.retryAfterMs != null) delayMs = Math.max(delayMs, Math.min(outcome.retryAfterMs, policy.maxMs));
  const elapsed = ctx.now - ctx.firstAttemptAt;
  if (elapsed + delayMs > policy.giveUpMs) {
    return { kind: 'failed', reason: `${what}; gave up after ${failures} attempts over ${Math.round(elapsed / 1000)} s`, disable: false };
  }
  return { kind: 'retry', delayMs, reason: what };
}

export function describeOutcome(o: WebhookAttemptOutcome): string {
  if (o.status !== null) return `HTTP ${o.status}`;
  return o.error ?? 'unknown error';
}

/** `Retry-After` as delay-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (!value) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** An event handed to the delivery workflow: ids and ordering only, never the data. */
export interface QueuedEvent {
  id: string;
  lane: string;
  /** Event creation time (epoch ms): the order within a lane. */
  at: number;
}

/**
 * A tenant's lanes: each a FIFO ordered by event time. Deterministic (plain arrays and maps), so
 * the workflow can hold it and carry it across continue-as-new.
 */
export interface LaneState {
  queue: QueuedEvent[];
  /** Epoch ms before which the head must not be attempted (a retry waiting across continue-as-new). */
  notBefore: number;
}

export class Lanes {
  readonly lanes = new Map<string, LaneState>();
  private readonly ids = new Set<string>();

  constructor(initial: Record<string, LaneState> = {}) {
    for (const [k, v] of Object.entries(initial)) {
      this.lanes.set(k, v);
      for (const e of v.queue) this.ids.add(e.id);
    }
  }

  /** Adds an event unless it is already queued; keeps the lane ordered by `at` (ties: arrival). */
  add(e: QueuedEvent): boolean {
    if (this.ids.has(e.id)) return false;
    this.ids.add(e.id);
    let lane = this.lanes.get(e.lane);
    if (!lane) {
      lane = { queue: [], notBefore: 0 };
      this.lanes.set(e.lane, lane);
    }
    // Arrivals are nearly always in order: scan from the tail. The head is never displaced while
    // it may be in flight (index 0 stays put), so a late older event goes right behind it.
    let i = lane.queue.length;
    while (i > 1 && lane.queue[i - 1]!.at > e.at) i--;
    lane.queue.splice(i, 0, e);
    return true;
  }

  head(lane: string): QueuedEvent | undefined {
    return this.lanes.get(lane)?.queue[0];
  }

  /** Removes the head of a lane (delivered, failed or skipped); drops the lane when empty. */
  shift(lane: string): void {
    const l = this.lanes.get(lane);
    const e = l?.queue.shift();
    if (e) this.ids.delete(e.id);
    if (l) l.notBefore = 0;
    if (l && l.queue.length === 0) this.lanes.delete(lane);
  }

  /** Lanes with work that are not running yet, oldest head first (fair across lanes). */
  ready(running: ReadonlySet<string>): string[] {
    return [...this.lanes.entries()]
      .filter(([k, l]) => l.queue.length > 0 && !running.has(k))
      .sort((a, b) => a[1].queue[0]!.at - b[1].queue[0]!.at)
      .map(([k]) => k);
  }

  /** Cheap form of `ready(running).length > 0`, for workflow conditions evaluated often. */
  hasReady(running: ReadonlySet<string>): boolean {
    for (const [k, l] of this.lanes) if (l.queue.length > 0 && !running.has(k)) return true;
    return false;
  }

  get size(): number {
    return this.ids.size;
  }

  snapshot(): Record<string, LaneState> {
    return Object.fromEntries([...this.lanes.entries()].map(([k, v]) => [k, { queue: [...v.queue], notBefore: v.notBefore }]));
  }
}
