import type { Client } from '@temporalio/client';
import type { ProbeResult } from '../../domain/smtp-probe';
import { TenantIdKey } from '../search-attributes';
import { tenantItemWorkflowId } from './ids';

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
