import type { ReplyClass } from './smtp-reply';

/**
 * How long to wait before the next SMTP attempt. Exponential with full jitter for ordinary
 * transient failures; greylisting waits at least the greylisting delay (retrying sooner only
 * resets the greylist timer on many servers); throttling backs off harder.
 * `random` is injected so workflows pass their deterministic Math.random.
 */
export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  greylistMs: number;
  /** Stop retrying transient failures after this long since the first attempt (MTAs: ~3-5 days). */
  giveUpMs: number;
  /** How long a message waits for new credentials/settings before failing. */
  credentialsWaitMs: number;
  /** How long a throttling reply pushes the tenant's next slots back. */
  throttlePauseMs: number;
  /**
   * How long a daily-quota refusal (Gmail's `550 5.4.5`) pauses the tenant before one message tries again
   * (SEND_QUOTA_PAUSE_MS). Absent in workflows started before it existed: DEFAULT_QUOTA_PAUSE_MS.
   */
  quotaPauseMs?: number;
}

/** Gmail frees quota as its rolling 24-hour window moves on: an hour's pause, then one message tries again. */
export const DEFAULT_QUOTA_PAUSE_MS = 60 * 60_000;

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  initialMs: 30_000,
  maxMs: 2 * 60 * 60_000,
  greylistMs: 5 * 60_000,
  giveUpMs: 3 * 24 * 60 * 60_000,
  credentialsWaitMs: 3 * 24 * 60 * 60_000,
  throttlePauseMs: 60_000,
  quotaPauseMs: DEFAULT_QUOTA_PAUSE_MS,
};

export function retryDelayMs(policy: RetryPolicy, cls: ReplyClass, failuresSoFar: number, random: () => number): number {
  const exp = Math.min(policy.maxMs, policy.initialMs * 2 ** Math.max(0, failuresSoFar - 1));
  // Half fixed, half jitter: spreads a burst of failures without ever retrying immediately.
  const jittered = Math.round(exp / 2 + random() * (exp / 2));
  if (cls === 'greylisted') return Math.max(policy.greylistMs, jittered);
  if (cls === 'throttled') return Math.max(policy.throttlePauseMs, jittered);
  return jittered;
}

/** A duration for reasons people read: `72 h`, `90 min`, `3 s`. */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000) return `${Math.round(ms / 3_600_000)} h`;
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.max(1, Math.round(ms / 1000))} s`;
}
