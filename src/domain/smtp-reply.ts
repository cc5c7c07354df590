/**
 * What an SMTP outcome means for a message (DESIGN.md "Reply classes"). Pure: the SMTP activity
 * turns nodemailer's result into an SmtpOutcome, this decides, the workflow acts.
 */
export type ReplyClass =
  /** 250: the server took responsibility for the message. */
  | 'accepted'
  /** 421/450/451/452/454, connection and timeout errors: try again later. */
  | 'transient'
  /** 450/451 that look like greylisting: try again after the greylisting delay, not sooner. */
  | 'greylisted'
  /** 421 / 4.7.x / "rate limited": the tenant's server is throttling us; push its slots back. */
  | 'throttled'
  /** 552/554 and other 5xx for the whole message: fail. */
  | 'permanent'
  /** 535/534/530 and XOAUTH2 refusals: wait for new credentials. */
  | 'auth'
  /** TLS handshake or certificate problems: wait for fixed settings. */
  | 'tls';

export interface SmtpReply {
  /** Numeric reply code when the server answered (e.g. 550); absent for network errors. */
  code?: number;
  /** Enhanced status code when present (e.g. 5.1.1). */
  enhanced?: string;
  /** The server's text, verbatim, or the network error. */
  text: string;
}

const GREYLIST_PATTERN = /grey ?list|gray ?list|try again later|4\.2\.0|4\.7\.1.*(?:later|policy)|deferred.*later/i;
const THROTTLE_PATTERN = /rate.?limit|too many (?:messages|connections|recipients)|throttl|slow down|exceeded.*(?:limit|quota)/i;

export function enhancedCodeOf(text: string): string | undefined {
  const m = /\b([245]\.\d{1,3}\.\d{1,3})\b/.exec(text);
  return m?.[1];
}

/** Classifies a reply to the whole transaction (connect, AUTH, MAIL FROM, DATA). */
export function classifyReply(reply: SmtpReply): ReplyClass {
  const code = reply.code;
  const enhanced = reply.enhanced ?? enhancedCodeOf(reply.text);
  if (code === undefined) return 'transient';
  if (code >= 200 && code < 300) return 'accepted';
  if (code === 535 || code === 534 || code === 530 || code === 538 || (code === 454 && /auth/i.test(reply.text))) return 'auth';
  if (code >= 400 && code < 500) {
    if ((code === 450 || code === 451) && GREYLIST_PATTERN.test(reply.text)) return 'greylisted';
    if (code === 421 || enhanced?.startsWith('4.7.') || THROTTLE_PATTERN.test(reply.text)) return 'throttled';
    return 'transient';
  }
  return code >= 500 ? 'permanent' : 'transient';
}

/** Reply text for records: code + text, trimmed to a sane length. */
export function formatReply(reply: SmtpReply): string {
  const t = reply.text.trim();
  const s = reply.code !== undefined && !t.startsWith(String(reply.code)) ? `${reply.code} ${t}` : t;
  return s.length > 1000 ? `${s.slice(0, 997)}...` : s;
}
