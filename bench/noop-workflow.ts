import { proxyLocalActivities } from '@temporalio/workflow';

/**
 * bench/send's Temporal floor: the least a workflow per message can cost on this server — one
 * workflow started by a client, one workflow task, one local activity that does nothing.
 */
const acts = proxyLocalActivities<{ noop(n: number): Promise<number> }>({ startToCloseTimeout: '1 minute' });

export async function noopWorkflow(n: number): Promise<number> {
  return acts.noop(n);
}
