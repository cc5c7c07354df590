import { consequenceOfReply, type Consequence, type ReplyConsequence } from './bounce-consequence';
import type { MessageStatus, RecipientStatus } from './message';
import { DEFAULT_QUOTA_PAUSE_MS, formatDuration, retryDelayMs, type RetryPolicy } from './retry';
import { type ReplyClass, type SmtpReply, formatReply } from './smtp-reply';

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
  /** What the consequence table made of this recipient's refusal (docs/bounces.md "Consequences"). */
  refusal?: RecipientRefusal;
}

/** A refusal at RCPT TO (or of the whole transaction), as the consequence table read it: the evidence. */
export interface RecipientRefusal {
  reason: string;
  status: string;
  consequence: Consequence;
  hard: boolean;
  /** `<consequence>/<reason>`: the rule that decided. */
  rule: string;
}

/** The tenant's sending paused by a quota or rate refusal: every message of the tenant waits until `untilMs`. */
export interface TenantPause {
  kind: 'daily' | 'rate';
  untilMs: number;
  reply: string;
}

export type NextStep =
  | { kind: 'done'; status: MessageStatus; reason: string }
  | { kind: 'retry'; delayMs: number; cls: ReplyClass; reason: string }
  | { kind: 'wait_credentials'; cls: 'auth' | 'tls'; reason: string };

