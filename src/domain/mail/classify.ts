import { parseFeedbackReport } from './arf';
import { autoReplyRule } from './autoreply';
import { parseDeliveryStatus } from './dsn';
import { addressIn, fieldValue, headerFields, messageIdIn } from './fields';
import { parseTextNdr } from './ndr-text';
import { outcomeFor, type BounceReason } from './reasons';

/**
 * One received message, reduced to what classification needs. `headers` are the top-level headers
 * in order; `parts` are the non-body MIME parts (attachments, message/delivery-status,
 * message/rfc822, text/rfc822-headers, message/feedback-report), content decoded.
 * src/inbound/mime.ts mailForClassification builds it from any received message (raw MIME or a
 * provider's parsed fields).
 */
export interface MailForClassification {
  headers: ReadonlyArray<{ name: string; value: string }>;
  subject: string;
  from: string | null;
  text: string;
  html: string | null;
  parts: ReadonlyArray<{ contentType: string; filename: string | null; content: Buffer }>;
}

export type MailKind = 'bounce' | 'complaint' | 'autoreply' | 'human' | 'delay';

export interface MailVerdict {
  kind: MailKind;
  /** The rule that decided, named in docs/bounces.md. */
  rule: string;
  /** Failed recipients (bounce), delayed recipients (delay), complained recipients (complaint). */
  bounces: Array<{ recipient: string; status: string | null; hard: boolean; reason: BounceReason; diagnostic: string | null }>;
  /** Message-ID of the message this one reports on or answers, with angle brackets. */
  originalMessageId: string | null;
}

const RETURNED_TYPES = new Set([
  'message/rfc822',
  'text/rfc822-headers',
  'message/global',
  'message/global-headers',
  'message/rfc822-headers',
]);
const BOUNCE_SENDER = /^(?:mailer-daemon|mail-daemon|mailerdaemon|postmaster|mdaemon|mail delivery (?:subsystem|system))\b/i;
const BOUNCE_SUBJECT =
  /undeliver(?:able|ed)|delivery (?:status notification|failure|has failed|failed|problem|incomplete)|returned mail|mail delivery (?:failed|failure|system)|failure notice|could not be delivered|non[- ]?remis|no se (?:ha podido|pudo) entregar|(?:mensaje|correo) no entregado|devuelto|unzustellbar|nondeliverable/i;

/**
 * What the classifier reads of a message (docs/bounces.md "Windows"): the first and last 64 KiB of the text and of
 * each part, the first 100 parts and the first 1000 headers, each header value cut at 4 KiB. Every signal it looks
 * for sits at the top of a text (the NDR sentence and its recipients, the delivery-status groups, a returned
 * message's headers, a vacation notice) or is short; past these windows more of the message only adds work.
 */
export const CLASSIFY_WINDOW = { textChars: 64 * 1024, parts: 100, headers: 1000, headerValueChars: 4096 } as const;

/** Head and tail of a long text, a blank line between them so no line or field group spans the cut. */
function windowOf(text: string): string {
  const w = CLASSIFY_WINDOW.textChars;
  return text.length <= 2 * w ? text : `${text.slice(0, w)}\n\n${text.slice(-w)}`;
}

function windowOfBytes(content: Buffer): Buffer {
  const w = CLASSIFY_WINDOW.textChars;
  return content.length <= 2 * w ? content : Buffer.concat([content.subarray(0, w), Buffer.from('\n\n'), content.subarray(-w)]);
}

function classificationWindow(mail: MailForClassification): MailForClassification {
  const cap = CLASSIFY_WINDOW.headerValueChars;
  return {
    headers: mail.headers
      .slice(0, CLASSIFY_WINDOW.headers)
      .map((h) => (h.value.length > cap || h.name.length > cap ? { name: h.name.slice(0, cap), value: h.value.slice(0, cap) } : h)),
    subject: mail.subject.slice(0, cap),
    from: mail.from === null ? null : mail.from.slice(0, cap),
    text: windowOf(mail.text),
    html: null,
    parts: mail.parts
      .slice(0, CLASSIFY_WINDOW.parts)
      .map((p) => ({ contentType: p.contentType.slice(0, cap), filename: p.filename, content: windowOfBytes(p.content) })),
  };
}

