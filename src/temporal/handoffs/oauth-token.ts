import { WorkflowNotFoundError } from '@temporalio/common';
import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { TenantIdKey } from '../search-attributes';
import { tenantWorkflowId, type AddressedTo } from './ids';

/**
 * Hand-offs of a tenant's OAuth2 token workflow (src/workflows/oauth-token.ts), `oauth-<tenant>`,
 * from the API and from activities. Every call starts the workflow if it is not running, so no path
 * has to know whether it exists: the first send, a consent or a credentials PATCH all bring it to life.
 */
export const OAUTH_TOKEN_WORKFLOW = 'oauthToken';

export interface OAuthTokenState {
  generation: number;
  obtainedAt: number;
  expiresAt: number;
  status: 'starting' | 'valid' | 'needs_reauth' | 'ended';
  reason: string | null;
  /** The tenant's settingsVersion when its credentials were refused; a change means someone fixed them. */
  versionAtFailure: number | null;
  refreshes: number;
}

export interface OAuthTokenInput {
  tenantId: string;
  refreshMarginMs: number;
  state?: OAuthTokenState;
}
export type OAuthTokenWorkflow = (input: OAuthTokenInput) => Promise<void>;

export type RefreshAnswer = { ok: true; generation: number; expiresAt: number } | { ok: false; reason: string };
export interface RefreshRequest {
  staleGeneration: number;
  to?: AddressedTo;
}

export const tokenWorkflowId = (tenantId: string): string => tenantWorkflowId('oauth', tenantId);

export const credentialsChangedSignal = defineSignal<[AddressedTo?]>('credentialsChanged');
export const refreshNowUpdate = defineUpdate<RefreshAnswer, [RefreshRequest]>('refreshNow');
export const tokenStateQuery = defineQuery<OAuthTokenState>('state');

export interface TokenWorkflowTarget {
  client: Client;
  taskQueue: string;
  refreshMarginMs: number;
}

function startOptions(t: TokenWorkflowTarget, tenantId: string) {
  const input: OAuthTokenInput = { tenantId, refreshMarginMs: t.refreshMarginMs };
  return {
    workflowId: tokenWorkflowId(tenantId),
    taskQueue: t.taskQueue,
    args: [input] as [OAuthTokenInput],
    typedSearchAttributes: [{ key: TenantIdKey, value: tenantId }],
  };
}

/** New credentials (consent, PATCH): refresh now, leaving needs_reauth if it was there. */
export async function signalCredentialsChanged(t: TokenWorkflowTarget, tenantId: string): Promise<void> {
  await t.client.workflow.signalWithStart<OAuthTokenWorkflow, [AddressedTo?]>(OAUTH_TOKEN_WORKFLOW, {
    ...startOptions(t, tenantId),
    signal: credentialsChangedSignal,
    signalArgs: [{ tenantId }],
  });
}

/**
 * Tells a running token workflow its tenant's credentials changed without starting one (the tenant
 * no longer uses OAuth2: the run finds that out and ends). False when none is running.
 */
export async function signalCredentialsChangedIfRunning(client: Client, tenantId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(tokenWorkflowId(tenantId)).signal(credentialsChangedSignal, { tenantId });
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** A token newer than `staleGeneration`, obtained by the workflow (coalesced with other requests). */
export async function requestRefresh(t: TokenWorkflowTarget, tenantId: string, staleGeneration: number): Promise<RefreshAnswer> {
  return t.client.workflow.executeUpdateWithStart(refreshNowUpdate, {
    args: [{ staleGeneration, to: { tenantId } }],
    startWorkflowOperation: new WithStartWorkflowOperation<OAuthTokenWorkflow>(OAUTH_TOKEN_WORKFLOW, {
      ...startOptions(t, tenantId),
      workflowIdConflictPolicy: 'USE_EXISTING',
    }),
  });
}

export async function queryTokenState(client: Client, tenantId: string): Promise<OAuthTokenState> {
  return client.workflow.getHandle(tokenWorkflowId(tenantId)).query(tokenStateQuery);
}
