import type { CountBy } from './presets';

/**
 * Rolling-window rate-limit arithmetic for the per-tenant limiter workflow. Pure and deterministic.
 *
 * A grant at time g counts against every window until g + windowMs + marginMs. The margin covers
 * the time between a grant and the message reaching the server (the send activity refuses to use a
 * permit older than the margin), so server-side arrival times also respect every window:
 * with arrivals a_i in [g_i, g_i + m] and g_(i+max) >= g_i + W + m, a_(i+max) >= a_i + W.
 */
export interface WindowRule {
  windowMs: number;
  max: number;
  countBy: CountBy;
}

export interface Grant {
  at: number;
  recipients: number;
}

export interface PermitCost {
  recipients: number;
}

const costIn = (rule: WindowRule, recipients: number) => (rule.countBy === 'messages' ? 1 : recipients);

/**
 * Earliest time >= now at which `cost` fits in every window, given earlier grants (any order).
 * A cost above a window's max is clamped to the max, so an oversized request waits for an empty
 * window instead of blocking the queue for ever.
 */
export function earliestGrantTime(
  grants: readonly Grant[],
  rules: readonly WindowRule[],
  cost: PermitCost,
  now: number,
  marginMs: number,
): number {
  let t = now;
  for (const rule of rules) {
    const span = rule.windowMs + marginMs;
    const need = Math.min(costIn(rule, cost.recipients), rule.max);
    // Grants still inside the window at `now`, newest first.
    const live = grants.filter((g) => g.at + span > now).sort((a, b) => b.at - a.at);
    let used = 0;
    for (const g of live) used += costIn(rule, g.recipients);
    if (used + need <= rule.max) continue;
    // Walk from the oldest: the window frees as each expires; find when enough has left.
    let freed = 0;
    for (let i = live.length - 1; i >= 0; i--) {
      const g = live[i]!;
      freed += costIn(rule, g.recipients);
      if (used - freed + need <= rule.max) {
        t = Math.max(t, g.at + span);
        break;
      }
    }
  }
  return t;
}

/** Drops grants that no window can still see; keeps limiter state small. */
export function pruneGrants(grants: readonly Grant[], rules: readonly WindowRule[], now: number, marginMs: number): Grant[] {
  const longest = Math.max(0, ...rules.map((r) => r.windowMs)) + marginMs;
  return grants.filter((g) => g.at + longest > now);
}

export const MINUTE = 60_000;
export const HOUR = 60 * MINUTE;
export const DAY = 24 * HOUR;

export function rulesFromLimits(limits: {
  perMinute: { max: number; countBy: CountBy } | null;
  perHour: { max: number; countBy: CountBy } | null;
  perDay: { max: number; countBy: CountBy } | null;
}): WindowRule[] {
  const rules: WindowRule[] = [];
  if (limits.perMinute) rules.push({ windowMs: MINUTE, ...limits.perMinute });
  if (limits.perHour) rules.push({ windowMs: HOUR, ...limits.perHour });
  if (limits.perDay) rules.push({ windowMs: DAY, ...limits.perDay });
  return rules;
}

// ---- The store-backed limiter (src/activities/rate-limiter.ts, src/store/permits.ts) ----

/** Epoch milliseconds as a fixed-width string: string order is time order (until the year 33658). */
export const timeKey = (ms: number): string => String(Math.max(0, Math.floor(ms))).padStart(15, '0');

/**
 * A waiting request's place in its tenant's queue: by acceptance time, ties broken by the send
 * workflow's id. A plain string, so the store serves the queue head as an `_id` range in `_id`
 * order (FerretDB and MongoDB alike), and a request asked for again lands on the same key.
 */
export const permitQueueKey = (acceptedAt: number, workflowId: string): string => `${timeKey(acceptedAt)}:${workflowId}`;

/** Grants at or before this instant are seen by no window any more (prunable); later ones count. */
export function grantLogCutoff(rules: readonly WindowRule[], now: number, marginMs: number): number {
  return now - (Math.max(0, ...rules.map((r) => r.windowMs)) + marginMs);
}

export interface QueuedPermit {
  id: string;
  recipients: number;
}

export interface GrantPlan {
  /** The queue's first requests that fit now, in queue order. */
  granted: QueuedPermit[];
  /**
   * When the first request not granted can be (null: every request given was granted). Equal to
   * `now` when `maxGrants` stopped the plan: more fit at once.
   */
  blockedUntil: number | null;
}

/**
 * First-in first-out: grants the queue's head while it fits in every window, and stops at the
 * first that does not (a later, smaller request never overtakes it). Costs are summed once, so a
 * plan over a grant log of n entries and k requests is O(n + k) plus one earliestGrantTime.
 */
export function planGrants(
  log: readonly Grant[],
  rules: readonly WindowRule[],
  queue: readonly QueuedPermit[],
  opts: { now: number; marginMs: number; pausedUntil: number; maxGrants: number },
): GrantPlan {
  const { now, marginMs } = opts;
  if (queue.length === 0) return { granted: [], blockedUntil: null };
  if (opts.pausedUntil > now) return { granted: [], blockedUntil: opts.pausedUntil };
  const used = rules.map((rule) => {
    const span = rule.windowMs + marginMs;
    let sum = 0;
    for (const g of log) if (g.at + span > now) sum += costIn(rule, g.recipients);
    return sum;
  });
  const granted: QueuedPermit[] = [];
  for (const q of queue) {
    if (granted.length >= opts.maxGrants) return { granted, blockedUntil: now };
    const fits = rules.every((rule, i) => used[i]! + Math.min(costIn(rule, q.recipients), rule.max) <= rule.max);
    if (!fits) {
      const all = [...log, ...granted.map((g) => ({ at: now, recipients: g.recipients }))];
      return { granted, blockedUntil: earliestGrantTime(all, rules, q, now, marginMs) };
    }
    rules.forEach((rule, i) => (used[i]! += costIn(rule, q.recipients)));
    granted.push(q);
  }
  return { granted, blockedUntil: null };
}

/**
 * How many more requests can be granted at `now` at most (each costs at least 1 in every window);
 * Infinity without rules. Lets the limiter read no more of a long queue than can go.
 */
export function grantRoom(log: readonly Grant[], rules: readonly WindowRule[], now: number, marginMs: number): number {
  let room = Infinity;
  for (const rule of rules) {
    const span = rule.windowMs + marginMs;
    let used = 0;
    for (const g of log) if (g.at + span > now) used += costIn(rule, g.recipients);
    room = Math.min(room, Math.max(0, rule.max - used));
  }
  return room;
}
