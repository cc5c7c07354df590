import {
  ApplicationFailure,
  condition,
  getExternalWorkflowHandle,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AttemptInput, AttemptResult } from '../activities/messages';
import type { MessageStatus } from '../domain/message';
import { formatDuration } from '../domain/retry';
import { addressedHere } from '../temporal/handoffs/ids';
import { rateLimiterWorkflowId, throttleSignal } from '../temporal/handoffs/rate-limiter';
import {
  cancelSignal,
  permitGrantedSignal,
  sendStateQuery,
  settingsChangedSignal,
  type SendMessageInput,
} from '../temporal/handoffs/send-message';
import { SendStatusKey } from '../temporal/search-attributes';

/**
 * One workflow per outbound message (`send-<tenant>:<id>`, src/temporal/handoffs/send-message.ts): suppression check → rate-limit permit
 * → SMTP attempt → classify → retry, wait for credentials, or finish. Every status is written to
 * the store by the activities and mirrored to the SendStatus search attribute for the Web UI.
 */

// Local activities: they run inside the workflow task on the worker that holds the workflow, so a
// message costs Temporal one workflow task instead of two plus an activity task (the benchmark's
// bottleneck was the server). A worker dying mid-activity shows as a workflow-task timeout (10 s)
// and the activity runs again on another worker: safe, because attempts are recorded by number
// and guarded by the message lock (docs/sending.md). SMTP verdicts are values, not exceptions;
// these retries only cover infrastructure trouble (store down).
const acts = proxyLocalActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  localRetryThreshold: '1 minute',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '1 minute',
    backoffCoefficient: 2,
    nonRetryableErrorTypes: ['NotFoundError', 'ValidationError'],
  },
});

/**
 * The same attempt as a regular activity, when the local one found the tenant at its cap of SMTP
 * attempts on this worker (src/activities/send-gate.ts): a regular activity waits for its turn between
 * retries (`BusyError` with a retry delay), holding no slot, where a local one would hold a
 * workflow-task slot of the send queue for as long as the tenant's server stalls. Heartbeats let
 * Temporal notice a worker that died mid-transaction within the heartbeat timeout.
 */
const queued = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    maximumInterval: '1 minute',
    backoffCoefficient: 2,
    nonRetryableErrorTypes: ['NotFoundError', 'ValidationError'],
  },
});

const CREDENTIAL_RECHECK_MS = 15 * 60_000;
/**
 * Command-sequence changes of this workflow, each guarded by patched() (docs/decisions.md, "Changing
 * workflow code"); runs recorded before a change replay down its old path.
 */
const NO_INVISIBLE_SENDING_UPSERT = 'send-no-invisible-sending-upsert';
/** A local attempt refused by the tenant's cap is made again as a regular activity (`queued`). */
const TENANT_BUSY_ACTIVITY = 'send-tenant-busy-activity';
/** The credentials wait ends when the tenant's settingsVersion moved past the failing attempt's. */
const CREDENTIALS_VERSION_WAIT = 'send-credentials-version-wait';
/** One credentials deadline per message, from its first credentials failure. */
const ONE_CREDENTIALS_DEADLINE = 'send-one-credentials-deadline';
const PERMIT_REASK_MS = 60 * 60_000;

