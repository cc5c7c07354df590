import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ReconcileInput, ReconcileResult } from '../temporal/handoffs/reconciler';

/**
 * One pass of the reconciler, started by its Temporal Schedule (src/temporal/handoffs/reconciler.ts):
 * the activity does the work; a failed pass is retried a few times, then the next interval's pass
 * tries again.
 */
const { reconcileOrphans: pass } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '5 seconds', maximumInterval: '1 minute', maximumAttempts: 5 },
});

export async function reconcileOrphans(input: ReconcileInput): Promise<ReconcileResult> {
  return pass(input);
}
