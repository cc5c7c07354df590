import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import { TenantIdKey } from '../search-attributes';
import { tenantItemWorkflowId } from './ids';

/**
 * Hand-offs of the Sent-copy workflow (src/workflows/sent-copy.ts), `sentcopy-<tenant>:<message>`:
 * started by the attempt that records a 250 (src/activities/sent-copy.ts), once per message. Its
 * own workflow, apart from the send: its retries and its failure can never re-send the mail.
 */
export const SENT_COPY_WORKFLOW = 'sentCopy';

export interface SentCopyInput {
  tenantId: string;
  /** Cartero's message id (the document's `_id`). */
  id: string;
}
export type SentCopyWorkflow = (input: SentCopyInput) => Promise<void>;

export const sentCopyWorkflowId = (tenantId: string, id: string): string => tenantItemWorkflowId('sentcopy', tenantId, id);

/**
 * Starts the copy unless one was started for this message before (running or finished): the id
 * decides, and it is never reused, so a replayed attempt cannot append twice.
 */
export async function startSentCopy(client: Client, taskQueue: string, input: SentCopyInput): Promise<void> {
  try {
    await client.workflow.start<SentCopyWorkflow>(SENT_COPY_WORKFLOW, {
      workflowId: sentCopyWorkflowId(input.tenantId, input.id),
      taskQueue,
      args: [input],
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [{ key: TenantIdKey, value: input.tenantId }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
  }
}
