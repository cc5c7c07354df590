import type { Client } from '@temporalio/client';
import { WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/common';
import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { MessageStatus } from '../../domain/message';
import type { RetryPolicy } from '../../domain/retry';
import { CaseIdKey, MessageIdKey, SendStatusKey, TenantIdKey } from '../search-attributes';
import { parseWorkflowId, tenantItemWorkflowId, type AddressedTo } from './ids';

/**
 * Hand-offs of the send workflow (src/workflows/send-message.ts), one per outbound message:
 * its id, its start, and the signals and query it answers. Nothing else names them.
 */
export const SEND_MESSAGE_WORKFLOW = 'sendMessage';

export interface SendMessageInput {
  tenantId: string;
  id: string;
  /** Epoch ms; absent or past = now. */
  sendAt?: number;
  policy: RetryPolicy;
  permitMarginMs: number;
  /** Epoch ms when the API accepted the message (FIFO order at the rate limiter). */
  acceptedAt: number;
}
export type SendMessageWorkflow = (input: SendMessageInput) => Promise<{ status: MessageStatus }>;

/** `send-<tenant>:<message id>` (ids stored before this scheme, `send-<tenant>-<id>`, stay valid: the store keeps each message's id). */
export const sendWorkflowId = (tenantId: string, messageId: string): string => tenantItemWorkflowId('send', tenantId, messageId);

/** The message id in a send workflow id of the tenant's (current or legacy form); null for anything else. */
export function messageIdOfSendWorkflow(tenantId: string, workflowId: string): string | null {
  const parsed = parseWorkflowId(workflowId);
  if (parsed) return parsed.family === 'send' && parsed.tenantId === tenantId ? parsed.item : null;
  const legacy = `send-${tenantId}-`;
  return workflowId.startsWith(legacy) ? workflowId.slice(legacy.length) : null;
}

/** The optional argument: signals recorded before addressing existed carry none. */
export const settingsChangedSignal = defineSignal<[AddressedTo?]>('settingsChanged');
export const cancelSignal = defineSignal<[AddressedTo?]>('cancel');
/**
 * From the tenant's rate limiter (src/activities/rate-limiter.ts). `refused`: the limiter gave up
 * on the request (it waited past SEND_RATE_LIMIT_MAX_WAIT_MS) and recorded the message `failed`
 * with this reason first, so the attempt this signal leads to finds it ended.
 */
export interface PermitGrant {
  grantedAt: number;
  refused?: string;
}
export const permitGrantedSignal = defineSignal<[PermitGrant]>('permitGranted');
export const sendStateQuery = defineQuery<{ status: MessageStatus; attempts: number }>('state');

export interface SendStart {
  workflowId: string;
  input: SendMessageInput;
  status: MessageStatus;
  caseId: string | null;
}

/**
 * Starts a message's workflow on the send queue (TEMPORAL_SEND_TASK_QUEUE, src/worker.ts); false when
 * it runs (or ran) already: a retried request is durable already.
 */
export async function startSendMessage(client: Client, sendTaskQueue: string, s: SendStart): Promise<boolean> {
  try {
    await client.workflow.start<SendMessageWorkflow>(SEND_MESSAGE_WORKFLOW, {
      taskQueue: sendTaskQueue,
      workflowId: s.workflowId,
      // One run per message, ever: a request repeated after the message finished must not start it again.
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      args: [s.input],
      typedSearchAttributes: [
        { key: TenantIdKey, value: s.input.tenantId },
        { key: MessageIdKey, value: s.input.id },
        { key: SendStatusKey, value: s.status },
        ...(s.caseId ? [{ key: CaseIdKey, value: s.caseId }] : []),
      ],
    });
    return true;
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return false;
    throw err;
  }
}

/** `workflowId` comes from the message record (it may be a legacy id). */
export async function signalCancel(client: Client, workflowId: string, tenantId: string, messageId: string): Promise<void> {
  await client.workflow.getHandle(workflowId).signal(cancelSignal, { tenantId, item: messageId });
}

/** The limiter's answer to a permit request; the sender may have ended meanwhile (then it throws). */
export async function signalPermitGranted(client: Client, workflowId: string, grant: PermitGrant): Promise<void> {
  await client.workflow.getHandle(workflowId).signal(permitGrantedSignal, grant);
}

export async function signalSettingsChanged(client: Client, workflowId: string, tenantId: string, messageId: string): Promise<void> {
  await client.workflow.getHandle(workflowId).signal(settingsChangedSignal, { tenantId, item: messageId });
}

/** Whether a message's workflow exists, and how it ended if it did. */
export async function sendRunState(client: Client, workflowId: string): Promise<'missing' | 'running' | 'completed' | 'ended-otherwise'> {
  try {
    const d = await client.workflow.getHandle(workflowId).describe();
    return d.status.name === 'RUNNING' ? 'running' : d.status.name === 'COMPLETED' ? 'completed' : 'ended-otherwise';
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return 'missing';
    throw err;
  }
}

export async function querySendState(client: Client, workflowId: string): Promise<{ status: MessageStatus; attempts: number }> {
  return client.workflow.getHandle(workflowId).query(sendStateQuery);
}
