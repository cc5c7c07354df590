import { continueAsNew, log, proxyActivities, sleep, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';

/**
 * The safety net under the outbox handover (`webhook-sweeper-<task queue>`, started by every
 * worker, one per deployment): hands over events whose append-time handover failed (Temporal
 * unreachable, process died), then sleeps for WEBHOOK_SWEEP_INTERVAL_MS. A failed pass is logged
 * and the next one tries again; the sweeper itself never ends.
 */
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', backoffCoefficient: 2, maximumAttempts: 5 },
});

export async function webhookSweeper(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    let nextInMs = 60_000;
    try {
      nextInMs = (await acts.sweepUndispatchedEvents()).nextInMs;
    } catch (err) {
      log.warn('webhook sweep failed; trying again next interval', { err: (err as Error).message });
    }
    await sleep(nextInMs);
    if (workflowInfo().continueAsNewSuggested) break;
  }
  await continueAsNew<typeof webhookSweeper>();
}
