import { reasonFromStatus, reasonFromText, statusIn, type BounceReason } from './mail/reasons';

/**
 * What Cartero does about one bounced, delayed or complained recipient (docs/bounces.md "Consequences"). Two
 * different questions:
 * - hard: the address is dead; suppress it (with the evidence kept) so no later message goes to it;
 * - permanent: this message will not get through to it; stop retrying this message.
 * A disabled mailbox is permanent for the message but not a dead address; a full mailbox is neither; a refusal
 * about the sender (policy, spam, blocklists, relaying, SPF/DKIM/DMARC, rate and quota limits) says something about
 * the tenant, not the recipient, so it never suppresses: the tenant is told instead.
 */
export type Consequence =
  /** Dead address: suppress it, stop this message. */
  | 'suppress'
  /** Complaint: the person asked not to get mail from the tenant; suppress. */
  | 'suppress-complaint'
  /** This message cannot reach this recipient (disabled mailbox, too big, content, expired, filtered): stop it, keep the address. */
  | 'stop-message'
  /** Temporary for this message (full mailbox, greylisting, DNS or network trouble, delays): retry, never suppress. */
  | 'retry'
  /** Refused because of the sender (policy, spam, blocklist, relaying, authentication): stop it, tell the tenant. */
  | 'tell-tenant'
  /** The tenant hit a sending limit (rate, daily quota): the message waits until the window resets; tell the tenant. */
  | 'pause-tenant';

export interface BounceConsequence {
  hard: boolean;
  permanent: boolean;
  consequence: Consequence;
}

/** The address itself is dead. */
const DEAD_ADDRESS: ReadonlySet<BounceReason> = new Set(['userunknown', 'hostunknown', 'hasmoved', 'notaccept']);
/** Refusals about the sender, not the recipient. */
const ABOUT_TENANT: ReadonlySet<BounceReason> = new Set([
  'norelaying',
  'rejected',
  'policyviolation',
  'spamdetected',
  'blocked',
  'authfailure',
  'securityerror',
]);
/** Sending limits: rate and quota refusals. */
const LIMITS: ReadonlySet<BounceReason> = new Set(['ratelimited', 'toomanyconn', 'exceedlimit']);
/** Permanent for this message, the address is fine. */
const THIS_MESSAGE: ReadonlySet<BounceReason> = new Set(['suspend', 'mesgtoobig', 'contenterror', 'virusdetected', 'filtered', 'expired']);

/**
 * Gmail's and Google Workspace's sending-quota refusals (`550 5.4.5 Daily user sending limit exceeded`, `4.7.x …
 * limit exceeded`, `5.7.x … rate limit`): the tenant's quota, to wait out, whatever reason the text suggested.
 */
const QUOTA_TEXT =
  /sending (?:limit|quota)|(?:daily|hourly) (?:user )?(?:sending )?(?:limit|quota)|rate limit|limit exceeded|too many messages/i;

export interface ConsequenceInput {
  kind: 'bounce' | 'delay' | 'complaint';
  reason: BounceReason;
  /** Enhanced status code (RFC 3463), when known. */
  status: string | null;
  diagnostic: string | null;
}

/** Whether the notice says the failure is permanent: a 5.x.x status, or no status and no 4xx reply in the text. */
function failedPermanently(status: string | null, diagnostic: string | null): boolean {
  if (status) return status.startsWith('5');
  return !/(?:^|\D)4\d\d(?:\D|$)/.test(diagnostic ?? '');
}

