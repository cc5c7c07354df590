import {
  ActivityCancellationType,
  CancellationScope,
  condition,
  continueAsNew,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { failedRetryDelayMs, type WatchOutcome } from '../domain/bounce-mailbox-watch';
import { watchSettingsChangedSignal, type BounceMailboxWatchInput } from '../temporal/handoffs/bounce-mailbox-watch';
import { addressedHere } from '../temporal/handoffs/ids';

/**
 * `imap-<tenant>` (src/temporal/handoffs/bounce-mailbox-watch.ts): keeps the tenant's bounce-mailbox watch running (docs/bounces.md, "IMAP watch").
 * Each run of the heartbeating activity lasts until the settings are deleted (the workflow ends),
 * changed or rotated (it runs again), or a problem needs the tenant (it waits 1 min … 1 h, or less
 * if the settings change). A dead worker stops heartbeating; Temporal runs the activity again on
 * another one. `settingsChanged` (sent by PUT and DELETE) cancels the current run so the next one
 * reads the new settings at once.
 */

const { watchBounceMailbox } = proxyActivities<Activities>({
  // The activity ends itself every WATCH_ROTATE_MS (30 min); this is only the outer bound.
  startToCloseTimeout: '40 minutes',
  heartbeatTimeout: '20 seconds',
  // Wait for the IMAP connection to be closed before the next run opens another one.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
});

export async function bounceMailboxWatch(input: BounceMailboxWatchInput): Promise<void> {
  let changed = false;
  let scope: CancellationScope | null = null;
  setHandler(watchSettingsChangedSignal, (to) => {
    if (!addressedHere(to, input.tenantId)) return;
    changed = true;
    scope?.cancel();
  });
  let failures = input.failures ?? 0;
  for (let run = 0; run < 100 && !workflowInfo().continueAsNewSuggested; run++) {
    changed = false;
    let outcome: WatchOutcome | null = null;
    const current = new CancellationScope();
    scope = current;
    try {
      outcome = await current.run(() => watchBounceMailbox({ tenantId: input.tenantId }));
    } catch (err) {
      // Cancelled because the settings changed: run again with the new ones.
      if (!(changed && isCancellation(err))) throw err;
    } finally {
      scope = null;
    }
    if (!outcome) {
      failures = 0;
      continue;
    }
    if (outcome.kind === 'stopped') return;
    if (outcome.kind === 'rotate') {
      failures = 0;
      continue;
    }
    failures++;
    const delay = failedRetryDelayMs(failures);
    log.warn('bounce mailbox watch failed; waiting before trying again', {
      tenantId: input.tenantId,
      error: outcome.error,
      delayMs: delay,
    });
    if (await condition(() => changed, delay)) failures = 0;
  }
  await continueAsNew<typeof bounceMailboxWatch>({ tenantId: input.tenantId, failures });
}
