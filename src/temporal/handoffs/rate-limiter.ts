import type { Client } from '@temporalio/client';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Grant, WindowRule } from '../../domain/rate-limit';
import { tenantWorkflowId } from './ids';

/**
 * Hand-offs of a tenant's rate limiter (src/workflows/rate-limiter.ts): `ratelimit-<tenant>`,
 * asked for permits by send workflows (through an activity) and told of throttling replies.
 */
export const RATE_LIMITER_WORKFLOW = 'rateLimiter';

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
  requests: number;
  grants: number;
  wakeups: number;
  pausedUntil: number;
}

export interface LimiterInput {
  tenantId: string;
  marginMs: number;
  state?: { queue: PermitRequest[]; grants: Grant[]; rules: WindowRule[]; pausedUntil: number; stats: LimiterStats };
}
export type RateLimiterWorkflow = (input: LimiterInput) => Promise<void>;

export const rateLimiterWorkflowId = (tenantId: string): string => tenantWorkflowId('ratelimit', tenantId);

export const requestPermitSignal = defineSignal<[PermitRequest]>('requestPermit');
/** A throttling reply from the tenant's server: no grants before `untilMs`. */
export const throttleSignal = defineSignal<[{ untilMs: number; tenantId?: string }]>('throttle');
export const limiterStatsQuery = defineQuery<LimiterStats>('stats');

/** Enqueues a permit request at the tenant's limiter, starting the limiter if it is not running. */
export async function requestPermit(
  client: Client,
  taskQueue: string,
  tenantId: string,
  marginMs: number,
  request: Omit<PermitRequest, 'tenantId'>,
): Promise<void> {
  await client.workflow.signalWithStart<RateLimiterWorkflow, [PermitRequest]>(RATE_LIMITER_WORKFLOW, {
    workflowId: rateLimiterWorkflowId(tenantId),
    taskQueue,
    args: [{ tenantId, marginMs }],
    signal: requestPermitSignal,
    signalArgs: [{ ...request, tenantId }],
  });
}

export async function queryLimiterStats(client: Client, tenantId: string): Promise<LimiterStats> {
  return client.workflow.getHandle(rateLimiterWorkflowId(tenantId)).query(limiterStatsQuery);
}
