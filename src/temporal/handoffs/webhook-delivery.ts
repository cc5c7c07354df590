import type { Client } from '@temporalio/client';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { LaneState, QueuedEvent } from '../../domain/webhooks';
import { TenantIdKey } from '../search-attributes';
import { tenantWorkflowId, webhookSweeperWorkflowId } from './ids';

/**
 * Hand-offs of a tenant's webhook delivery workflow (src/workflows/webhook-delivery.ts),
 * `webhooks-<tenant>`, and of the deployment's sweeper (src/workflows/webhook-sweeper.ts),
 * `webhook-sweeper-<task queue>`. Events reach them through src/temporal/webhook-dispatch.ts.
 */
export const WEBHOOK_DELIVERY_WORKFLOW = 'webhookDelivery';
export const WEBHOOK_SWEEPER_WORKFLOW = 'webhookSweeper';

export interface WebhookDeliveryInput {
  tenantId: string;
  /** The queue itself, carried by runs before the queue moved to the store (read, never written). */
  lanes?: Record<string, LaneState>;
  /** Next-attempt time (epoch ms) of each lane a run was retrying: at most MAX_PARALLEL_LANES. */
  retryAt?: Record<string, number>;
  /** Continue-as-new past this many history events (tests lower it to exercise the hand-over). */
  historyLimit?: number;
}
export type WebhookDeliveryWorkflow = (input: WebhookDeliveryInput) => Promise<void>;
export type WebhookSweeperWorkflow = () => Promise<void>;

export interface EventsReady {
  /** Ids of the events handed over: sent only by processes before the queue moved to the store. */
  events?: QueuedEvent[];
  /** The tenant the events were handed over for (absent in signals recorded before it existed). */
  tenantId?: string;
}

export const webhookWorkflowId = (tenantId: string): string => tenantWorkflowId('webhooks', tenantId);
export { webhookSweeperWorkflowId };

export const eventsReadySignal = defineSignal<[EventsReady]>('eventsReady');
export const webhookStateQuery = defineQuery<{ queued: number; lanes: number; running: string[] }>('state');

/**
 * Signal-with-start of the tenant's delivery workflow: events are queued in the store
 * (EventRepository.enqueue), this only wakes it (no ids: a signal's size never grows with traffic).
 */
export async function wakeWebhookDelivery(client: Client, taskQueue: string, tenantId: string): Promise<void> {
  await client.workflow.signalWithStart<WebhookDeliveryWorkflow, [EventsReady]>(WEBHOOK_DELIVERY_WORKFLOW, {
    workflowId: webhookWorkflowId(tenantId),
    taskQueue,
    args: [{ tenantId }],
    signal: eventsReadySignal,
    signalArgs: [{ tenantId }],
    typedSearchAttributes: [{ key: TenantIdKey, value: tenantId }],
  });
}

export async function queryWebhookState(client: Client, tenantId: string): Promise<{ queued: number; lanes: number; running: string[] }> {
  return client.workflow.getHandle(webhookWorkflowId(tenantId)).query(webhookStateQuery);
}

/** Starts a tenant's delivery workflow with a given input (tests lower its history limit). */
export async function startWebhookDelivery(client: Client, taskQueue: string, input: WebhookDeliveryInput) {
  return client.workflow.start<WebhookDeliveryWorkflow>(WEBHOOK_DELIVERY_WORKFLOW, {
    workflowId: webhookWorkflowId(input.tenantId),
    taskQueue,
    args: [input],
    typedSearchAttributes: [{ key: TenantIdKey, value: input.tenantId }],
  });
}

/** Starts the sweeper workflow unless it runs already (every worker calls this at start). */
export async function ensureWebhookSweeper(client: Client, taskQueue: string): Promise<void> {
  await client.workflow.start<WebhookSweeperWorkflow>(WEBHOOK_SWEEPER_WORKFLOW, {
    workflowId: webhookSweeperWorkflowId(taskQueue),
    taskQueue,
    args: [],
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
}
