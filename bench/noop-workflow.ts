import { proxyLocalActivities, upsertSearchAttributes } from '@temporalio/workflow';
import { SendStatusKey } from '../src/temporal/search-attributes';

/**
 * bench/send's Temporal floors: the least a workflow per message can cost on this server — one
 * workflow started by a client, one workflow task, one local activity that does nothing.
 */
const acts = proxyLocalActivities<{ noop(n: number): Promise<number> }>({ startToCloseTimeout: '1 minute' });

export async function noopWorkflow(n: number): Promise<number> {
  return acts.noop(n);
}

/**
 * The fair floor: the same, with Cartero's Temporal shape — started with its search attributes and an
 * input of the send workflow's size (the client sets both, and the encryption codec seals the input),
 * one local activity, one upsert of SendStatus at the end. What Temporal costs for our design.
 */
export async function shapedNoopWorkflow(input: { id: string; pad: string }): Promise<{ status: string }> {
  await acts.noop(input.id.length);
  upsertSearchAttributes([{ key: SendStatusKey, value: 'sent' }]);
  return { status: 'sent' };
}
