import { ScheduleAlreadyRunning, type Client, type ScheduleOptionsStartWorkflowAction } from '@temporalio/client';
import { reconcileScheduleId } from './ids';

/**
 * Hand-offs of the reconciler (src/workflows/reconciler.ts): a Temporal Schedule per deployment
 * (task queue) that runs one short workflow every interval to find accepted messages whose send
 * workflow does not exist and start it (src/activities/reconcile.ts).
 */
export const RECONCILER_WORKFLOW = 'reconcileOrphans';

export interface ReconcileInput {
  /** A message untouched this long with no workflow is an orphan (its start must have failed). */
  graceMs: number;
  /** A message the API refused with 503 is failed after this long unless a retry started it. */
  notAcceptedGraceMs: number;
}
export interface ReconcileResult {
  checked: number;
  started: string[];
  failed: string[];
}
export type ReconcilerWorkflow = (input: ReconcileInput) => Promise<ReconcileResult>;

/** Creates the schedule unless it exists (every worker calls this at start); keeps its interval current. */
export async function ensureReconcileSchedule(client: Client, taskQueue: string, everyMs: number, input: ReconcileInput): Promise<void> {
  const scheduleId = reconcileScheduleId(taskQueue);
  const options = {
    scheduleId,
    spec: { intervals: [{ every: everyMs }] },
    action: {
      type: 'startWorkflow',
      workflowType: RECONCILER_WORKFLOW,
      taskQueue,
      args: [input],
    } as ScheduleOptionsStartWorkflowAction<ReconcilerWorkflow>,
    // One pass at a time; a pass that overlaps the next simply makes it wait.
    policies: { overlap: 'SKIP' as const, catchupWindow: 60_000 },
  };
  try {
    await client.schedule.create(options);
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec: options.spec, action: options.action }));
  }
}

/** Runs a pass now (operators: `temporal schedule trigger`; tests). */
export async function triggerReconcile(client: Client, taskQueue: string): Promise<void> {
  await client.schedule.getHandle(reconcileScheduleId(taskQueue)).trigger();
}
