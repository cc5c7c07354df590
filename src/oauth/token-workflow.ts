import { WithStartWorkflowOperation, type Client } from '@temporalio/client';
import { TenantIdKey } from '../temporal/search-attributes';
import type { OAuthTokenInput, oauthToken, RefreshAnswer } from '../workflows/oauth-token';

/**
 * Talking to a tenant's token workflow (`oauth-<tenant>`) from the API and from activities. Every
 * call starts the workflow if it is not running, so no path has to know whether it exists: the
 * first send, a consent or a credentials PATCH all bring it to life.
 */
export interface TokenWorkflowTarget {
  client: Client;
  taskQueue: string;
  refreshMarginMs: number;
}

export const tokenWorkflowId = (tenantId: string): string => `oauth-${tenantId}`;

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
  await t.client.workflow.signalWithStart<typeof oauthToken, []>('oauthToken', {
    ...startOptions(t, tenantId),
    signal: 'credentialsChanged',
    signalArgs: [],
  });
}

/** A token newer than `staleGeneration`, obtained by the workflow (coalesced with other requests). */
export async function requestRefresh(t: TokenWorkflowTarget, tenantId: string, staleGeneration: number): Promise<RefreshAnswer> {
  const startWorkflowOperation = new WithStartWorkflowOperation<typeof oauthToken>('oauthToken', {
    ...startOptions(t, tenantId),
    workflowIdConflictPolicy: 'USE_EXISTING',
  });
  return t.client.workflow.executeUpdateWithStart<typeof oauthToken, RefreshAnswer, [{ staleGeneration: number }]>('refreshNow', {
    args: [{ staleGeneration }],
    startWorkflowOperation,
  });
}
