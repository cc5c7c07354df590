import { WorkflowNotFoundError } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { TenantIdKey } from '../search-attributes';
import { bounceWatchWorkflowId } from './bounce-mailbox-watch';
import { tenantWorkflowId } from './ids';
import { tokenWorkflowId } from './oauth-token';
import { rateLimiterWorkflowId } from './rate-limiter';
import { webhookWorkflowId } from './webhook-delivery';

/**
 * Hand-offs of a tenant's deletion workflow (src/workflows/tenant-deletion.ts), `delete-<tenant>`:
 * started by `DELETE /v1/tenants/:id` once the tenant is a tombstone. It stops the tenant's
 * workflows, removes its data from every collection and GridFS bucket, and finally the tombstone,
 * which frees the id (docs/operations.md, "Deleting a tenant").
 */
export const TENANT_DELETION_WORKFLOW = 'tenantDeletion';

export interface TenantDeletionInput {
  tenantId: string;
  /**
   * Wait between the first removal and the second: writers already under way when the tenant was
   * marked deleted (activities of the stopped workflows, tracking hits of messages an API process
   * still holds in memory) finish within it, and the second pass removes what they wrote.
   */
  settleMs: number;
}

export interface TenantDeletionResult {
  workflowsStopped: number;
  /** Documents (and GridFS files) removed, by collection. */
  deleted: Record<string, number>;
}
export type TenantDeletionWorkflow = (input: TenantDeletionInput) => Promise<TenantDeletionResult>;

export const tenantDeletionWorkflowId = (tenantId: string): string => tenantWorkflowId('delete', tenantId);

/** Starts the deletion, or finds the one already running (a repeated DELETE). Returns its workflow id. */
export async function startTenantDeletion(client: Client, taskQueue: string, input: TenantDeletionInput): Promise<string> {
  const handle = await client.workflow.start<TenantDeletionWorkflow>(TENANT_DELETION_WORKFLOW, {
    workflowId: tenantDeletionWorkflowId(input.tenantId),
    taskQueue,
    args: [input],
    workflowIdConflictPolicy: 'USE_EXISTING',
    typedSearchAttributes: [{ key: TenantIdKey, value: input.tenantId }],
  });
  return handle.workflowId;
}

/**
 * Terminates every running workflow of the tenant but its deletion: the singletons by their ids
 * (whatever the visibility store says), everything else found by the TenantId search attribute
 * (sends, cases, verifications). Terminated, not cancelled: a cancelled workflow would still write
 * its outcome for a tenant that no longer exists. Returns how many were terminated.
 */
export async function terminateTenantWorkflows(client: Client, tenantId: string, onEach: () => void = () => undefined): Promise<number> {
  const ids = new Set([tokenWorkflowId, rateLimiterWorkflowId, webhookWorkflowId, bounceWatchWorkflowId].map((id) => id(tenantId)));
  // Tenant ids are `a-z0-9-` only: nothing to escape in the query.
  for await (const wf of client.workflow.list({ query: `TenantId = '${tenantId}' AND ExecutionStatus = 'Running'` })) {
    ids.add(wf.workflowId);
    onEach();
  }
  ids.delete(tenantDeletionWorkflowId(tenantId));
  let terminated = 0;
  for (const id of ids) {
    try {
      await client.workflow.getHandle(id).terminate('tenant deleted');
      terminated++;
    } catch (err) {
      // Not running (never started, or finished): nothing to stop.
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
    onEach();
  }
  return terminated;
}