export function consequenceOf(input: ConsequenceInput): BounceConsequence {
  if (input.kind === 'complaint') return { hard: true, permanent: true, consequence: 'suppress-complaint' };
  if (input.kind === 'delay') return { hard: false, permanent: false, consequence: 'retry' };
  const permanent = failedPermanently(input.status, input.diagnostic);
  const { reason } = input;
  if (input.status === '5.4.5' || LIMITS.has(reason) || (input.status?.startsWith('4.7') && QUOTA_TEXT.test(input.diagnostic ?? ''))) {
    return { hard: false, permanent: false, consequence: 'pause-tenant' };
  }
  if (DEAD_ADDRESS.has(reason))
    return permanent ? { hard: true, permanent: true, consequence: 'suppress' } : { hard: false, permanent: false, consequence: 'retry' };
  if (reason === 'mailboxfull') return { hard: false, permanent: false, consequence: 'retry' };
  if (ABOUT_TENANT.has(reason)) return { hard: false, permanent, consequence: permanent ? 'tell-tenant' : 'retry' };
  if (THIS_MESSAGE.has(reason))
    return {
      hard: false,
      permanent: reason === 'expired' || permanent,
      consequence: reason === 'expired' || permanent ? 'stop-message' : 'retry',
    };
  // networkerror, systemerror, syntaxerror, undefined: only the status tells.
  return { hard: false, permanent, consequence: permanent ? 'stop-message' : 'retry' };
}

/** Every reason, with what a permanent (5.x.x) failure for it leads to: the table in docs/bounces.md. */
export function consequenceTable(reasons: readonly BounceReason[]): Array<{ reason: BounceReason } & BounceConsequence> {
  return reasons.map((reason) => ({ reason, ...consequenceOf({ kind: 'bounce', reason, status: '5.0.0', diagnostic: null }) }));
}

/**
 * Sending-limit refusals that last until the provider's daily window resets (Gmail's and Google Workspace's
 * `550 5.4.5 Daily user sending limit exceeded`, Microsoft 365's `5.1.90` daily recipient limit): a long pause,
 * not a short throttle.
 */
const DAILY_QUOTA_TEXT = /daily|per day|24 ?h|quota|5\.1\.90/i;

/** What one SMTP reply (RCPT TO, MAIL FROM, DATA) leads to: the same table as a notice, read from the reply. */
export interface ReplyConsequence extends BounceConsequence {
  reason: BounceReason;
  /** The enhanced status code used (the reply's, or its class with `.0.0` when it had none). */
  status: string;
  /** Which rule decided, kept as evidence on suppressions: `<consequence>/<reason>`, e.g. `suppress/userunknown`. */
  rule: string;
  /** For `pause-tenant`: a daily quota (wait for the window to reset) or a rate limit (a short pause). */
  pause?: 'daily' | 'rate';
}

/**
 * Reads a server's reply with the consequence table (docs/bounces.md "Consequences"). The reply code decides
 * permanent or temporary (an enhanced code of the other class is read as the reply's class: some servers answer
 * `550 4.2.2`); the text, then the enhanced code, the reason. A reply without a code (the connection failed) is
 * a network error: retry.
 */
export function consequenceOfReply(reply: { code?: number; enhanced?: string; text: string }): ReplyConsequence {
  if (reply.code === undefined) {
    return { hard: false, permanent: false, consequence: 'retry', reason: 'networkerror', status: '4.4.0', rule: 'retry/networkerror' };
  }
  const cls = String(reply.code).charAt(0);
  const found = reply.enhanced ?? statusIn(reply.text);
  const status = found ? `${cls}${found.slice(1)}` : `${cls}.0.0`;
  let reason: BounceReason = reasonFromText(reply.text) ?? reasonFromStatus(status) ?? 'undefined';
  // RFC 3463 x.7.x is "security or policy": a code the registry does not name (Microsoft 365's 5.7.60 "send as"
  // refusal) is still about the sender.
  if (reason === 'undefined' && status.charAt(2) === '7') reason = 'policyviolation';
  const c = consequenceOf({ kind: 'bounce', reason, status, diagnostic: reply.text });
  // A quota refusal whose text read as another reason ("quota exceeded" reads as a full mailbox) is a limit.
  if (c.consequence === 'pause-tenant' && !LIMITS.has(reason)) reason = 'ratelimited';
  const out: ReplyConsequence = { ...c, reason, status, rule: `${c.consequence}/${reason}` };
  if (c.consequence === 'pause-tenant') out.pause = status === '5.4.5' || DAILY_QUOTA_TEXT.test(reply.text) ? 'daily' : 'rate';
  return out;
}
