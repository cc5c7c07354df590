import { allHandlersFinished, condition, continueAsNew, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { refreshAt } from '../domain/oauth';
import { addressedHere } from '../temporal/handoffs/ids';
import {
  credentialsChangedSignal,
  refreshNowUpdate,
  tokenStateQuery,
  type OAuthTokenInput,
  type OAuthTokenState,
  type RefreshAnswer,
  type RefreshRequest,
} from '../temporal/handoffs/oauth-token';

/**
 * One workflow per OAuth2 tenant (`oauth-<tenant>`, src/temporal/handoffs/oauth-token.ts), alive for as long as the tenant uses OAuth2:
 * obtain a token (the activity stores it sealed; this history only sees expiry times and outcomes),
 * sleep until shortly before it expires, refresh, repeat. Provider outages are retried by the
 * activity's retry policy with backoff, for ever. A refused grant (`invalid_grant`, revoked consent)
 * puts the tenant in needs_reauth (done by the activity, with a `tenant.needs_reauth` event), and
 * the workflow then waits for `credentialsChanged` (sent by the consent callback and by a PATCH of
 * the tenant's auth; an operator can send it from the Web UI too). Sends that need a token at once
 * (no usable token, or the SMTP server refused the one they had) ask through the `refreshNow`
 * update, which coalesces: a request naming an older generation than the current one is answered
 * without calling the provider. Continues-as-new long before its history gets large.
 */

const { refreshOAuthToken } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  // Unlimited attempts: a provider outage must not end the tenant's token life; the activity
  // turns refusals that need a person into a needs_reauth value instead of an error.
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '5 minutes' },
});
const { tenantSettingsVersion } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', nonRetryableErrorTypes: ['NotFoundError'] },
});

/** A lost credentialsChanged signal must not strand the tenant: look at its settings now and then. */
const REAUTH_RECHECK_MS = 60 * 60_000;
const HISTORY_LIMIT = 2_000;

export async function oauthToken(input: OAuthTokenInput): Promise<void> {
  const state: OAuthTokenState = input.state ?? {
    generation: 0,
    obtainedAt: 0,
    expiresAt: 0,
    status: 'starting',
    reason: null,
    versionAtFailure: null,
    refreshes: 0,
  };
  let wanted = false;
  let credentialsChanged = false;
  let completed = 0;

  setHandler(credentialsChangedSignal, (to) => {
    if (addressedHere(to, input.tenantId)) credentialsChanged = true;
  });
  setHandler(tokenStateQuery, () => ({ ...state }));
  setHandler(
    refreshNowUpdate,
    async ({ staleGeneration }): Promise<RefreshAnswer> => {
      const answer = (): RefreshAnswer =>
        state.status === 'valid'
          ? { ok: true, generation: state.generation, expiresAt: state.expiresAt }
          : { ok: false, reason: state.reason ?? 'no token yet' };
      if (state.status === 'valid' && state.generation > staleGeneration) return answer();
      // Refused credentials stay refused until someone changes them: no provider call per send.
      if (state.status === 'needs_reauth' && !credentialsChanged) return answer();
      const before = completed;
      wanted = true;
      await condition(() => completed > before);
      return answer();
    },
    {
      // Refused before it is recorded: a request for another tenant's token gets nothing of this one.
      validator: ({ to }: RefreshRequest) => {
        if (!to || !addressedHere(to, input.tenantId)) throw new Error('this refresh was not addressed to this tenant');
      },
    },
  );

  for (;;) {
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > HISTORY_LIMIT) {
      await condition(allHandlersFinished);
      if (!wanted && !credentialsChanged) {
        await continueAsNew<typeof oauthToken>({ tenantId: input.tenantId, refreshMarginMs: input.refreshMarginMs, state });
      }
    }
    // Cleared before the call: a request arriving during it asks for one more refresh.
    wanted = false;
    credentialsChanged = false;
    const outcome = await refreshOAuthToken(input.tenantId);
    state.refreshes++;
    switch (outcome.kind) {
      case 'gone':
        // Deleted tenant, or it no longer uses OAuth2: nothing left to keep alive.
        state.status = 'ended';
        state.reason = outcome.reason;
        completed++;
        await condition(allHandlersFinished);
        return;
      case 'ok': {
        state.status = 'valid';
        state.reason = null;
        state.versionAtFailure = null;
        state.generation = outcome.generation;
        state.obtainedAt = outcome.obtainedAt;
        state.expiresAt = outcome.expiresAt;
        completed++;
        const wait = refreshAt(outcome.obtainedAt, outcome.expiresAt, input.refreshMarginMs) - Date.now();
        await condition(() => wanted || credentialsChanged, Math.max(wait, 1_000));
        break;
      }
      case 'needs_reauth': {
        state.status = 'needs_reauth';
        state.reason = outcome.reason;
        state.versionAtFailure = outcome.settingsVersion;
        completed++;
        for (;;) {
          if (await condition(() => credentialsChanged, REAUTH_RECHECK_MS)) break;
          // The activity gives up only when the tenant is gone (NotFoundError): null ends the wait, and
          // the next refresh finds the tenant gone and ends the workflow.
          const version = await tenantSettingsVersion(input.tenantId).catch(() => null);
          if (version === null || version !== state.versionAtFailure) break;
        }
        break;
      }
    }
  }
}
