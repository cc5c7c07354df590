import { WorkflowNotFoundError } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { defineSignal } from '@temporalio/workflow';
import { TenantIdKey } from '../search-attributes';
import { tenantWorkflowId, type AddressedTo } from './ids';

/**
 * Hand-offs of a tenant's IMAP bounce-mailbox watch (src/workflows/bounce-mailbox-watch.ts),
 * `imap-<tenant>`: started and woken by PUT, woken by DELETE of the bounce mailbox.
 */
export const BOUNCE_MAILBOX_WATCH_WORKFLOW = 'bounceMailboxWatch';

export interface BounceMailboxWatchInput {
  tenantId: string;
  /** Consecutive `failed` runs, carried over continue-as-new so the backoff keeps growing. */
  failures?: number;
}
export type BounceMailboxWatchWorkflow = (input: BounceMailboxWatchInput) => Promise<void>;

export const bounceWatchWorkflowId = (tenantId: string): string => tenantWorkflowId('imap', tenantId);

export const watchSettingsChangedSignal = defineSignal<[AddressedTo?]>('settingsChanged');

/** Starts the watch if it is not running, and tells it its settings changed. */
export async function startOrWakeWatch(client: Client, taskQueue: string, tenantId: string): Promise<void> {
  await client.workflow.signalWithStart<BounceMailboxWatchWorkflow, [AddressedTo?]>(BOUNCE_MAILBOX_WATCH_WORKFLOW, {
    workflowId: bounceWatchWorkflowId(tenantId),
    taskQueue,
    args: [{ tenantId }],
    signal: watchSettingsChangedSignal,
    signalArgs: [{ tenantId }],
    typedSearchAttributes: [{ key: TenantIdKey, value: tenantId }],
  });
}

/** Tells a running watch its settings changed; false when none runs. */
export async function wakeWatchIfRunning(client: Client, tenantId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(bounceWatchWorkflowId(tenantId)).signal(watchSettingsChangedSignal, { tenantId });
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}
