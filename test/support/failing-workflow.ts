import { proxyActivities } from '@temporalio/workflow';

/**
 * A workflow whose one activity fails with the message it is given, once, so the workflow fails
 * with it too (test/integration/attack-failure-encryption.test.ts: what history shows of that).
 */
const acts = proxyActivities<{ explode(secret: string): Promise<void> }>({
  startToCloseTimeout: '10 seconds',
  retry: { maximumAttempts: 1 },
});

export async function failingWorkflow(secret: string): Promise<void> {
  await acts.explode(secret);
}
