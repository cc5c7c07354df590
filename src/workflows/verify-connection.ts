import { proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ProbeResult } from '../domain/smtp-probe';

// A diagnosis must reflect one attempt: retrying would hide a flaky server from the person onboarding it.
const { verifySmtpConnection } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 1 },
});

export async function verifyTenantConnection(tenantId: string): Promise<ProbeResult> {
  return verifySmtpConnection(tenantId);
}
