import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client, type ScheduleOptionsStartWorkflowAction } from '@temporalio/client';
import type { ProbeResult } from '../../domain/smtp-probe';
import { TenantIdKey } from '../search-attributes';
import { tenantHealthScheduleId, tenantItemWorkflowId } from './ids';

/** Hand-offs of the SMTP verification workflow (src/workflows/verify-connection.ts): one run per `verify`. */
export const VERIFY_CONNECTION_WORKFLOW = 'verifyTenantConnection';
export type VerifyConnectionWorkflow = (tenantId: string) => Promise<ProbeResult>;

/** `verify-<tenant>:<time><random>`: runs are kept apart, and listed by tenant in the Web UI. */
export const verifyWorkflowId = (tenantId: string, at: number, nonce: string): string =>
  tenantItemWorkflowId('verify', tenantId, `${at.toString(36)}-${nonce}`);

/**
 * Runs the probe and waits for its result (a failed run throws WorkflowFailedError). The nonce only keeps
 * two runs of the same millisecond apart (no Node built-ins here: this module is bundle-safe).
 */
export async function runVerification(client: Client, taskQueue: string, tenantId: string): Promise<ProbeResult> {
  return client.workflow.execute<VerifyConnectionWorkflow>(VERIFY_CONNECTION_WORKFLOW, {
    taskQueue,
    workflowId: verifyWorkflowId(tenantId, Date.now(), Math.random().toString(36).slice(2, 8)),
    args: [tenantId],
    workflowExecutionTimeout: '3 minutes',
    typedSearchAttributes: [{ key: TenantIdKey, value: tenantId }],
  });
}

/**
 * Each tenant's health check (docs/operations.md, "Tenant health"): a Temporal Schedule
 * `health-<task queue>:<tenant>` that runs this same verify every interval; the verify activity records the
 * outcome as the tenant's health. The offset spreads tenants over the interval (a deterministic
 * hash of the id), so a deployment's checks do not all start at once.
 */
export async function ensureTenantHealthSchedule(client: Client, taskQueue: string, tenantId: string, everyMs: number): Promise<void> {
  const scheduleId = tenantHealthScheduleId(taskQueue, tenantId);
  let hash = 0;
  for (const c of tenantId) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  const options = {
    scheduleId,
    spec: { intervals: [{ every: everyMs, offset: hash % everyMs }] },
    action: {
      type: 'startWorkflow',
      workflowType: VERIFY_CONNECTION_WORKFLOW,
      taskQueue,
      // Temporal appends the start time: `verify-<tenant>:health-2026-…Z`.
      workflowId: tenantItemWorkflowId('verify', tenantId, 'health'),
      args: [tenantId],
      workflowExecutionTimeout: '3 minutes',
      typedSearchAttributes: [{ key: TenantIdKey, value: tenantId }],
    } as ScheduleOptionsStartWorkflowAction<VerifyConnectionWorkflow>,
    policies: { overlap: 'SKIP' as const, catchupWindow: 60_000 },
  };
  try {
    await client.schedule.create(options);
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec: options.spec, action: options.action }));
  }
}

/** Removes the tenant's schedule (its deletion); true when there was one. */
export async function deleteTenantHealthSchedule(client: Client, taskQueue: string, tenantId: string): Promise<boolean> {
  try {
    await client.schedule.getHandle(tenantHealthScheduleId(taskQueue, tenantId)).delete();
    return true;
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return false;
    throw err;
  }
}

/** Runs the tenant's health check now (operators: `temporal schedule trigger --schedule-id health-<queue>:<tenant>`; tests). */
export async function triggerTenantHealthCheck(client: Client, taskQueue: string, tenantId: string): Promise<void> {
  await client.schedule.getHandle(tenantHealthScheduleId(taskQueue, tenantId)).trigger();
}

/** The schedule's interval, or null when the tenant has none (tests, operators' tools). */
export async function tenantHealthScheduleInterval(client: Client, taskQueue: string, tenantId: string): Promise<number | null> {
  try {
    const d = await client.schedule.getHandle(tenantHealthScheduleId(taskQueue, tenantId)).describe();
    const every = d.spec.intervals?.[0]?.every;
    return typeof every === 'number' ? every : every === undefined ? null : Number(every);
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return null;
    throw err;
  }
}
