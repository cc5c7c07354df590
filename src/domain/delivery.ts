import type { MessageStatus, RecipientStatus } from './message';
import { formatDuration, retryDelayMs, type RetryPolicy } from './retry';
import { classifyRecipientReply, type ReplyClass, type SmtpReply, formatReply } from './smtp-reply';

/**
 * What one SMTP attempt did, and what happens next. Pure, so the whole decision table is unit
 * tested; the SMTP activity records the result and the workflow follows `next`.
 */
export interface AttemptOutcome {
  /** Class of the transaction as a whole (connect, AUTH, MAIL FROM, DATA). */
  cls: ReplyClass;
  reply: SmtpReply;
  /** RCPT TO replies, for the recipients the server answered individually. */
  recipientReplies: Array<{ address: string; reply: SmtpReply }>;
}

export interface RecipientState {
  address: string;
  kind: 'to' | 'cc' | 'bcc';
  status: RecipientStatus;
  reply?: string;
}

export type NextStep =
  | { kind: 'done'; status: MessageStatus; reason: string }
  | { kind: 'retry'; delayMs: number; cls: ReplyClass; reason: string }
  | { kind: 'wait_credentials'; cls: 'auth' | 'tls'; reason: string };

export interface Decision {
  recipients: RecipientState[];
  /** Addresses that bounced permanently in this attempt (to be suppressed). */
  bounced: string[];
  /** The status to record now (terminal, or retrying / waiting_credentials). */
  status: MessageStatus;
  next: NextStep;
}

/** Final status from recipient states once nothing is pending. */
export function finalStatus(recipients: RecipientState[]): MessageStatus {
  const sent = recipients.filter((r) => r.status === 'sent').length;
  const bounced = recipients.filter((r) => r.status === 'bounced').length;
  if (sent === recipients.length) return 'sent';
  if (sent > 0) return 'partially_sent';
  if (bounced > 0 && bounced === recipients.filter((r) => r.status !== 'suppressed').length) return 'bounced';
  return 'failed';
}

export function decideAfterAttempt(
  recipients: RecipientState[],
  attempted: string[],
  outcome: AttemptOutcome,
  ctx: { policy: RetryPolicy; elapsedMs: number; failuresSoFar: number; random: () => number },
): Decision {
  const attemptedSet = new Set(attempted.map((a) => a.toLowerCase()));
  const replyFor = new Map(outcome.recipientReplies.map((r) => [r.address.toLowerCase(), r.reply]));
  const bounced: string[] = [];
  const txReply = formatReply(outcome.reply);

  const next: RecipientState[] = recipients.map((r) => {
    if (!attemptedSet.has(r.address.toLowerCase()) || r.status !== 'pending') return r;
    const own = replyFor.get(r.address.toLowerCase());
    if (own) {
      const rc = classifyRecipientReply(own);
      if (rc === 'bounced') {
        bounced.push(r.address);
        return { ...r, status: 'bounced', reply: formatReply(own) };
      }
      if (rc === 'deferred') return { ...r, reply: formatReply(own) };
      // Accepted at RCPT; delivered only if the transaction as a whole was.
      return outcome.cls === 'accepted' ? { ...r, status: 'sent', reply: txReply } : { ...r, reply: formatReply(own) };
    }
    if (outcome.cls === 'accepted') return { ...r, status: 'sent', reply: txReply };
    if (outcome.cls === 'permanent') return { ...r, status: 'failed', reply: txReply };
    return { ...r, reply: txReply };
  });

  const pending = next.filter((r) => r.status === 'pending');
  if (pending.length === 0) {
    const status = finalStatus(next);
    const reason =
      status === 'sent'
        ? 'accepted by the server'
        : status === 'partially_sent'
          ? `accepted for ${next.filter((r) => r.status === 'sent').length} of ${next.length} recipients; the others bounced or were suppressed`
          : status === 'bounced'
            ? 'every recipient was refused permanently'
            : `refused permanently: ${txReply}`;
    return { recipients: next, bounced, status, next: { kind: 'done', status, reason } };
  }

  if (outcome.cls === 'auth' || outcome.cls === 'tls') {
    return {
      recipients: next,
      bounced,
      status: 'waiting_credentials',
      next: {
        kind: 'wait_credentials',
        cls: outcome.cls,
        reason: outcome.cls === 'auth' ? `authentication refused: ${txReply}` : `TLS failed: ${txReply}`,
      },
    };
  }

  // Something is still pending: the transaction failed transiently, or some RCPTs got a 4xx.
  const cls: ReplyClass = outcome.cls === 'accepted' || outcome.cls === 'permanent' ? 'transient' : outcome.cls;
  if (ctx.elapsedMs >= ctx.policy.giveUpMs) {
    const failed = next.map((r) => (r.status === 'pending' ? { ...r, status: 'failed' as const } : r));
    const status = finalStatus(failed);
    const reason = `gave up after ${formatDuration(ctx.elapsedMs)} of temporary failures; last reply: ${txReply}`;
    return { recipients: failed, bounced, status, next: { kind: 'done', status, reason } };
  }
  const delayMs = retryDelayMs(ctx.policy, cls, ctx.failuresSoFar + 1, ctx.random);
  return { recipients: next, bounced, status: 'retrying', next: { kind: 'retry', delayMs, cls, reason: `temporary failure: ${txReply}` } };
}
