import type { Client } from '@temporalio/client';
import type { MessageRepository } from '../store/messages';
import { signalSettingsChanged } from './handoffs/send-message';

/**
 * After a tenant's credentials or settings change (PATCH, consent, a token obtained again), wake
 * every send waiting for them. The store (not Temporal visibility, which lags) says which are
 * waiting; the workflows also re-check on their own every 15 minutes, so a lost signal delays but
 * never strands a message.
 */
export async function wakeWaitingSends(
  messages: MessageRepository,
  client: Client,
  tenantId: string,
  onError: (workflowId: string, err: Error) => void,
): Promise<number> {
  const waiting = await messages.waitingForCredentials(tenantId);
  await Promise.all(
    waiting.map((m) =>
      signalSettingsChanged(client, m.workflowId, tenantId, m._id).catch((err: unknown) => onError(m.workflowId, err as Error)),
    ),
  );
  return waiting.length;
}