const partText = (p: { content: Buffer }) => p.content.toString('utf8');
const typeOf = (p: { contentType: string }) => p.contentType.toLowerCase().split(';')[0]!.trim();

/**
 * Classifies a received message: bounce, delay notice, complaint, auto-reply or human (docs/bounces.md). Reads only
 * CLASSIFY_WINDOW of it, so its work is bounded whatever the message's size.
 */
export function classifyMail(received: MailForClassification): MailVerdict {
  const mail = classificationWindow(received);
  const returned = mail.parts.find((p) => RETURNED_TYPES.has(typeOf(p)));
  const returnedText = returned ? partText(returned) : null;
  const returnedHeaders = returnedText ? headerFields(returnedText) : [];
  const originalMessageId = messageIdIn(fieldValue(returnedHeaders, 'message-id')) ?? inlineMessageId(mail.text);
  const returnedRecipients = returnedAddresses(returnedHeaders);
  return classifyWindow(mail, returned, returnedText, originalMessageId, returnedRecipients.length === 1 ? returnedRecipients[0]! : null);
}

/**
 * To and Cc of the message a notice returns, when it carries one: the addresses we wrote to, which a report whose
 * Final-Recipient is missing or rewritten (forwarding, aliases) no longer names (src/domain/mail/combine.ts).
 */
export function returnedRecipients(received: MailForClassification): string[] {
  const mail = classificationWindow(received);
  const returned = mail.parts.find((p) => RETURNED_TYPES.has(typeOf(p)));
  return returned ? returnedAddresses(headerFields(partText(returned))) : [];
}

/** To and Cc addresses of the returned message's headers, at most 50. */
function returnedAddresses(headers: ReadonlyArray<{ name: string; value: string }>): string[] {
  const out: string[] = [];
  for (const h of headers) {
    const name = h.name.toLowerCase();
    if (name !== 'to' && name !== 'cc') continue;
    for (const piece of h.value.split(',')) {
      const a = addressIn(piece);
      if (a && !out.includes(a) && out.length < 50) out.push(a);
    }
  }
  return out;
}