export async function sendMessage(input: SendMessageInput): Promise<{ status: MessageStatus }> {
  let status: MessageStatus = 'queued';
  let attempts = 0;
  let cancelled = false;
  let woken = false;
  let grantedAt: number | null = null;
  let credentialsDeadline: number | null = null;
  // A signal addressed to another message (a mistaken or hostile caller) changes nothing here.
  const forMe = (to: Parameters<typeof addressedHere>[0]) => addressedHere(to, input.tenantId, input.id);
  setHandler(cancelSignal, (to) => {
    if (forMe(to)) cancelled = true;
  });
  setHandler(settingsChangedSignal, (to) => {
    if (forMe(to)) woken = true;
  });
  setHandler(permitGrantedSignal, ({ grantedAt: at }) => {
    grantedAt = at;
  });
  setHandler(sendStateQuery, () => ({ status, attempts }));

  const show = (s: MessageStatus) => {
    status = s;
    upsertSearchAttributes([{ key: SendStatusKey, value: s }]);
  };
  // Every path out of the workflow goes through here: the message's case is told the outcome (sent /
  // delivery failure) by the attempt that ended the message or else by notifyCaseOfDelivery. The
  // product's message.* events are appended by the activities that record the outcome
  // (src/activities/message-events.ts).
  const end = async (s: MessageStatus, reason: string, record: boolean, caseNotified = false) => {
    if (record) await acts.finishMessage(input.id, s, reason);
    show(s);
    // An attempt that ended the message told the case itself (it had the document in hand).
    if (!caseNotified) await acts.notifyCaseOfDelivery(input.tenantId, input.id, s, reason);
    return { status: s };
  };

  if (input.sendAt !== undefined && input.sendAt > Date.now()) {
    show('scheduled');
    await condition(() => cancelled, input.sendAt - Date.now());
  }
  if (cancelled) return end('cancelled', 'cancelled before sending', true);

  // The first attempt runs inside startDelivery, a local activity of the same workflow task that then
  // upserts the outcome: a `sending` upserted here reached Temporal together with the final status, so
  // the Web UI never showed it, and every message paid a search-attribute write for it. (Only a first
  // attempt outlasting the task's heartbeat, about 8 s, made it visible; such a message shows its
  // start status, `queued`, meanwhile; its store status, the API's, is `sending` all along.) A
  // rate-limited tenant's message is not sending yet: it waits for a permit, and the loop shows
  // `sending` right before the attempt, after that wait's task boundary, where it can be seen.
  if (patched(NO_INVISIBLE_SENDING_UPSERT)) status = 'sending';
  else show('sending');
  const firstInput = {
    tenantId: input.tenantId,
    id: input.id,
    attempt: 1,
    permitGrantedAt: null,
    permitMarginMs: input.permitMarginMs,
    policy: input.policy,
    elapsedMs: 0,
    failuresSoFar: 0,
  };
  /**
   * Only a result that says the tenant was busy issues a command here, so runs that never meet a busy
   * tenant record no marker; a history holding a `tenant_busy` result was written by this code and
   * holds the marker right after it.
   */
  const madeSomewhere = async (r: AttemptResult, attemptInput: AttemptInput): Promise<AttemptResult> => {
    if (r.next.kind !== 'tenant_busy') return r;
    if (!patched(TENANT_BUSY_ACTIVITY)) throw new Error('a tenant_busy result in a history without its patch marker');
    return queued.attemptDelivery(attemptInput);
  };
  const start = await acts.startDelivery(firstInput);
  const prep = start.prep;
  if (prep.done) return end(prep.done.status, prep.done.reason, false);

  let firstAttemptAt: number | null = null;
  let failures = 0;
  let pending: AttemptResult | undefined = start.first;
  if (pending) {
    attempts = 1;
    firstAttemptAt = Date.now();
  }
  for (;;) {
    if (cancelled) return end('cancelled', 'cancelled through the API', true);

    if (!pending && prep.rules.length > 0) {
      grantedAt = null;
      await acts.requestPermit(
        input.tenantId,
        workflowInfo().workflowId,
        prep.pendingRecipients,
        prep.rules,
        input.permitMarginMs,
        input.acceptedAt,
      );
      // Most permits come at once; only a real wait is worth a status change.
      if (!(await condition(() => grantedAt !== null || cancelled, '2 seconds'))) {
        show('waiting_rate_limit');
        await acts.setMessageStatus(input.id, 'waiting_rate_limit');
        while (!(await condition(() => grantedAt !== null || cancelled, PERMIT_REASK_MS))) {
          // Re-asking is deduplicated by the limiter; it only matters if the limiter was lost.
          await acts.requestPermit(
            input.tenantId,
            workflowInfo().workflowId,
            prep.pendingRecipients,
            prep.rules,
            input.permitMarginMs,
            input.acceptedAt,
          );
        }
      }
      if (cancelled) return end('cancelled', 'cancelled while waiting for a rate-limit slot', true);
    }

    let r: AttemptResult;
    if (pending) {
      r = await madeSomewhere(pending, firstInput);
      pending = undefined;
    } else {
      show('sending');
      attempts++;
      firstAttemptAt ??= Date.now();
      const attemptInput: AttemptInput = {
        tenantId: input.tenantId,
        id: input.id,
        attempt: attempts,
        permitGrantedAt: prep.rules.length > 0 ? grantedAt : null,
        permitMarginMs: input.permitMarginMs,
        policy: input.policy,
        elapsedMs: Date.now() - firstAttemptAt,
        failuresSoFar: failures,
      };
      r = await madeSomewhere(await acts.attemptDelivery(attemptInput), attemptInput);
    }
    const next = r.next;
    switch (next.kind) {
      case 'done':
        return end(next.status, next.reason, false, r.caseNotified === true);
      case 'permit_expired':
        attempts--;
        continue;
      case 'retry': {
        failures++;
        show('retrying');
        if (next.cls === 'throttled' && prep.rules.length > 0) {
          // Push the tenant's next slots back, not just this message. A limiter that is not running
          // (ended idle) has no slots to push back: the next request starts a fresh one, so a failed
          // signal is nothing to act on; this message retries after its own delay either way.
          await getExternalWorkflowHandle(rateLimiterWorkflowId(input.tenantId))
            .signal(throttleSignal, { untilMs: Date.now() + input.policy.throttlePauseMs })
            .catch(() => undefined);
        }
        await condition(() => cancelled, next.delayMs);
        continue;
      }
      case 'wait_credentials': {
        show('waiting_credentials');
        // A message that fails on credentials again after a settings change keeps its first deadline:
        // a fresh one per failure let a tenant that keeps changing wrong settings hold it for ever.
        const deadline = patched(ONE_CREDENTIALS_DEADLINE)
          ? (credentialsDeadline ??= Date.now() + input.policy.credentialsWaitMs)
          : Date.now() + input.policy.credentialsWaitMs;
        const versionAtFailure = r.settingsVersion;
        if (patched(CREDENTIALS_VERSION_WAIT)) {
          // The wait ends when the tenant's settings are no longer those the attempt failed with. A
          // signal only says "look now": one that came during the attempt (or a change made before
          // the message was stored as waiting, which no signal reaches) is seen by the first look.
          for (;;) {
            woken = false;
            if ((await acts.tenantSettingsVersion(input.tenantId)) !== versionAtFailure) break;
            const left = deadline - Date.now();
            if (left <= 0) {
              return end(
                'failed',
                `credentials or settings were not fixed within ${formatDuration(input.policy.credentialsWaitMs)}; ${next.reason}`,
                true,
              );
            }
            await condition(() => woken || cancelled, Math.min(left, CREDENTIAL_RECHECK_MS));
            if (cancelled) break;
          }
          continue;
        }
        woken = false;
        for (;;) {
          const left = deadline - Date.now();
          if (left <= 0) {
            return end(
              'failed',
              `credentials or settings were not fixed within ${formatDuration(input.policy.credentialsWaitMs)}; ${next.reason}`,
              true,
            );
          }
          if (await condition(() => woken || cancelled, Math.min(left, CREDENTIAL_RECHECK_MS))) break;
          // A missed signal must not strand the message: look at the tenant now and then.
          if ((await acts.tenantSettingsVersion(input.tenantId)) !== versionAtFailure) break;
        }
        continue;
      }
      default:
        throw ApplicationFailure.nonRetryable(`unknown next step ${JSON.stringify(next)}`, 'InternalError');
    }
  }
}