export interface Decision {
  recipients: RecipientState[];
  /** Addresses that bounced permanently in this attempt (to be suppressed). */
  bounced: string[];
  /** Recipients refused for reasons about the sender (relaying, policy, SPF/DKIM/DMARC…): the tenant is told. */
  refused: string[];
  /** Set when a reply said the tenant hit a sending limit: the tenant pauses, this message waits. */
  pause?: TenantPause;
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

const refusalOf = (c: ReplyConsequence): RecipientRefusal => ({
  reason: c.reason,
  status: c.status,
  consequence: c.consequence,
  hard: c.hard,
  rule: c.rule,
});

export function decideAfterAttempt(
  recipients: RecipientState[],
  attempted: string[],
  outcome: AttemptOutcome,
  ctx: { policy: RetryPolicy; elapsedMs: number; failuresSoFar: number; random: () => number; now?: number },
): Decision {
  const attemptedSet = new Set(attempted.map((a) => a.toLowerCase()));
  const replyFor = new Map(outcome.recipientReplies.map((r) => [r.address.toLowerCase(), r.reply]));
  const bounced: string[] = [];
  const refused: string[] = [];
  const txReply = formatReply(outcome.reply);
  let pause: TenantPause | undefined;
  const now = ctx.now ?? Date.now();
  const pauseFor = (c: ReplyConsequence, reply: string) => {
    if (c.consequence !== 'pause-tenant') return;
    const ms = c.pause === 'daily' ? (ctx.policy.quotaPauseMs ?? DEFAULT_QUOTA_PAUSE_MS) : ctx.policy.throttlePauseMs;
    if (!pause || now + ms > pause.untilMs) pause = { kind: c.pause ?? 'rate', untilMs: now + ms, reply };
  };
  // The whole transaction refused (MAIL FROM, DATA): the table decides whether that is permanent. A daily quota
  // or a full mailbox answered with a 5xx waits or retries; a refusal about the sender fails and tells the tenant.
  let txCls = outcome.cls;
  let txRefusal: RecipientRefusal | undefined;
  if (outcome.cls === 'permanent' || outcome.cls === 'throttled') {
    const c = consequenceOfReply(outcome.reply);
    pauseFor(c, txReply);
    if (outcome.cls === 'permanent') {
      if (c.consequence === 'pause-tenant') txCls = 'throttled';
      else if (c.consequence === 'retry') txCls = 'transient';
      else txRefusal = refusalOf({ ...c, hard: false });
    }
  }

  const next: RecipientState[] = recipients.map((r) => {
    if (!attemptedSet.has(r.address.toLowerCase()) || r.status !== 'pending') return r;
    const own = replyFor.get(r.address.toLowerCase());
    if (own && own.code !== undefined && (own.code < 200 || own.code >= 300)) {
      const c = consequenceOfReply(own);
      const reply = formatReply(own);
      pauseFor(c, reply);
      switch (c.consequence) {
        case 'suppress':
        case 'suppress-complaint':
          bounced.push(r.address);
          return { ...r, status: 'bounced', reply, refusal: refusalOf(c) };
        case 'stop-message':
          return { ...r, status: 'bounced', reply, refusal: refusalOf(c) };
        case 'tell-tenant':
          refused.push(r.address);
          return { ...r, status: 'failed', reply, refusal: refusalOf(c) };
        default:
          // retry, pause-tenant: the recipient stays pending (a 5xx "mailbox full" too).
          return { ...r, reply };
      }
    }
    if (own && own.code === undefined) return { ...r, reply: formatReply(own) };
    if (own) {
      // Accepted at RCPT; delivered only if the transaction as a whole was.
      if (txCls === 'accepted') return { ...r, status: 'sent', reply: txReply };
      if (txCls !== 'permanent') return { ...r, reply: formatReply(own) };
    }
    if (txCls === 'accepted') return { ...r, status: 'sent', reply: txReply };
    if (txCls === 'permanent') {
      if (txRefusal?.consequence === 'tell-tenant') refused.push(r.address);
      return { ...r, status: 'failed', reply: txReply, ...(txRefusal ? { refusal: txRefusal } : {}) };
    }
    return { ...r, reply: own ? formatReply(own) : txReply };
  });
  const extra = { refused, ...(pause ? { pause } : {}) };

  const pending = next.filter((r) => r.status === 'pending');
  if (pending.length === 0) {
    const status = finalStatus(next);
    const refusedAll = refused.length > 0 && next.every((r) => r.status !== 'sent' && r.status !== 'bounced');
    const reason =
      status === 'sent'
        ? 'accepted by the server'
        : status === 'partially_sent'
          ? `accepted for ${next.filter((r) => r.status === 'sent').length} of ${next.length} recipients; the others bounced, were refused or were suppressed`
          : status === 'bounced'
            ? 'every recipient was refused permanently'
            : refusedAll
              ? `refused for a reason about the sender (${next.find((r) => r.refusal)?.refusal?.reason ?? 'policy'}), not the recipients; nothing was suppressed: ${next.find((r) => r.refusal)?.reply ?? txReply}`
              : `refused permanently: ${txReply}`;
    return { recipients: next, bounced, ...extra, status, next: { kind: 'done', status, reason } };
  }

  if (txCls === 'auth' || txCls === 'tls') {
    return {
      recipients: next,
      bounced,
      ...extra,
      status: 'waiting_credentials',
      next: {
        kind: 'wait_credentials',
        cls: txCls,
        reason: txCls === 'auth' ? `authentication refused: ${txReply}` : `TLS failed: ${txReply}`,
      },
    };
  }

  // Something is still pending: the transaction failed transiently, some RCPTs got a 4xx, or the tenant is paused.
  const lastReply = pause?.reply ?? pending.find((r) => r.reply)?.reply ?? txReply;
  const cls: ReplyClass = pause ? 'throttled' : txCls === 'accepted' || txCls === 'permanent' ? 'transient' : txCls;
  if (ctx.elapsedMs >= ctx.policy.giveUpMs) {
    const failed = next.map((r) => (r.status === 'pending' ? { ...r, status: 'failed' as const } : r));
    const status = finalStatus(failed);
    const reason = `gave up after ${formatDuration(ctx.elapsedMs)} of temporary failures; last reply: ${lastReply}`;
    return { recipients: failed, bounced, ...extra, status, next: { kind: 'done', status, reason } };
  }
  if (pause) {
    // The message waits out the tenant's pause; the attempt after it finds the window reset (or pauses again).
    const delayMs = Math.max(retryDelayMs(ctx.policy, 'throttled', 1, ctx.random), pause.untilMs - now);
    const what = pause.kind === 'daily' ? "the tenant's daily sending quota is used up" : 'the tenant is sending too fast';
    return {
      recipients: next,
      bounced,
      ...extra,
      status: 'retrying',
      next: { kind: 'retry', delayMs, cls, reason: `${what}: sending paused for ${formatDuration(pause.untilMs - now)}; ${lastReply}` },
    };
  }
  const delayMs = retryDelayMs(ctx.policy, cls, ctx.failuresSoFar + 1, ctx.random);
  return {
    recipients: next,
    bounced,
    ...extra,
    status: 'retrying',
    next: { kind: 'retry', delayMs, cls, reason: `temporary failure: ${txReply}` },
  };
}
