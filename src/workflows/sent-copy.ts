import { ActivityFailure, ApplicationFailure, proxyActivities } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { SentCopyInput } from '../temporal/handoffs/sent-copy';

/**
 * The Sent-folder copy of one sent message (docs/sending.md, "Sent copy"). The APPEND is retried
 * with backoff for up to a day (the tenant's IMAP server down, a token being refreshed); what
 * retrying cannot fix (login refused, no `\Sent` folder) fails at once. Either way the outcome is
 * written on the message. Nothing here can send mail.
 */
const { appendToSent } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '30 seconds', backoffCoefficient: 2, maximumInterval: '1 hour' },
});
const { recordSentCopyFailure } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumInterval: '1 minute' },
});

export async function sentCopy(input: SentCopyInput): Promise<void> {
  try {
    await appendToSent(input);
  } catch (err) {
    if (!(err instanceof ActivityFailure)) throw err;
    const cause = err.cause;
    const reason = cause instanceof ApplicationFailure || cause instanceof Error ? cause.message : err.message;
    await recordSentCopyFailure(input, reason);
  }
}
