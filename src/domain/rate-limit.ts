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
