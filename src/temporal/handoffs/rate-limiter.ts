import type { Client } from '@temporalio/client';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Grant, WindowRule } from '../../domain/rate-limit';
import { tenantWorkflowId } from './ids';

/**
 * Hand-offs of a tenant's rate limiter (src/workflows/rate-limiter.ts): `ratelimit-<tenant>`,
 * woken by send workflows (through an activity, after it stored their request) and told of
 * throttling replies.
 */
export const RATE_LIMITER_WORKFLOW = 'rateLimiter';

/** The request a send workflow signalled before requests lived in the store (still accepted). */
export interface PermitRequest {
  workflowId: string;
  recipients: number;
  rules: WindowRule[];
  /** When the API accepted the message: the queue is ordered by it, so FIFO survives racing requests. */
  acceptedAt: number;
  /** The tenant the request was addressed for (absent in requests recorded before it existed). */
  tenantId?: string;
}

export interface LimiterStats {
  queued: number;
  /** Permit requests (wake-ups by a stored request, and legacy request signals). */
  requests: number;
  grants: number;
  /** Timed waits for the next grant. */
  wakeups: number;
  pausedUntil: number;
  /** Requests given up on (SEND_RATE_LIMIT_MAX_WAIT_MS); absent in stats carried from before. */
  refused?: number;
}

export interface LimiterInput {
  tenantId: string;
  marginMs: number;
  /** What a run from before the store-backed queue carried (its queue and grant log): moved to the store. */
  state?: { queue: PermitRequest[]; grants: Grant[]; rules: WindowRule[]; pausedUntil: number; stats: LimiterStats };
  /** What a store-backed run carries to its next: counters, nothing that grows with traffic. */
  carried?: { pausedUntil: number; giveUpCheckAt?: number; stats: LimiterStats };
  /** Continue as new past this many history events (default 8,000; tests force a hand-over with less). */
  historyLimit?: number;
}
export type RateLimiterWorkflow = (input: LimiterInput) => Promise<void>;

export const rateLimiterWorkflowId = (tenantId: string): string => tenantWorkflowId('ratelimit', tenantId);

export const requestPermitSignal = defineSignal<[PermitRequest]>('requestPermit');
/**
 * Something changed in the tenant's queue: `request` (a request was stored: wakes an idle
 * limiter) or `release` (a grant left the log: a slot may be free before the limiter's timer).
 */
export const wakeLimiterSignal = defineSignal<[{ tenantId: string; reason: 'request' | 'release' }]>('wake');
/** A throttling reply from the tenant's server: no grants before `untilMs`. */
export const throttleSignal = defineSignal<[{ untilMs: number; tenantId?: string }]>('throttle');
export const limiterStatsQuery = defineQuery<LimiterStats>('stats');

/** Wakes the tenant's limiter, starting it if it is not running (its queue is in the store). */
export async function wakeLimiter(
  client: Client,
  taskQueue: string,
  tenantId: string,
  marginMs: number,
  reason: 'request' | 'release',
  options: { historyLimit?: number } = {},
): Promise<void> {
  await client.workflow.signalWithStart<RateLimiterWorkflow, [{ tenantId: string; reason: 'request' | 'release' }]>(RATE_LIMITER_WORKFLOW, {
    workflowId: rateLimiterWorkflowId(tenantId),
    taskQueue,
    args: [{ tenantId, marginMs, ...options }],
    signal: wakeLimiterSignal,
    signalArgs: [{ tenantId, reason }],
  });
}

export async function queryLimiterStats(client: Client, tenantId: string): Promise<LimiterStats> {
  return client.workflow.getHandle(rateLimiterWorkflowId(tenantId)).query(limiterStatsQuery);
}
