import { addressIn, fieldGroups, fieldValue, headerFields } from './fields';

/** What an RFC 5965 feedback report says. */
export interface FeedbackReport {
  /** abuse, fraud, virus, other, not-spam, auth-failure (RFC 5965 §7.3, RFC 6591). */
  feedbackType: string;
  /** The complained recipient: Original-Rcpt-To, else the To of the returned message. */
  recipient: string | null;
}

/**
 * Reads a message/feedback-report body plus the returned message or headers. Original-Rcpt-To is
 * optional in RFC 5965 §3.2 and many providers redact it, so the To header of the returned message
 * (text/rfc822-headers or message/rfc822, §2 (d)) is the fallback.
 */
export function parseFeedbackReport(report: string, returned: string | null): FeedbackReport {
  const fields = fieldGroups(report).flat();
  const feedbackType = (fieldValue(fields, 'feedback-type') ?? 'other').toLowerCase().trim();
  const recipient =
    addressIn(fieldValue(fields, 'original-rcpt-to')) ?? (returned ? addressIn(fieldValue(headerFields(returned), 'to')) : null);
  return { feedbackType, recipient };
}