function classifyWindow(
  mail: MailForClassification,
  returned: MailForClassification['parts'][number] | undefined,
  returnedText: string | null,
  originalMessageId: string | null,
  onlyRecipient: string | null,
): MailVerdict {
  const reportType = /report-type\s*=\s*"?([a-z-]+)/i.exec(fieldValue(mail.headers, 'content-type') ?? '')?.[1]?.toLowerCase();

  const feedback = mail.parts.find((p) => typeOf(p) === 'message/feedback-report');
  if (feedback || reportType === 'feedback-report')
    return complaint(mail, feedback ? partText(feedback) : '', returnedText, originalMessageId);

  // Outlook.com/Hotmail junk reports (JMRP, before ARF): no feedback-report part, the reported message attached whole
  // and marked by X-HmXmrOriginalRecipient, the mailbox that reported it.
  const returnedHeaders = returnedText ? headerFields(returnedText) : [];
  const jmrp = fieldValue(returnedHeaders, 'x-hmxmroriginalrecipient');
  if (jmrp !== null) {
    const recipient = addressIn(jmrp) ?? addressIn(fieldValue(returnedHeaders, 'to'));
    const bounces = recipient
      ? [{ recipient, status: null, hard: true, reason: 'spamdetected' as BounceReason, diagnostic: 'Outlook.com junk report (JMRP)' }]
      : [];
    return { kind: 'complaint', rule: 'jmrp', bounces, originalMessageId };
  }

  const statusPart = mail.parts.find((p) => /^message\/(?:global-)?delivery-status$/.test(typeOf(p)));
  const statusText = statusPart ? partText(statusPart) : /^Final-Recipient:/im.test(mail.text) ? mail.text : null;
  if (statusText) {
    const recipients = parseDeliveryStatus(statusText, onlyRecipient);
    const failed = recipients.filter((r) => r.action === 'failed').map((r) => r.bounce);
    if (failed.length) return { kind: 'bounce', rule: 'dsn-failed', bounces: failed, originalMessageId };
    const delayed = recipients.filter((r) => r.action === 'delayed').map((r) => r.bounce);
    if (delayed.length) return { kind: 'delay', rule: 'dsn-delayed', bounces: delayed, originalMessageId };
    // delivered / relayed / expanded: a success notice is machine mail, never a human reply.
    if (recipients.length) return { kind: 'autoreply', rule: 'dsn-success', bounces: [], originalMessageId };
  }

  const ndr = parseTextNdr(mail.text);
  if (ndr && (ndr.bounces.length || looksLikeBounce(mail))) {
    return { kind: ndr.delay ? 'delay' : 'bounce', rule: `ndr-${ndr.format}`, bounces: ndr.bounces, originalMessageId };
  }

  const failedHeader = fieldValue(mail.headers, 'x-failed-recipients');
  if (failedHeader) {
    const bounces = failedHeader
      .split(',')
      .map((a) => addressIn(a))
      .filter((a): a is string => a !== null)
      .map((recipient) => {
        const o = outcomeFor({ status: null, diagnostic: null, failed: true });
        return { recipient, status: o.status, hard: o.hard, reason: o.reason, diagnostic: null };
      });
    return { kind: 'bounce', rule: 'x-failed-recipients', bounces, originalMessageId };
  }

  if (looksLikeBounce(mail) && (returned || statusPart)) return { kind: 'bounce', rule: 'ndr-unparsed', bounces: [], originalMessageId };

  const auto = autoReplyRule(mail);
  const answered = messageIdIn(fieldValue(mail.headers, 'in-reply-to'));
  if (auto) return { kind: 'autoreply', rule: auto, bounces: [], originalMessageId: originalMessageId ?? answered };
  return { kind: 'human', rule: 'human', bounces: [], originalMessageId: answered };
}

function looksLikeBounce(mail: MailForClassification): boolean {
  const from = mail.from ?? '';
  return BOUNCE_SENDER.test(from) || BOUNCE_SUBJECT.test(mail.subject);
}

/** Returned headers pasted into the body (qmail, Exim, Yahoo, Domino): the first Message-ID line. */
function inlineMessageId(text: string): string | null {
  // A line start spelled out rather than /^\s*…/m: that \s* crosses line breaks, so every blank line would be
  // rescanned from each line start before it (quadratic on a body of blank lines).
  const m = /(?:^|[\n\r\u2028\u2029])[^\S\n\r\u2028\u2029]*Message-ID:\s*(<[^\s<>][^\s<>@]*@[^\s<>]+>)/i.exec(text);
  return m?.[1] ?? null;
}

/**
 * RFC 5965 feedback: `abuse`, `fraud`, `virus` and `other` are complaints about the message; a
 * `not-spam` report or an RFC 6591 `auth-failure` report is machine mail that asks nothing of us.
 */
function complaint(mail: MailForClassification, report: string, returned: string | null, originalMessageId: string | null): MailVerdict {
  const fb = parseFeedbackReport(report, returned);
  if (fb.feedbackType === 'not-spam' || fb.feedbackType === 'auth-failure') {
    return { kind: 'autoreply', rule: `arf-${fb.feedbackType}`, bounces: [], originalMessageId };
  }
  const bounces = fb.recipient
    ? [
        {
          recipient: fb.recipient,
          status: null,
          hard: true,
          reason: (fb.feedbackType === 'virus' ? 'virusdetected' : 'spamdetected') as BounceReason,
          diagnostic: `feedback-type: ${fb.feedbackType}`,
        },
      ]
    : [];
  return { kind: 'complaint', rule: `arf-${fb.feedbackType}`, bounces, originalMessageId };
}
