import { proxyActivities, sleep } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { TenantDeletionInput, TenantDeletionResult } from '../temporal/handoffs/tenant-deletion';

/**
 * Deletes a tenant for good (`delete-<tenant>`, started by DELETE /v1/tenants/:id once the tenant
 * is a tombstone and its keys are revoked): stops its workflows, removes its data from every
 * collection and GridFS bucket, waits for writers that were already under way, does both again, and
 * removes the tombstone, which frees the id. Every step is idempotent and retried until it succeeds;
 * the purge heartbeats its progress, so a worker that dies mid-way costs a minute, not the work.
 * A purge of a tenant that is live (not a tombstone) fails for good: it never deletes a live tenant.
 */
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', backoffCoefficient: 2 },
});

export async function tenantDeletion(input: TenantDeletionInput): Promise<TenantDeletionResult> {
  const deleted: Record<string, number> = {};
  const add = (counts: Record<string, number>) => {
    for (const [name, n] of Object.entries(counts)) deleted[name] = (deleted[name] ?? 0) + n;
  };
  let workflowsStopped = await acts.stopTenantWorkflows(input.tenantId);
  add(await acts.purgeTenantData(input.tenantId));
  await sleep(input.settleMs);
  workflowsStopped += await acts.stopTenantWorkflows(input.tenantId);
  add(await acts.purgeTenantData(input.tenantId));
  await acts.removeTenantTombstone(input.tenantId);
  return { workflowsStopped, deleted };
}
