import { feedbackCorroboration, matchRecipient, messageIdFromRfc, statusAfterBounces } from '../domain/bounce-match';
import type { CaseFeedbackSignal } from '../domain/cases';
import type { MailVerdict } from '../domain/mail/classify';
import { consequenceOf } from '../domain/bounce-consequence';
import type { EventRepository } from '../store/events';
import type { MessageDoc, MessageRepository, RecipientFeedback } from '../store/messages';
import type { SuppressionRepository } from '../store/suppressions';
import type { PermitRepository } from '../store/permits';
import { DEFAULT_QUOTA_PAUSE_MS, type RetryPolicy } from '../domain/retry';

/** Where a bounce or complaint came from (recorded on the suppression and the event). */
export interface FeedbackSource {
  /** `inbound:<provider>` (inbound routes), `imap` (bounce-mailbox watch), `test`. */
  channel: string;
  /** The notice's own Message-ID or provider id; makes delay events unique per notice. */
  noticeId: string | null;
  /**
   * A signed report from the relay that carried the message (relay events): it comes from the party
   * that spoke to the recipient's server, not from a recipient, so no corroboration is needed.
   */
  trusted?: true;
}

export interface BounceHandlingDeps {
  messages: MessageRepository;
  suppressions: SuppressionRepository;
  events: EventRepository;
  /**
   * The case seam (src/cases/record.ts caseFeedbackSignaller, wired by the worker and the inbound
   * routes): a matched notice on a message of a case becomes a case event. Tests that only look at
   * the store leave it out.
   */
  signalCase?: (signal: CaseFeedbackSignal) => Promise<void>;
  /**
   * Where a quota or rate refusal reported after the fact (a DSN, a relay event) pauses the tenant's
   * sending, as the same refusal at RCPT time does (docs/bounces.md "Consequences"). Absent: not paused.
   */
  pause?: { permits: Pick<PermitRepository, 'pauseSending'>; policy: Pick<RetryPolicy, 'throttlePauseMs' | 'quotaPauseMs'> };
}

/** A daily quota (Gmail's 5.4.5, "daily … limit/quota") waits out the day's window; anything else is a rate. */
const DAILY = /daily|quota|24[ -]?h/i;

export interface BounceHandlingResult {
  /** The Cartero message id the notice reports on, when it is one of this tenant's messages. */
  messageId: string | null;
  /** `unverified`: the report names a recipient it is not trusted for; recorded, not acted on. */
  recipients: Array<{ address: string; matched: boolean; suppressed: boolean; unverified?: true }>;
}

type Feedback = Extract<MailVerdict['kind'], 'bounce' | 'complaint' | 'delay'>;
const isFeedback = (k: MailVerdict['kind']): k is Feedback => k === 'bounce' || k === 'complaint' || k === 'delay';

/**
 * Applies a bounce, delay notice or complaint to the tenant's data: the recipient's status on the
 * original message, the suppression list (hard bounces and complaints), the events outbox and the
 * case. Idempotent: a notice handled twice changes nothing more (deterministic event ids, `_id`
 * keyed suppressions, the same field values written again).
 *
 * Only notices that name one of this tenant's messages (by the returned Message-ID) and one of its
 * recipients act: otherwise anyone able to mail the bounce address could suppress arbitrary
 * addresses. Unmatched notices are returned as such for the caller to log. And a bounce or
 * complaint acts on a recipient only when something corroborates it (feedbackCorroboration): a
 * co-recipient knows the Message-ID and the other visible addresses, so its forged report naming
 * one of them is recorded (`unverifiedFeedback`, `message.<kind>_unverified`) and nothing else:
 * no suppression, no status, no case signal.
 */
export async function handleBounceOrComplaint(
  deps: BounceHandlingDeps,
  tenantId: string,
  verdict: MailVerdict,
  source: FeedbackSource,
): Promise<BounceHandlingResult> {
  if (!isFeedback(verdict.kind)) return { messageId: null, recipients: [] };
  const id = messageIdFromRfc(verdict.originalMessageId);
  const doc = id ? await deps.messages.find(tenantId, id) : null;
  // The domain part is not checked by the id lookup: require the exact Message-ID we sent.
  if (!doc || doc.messageId !== verdict.originalMessageId) {
    return { messageId: null, recipients: verdict.bounces.map((b) => ({ address: b.recipient, matched: false, suppressed: false })) };
  }

  const kind = verdict.kind;
  const at = new Date();
  const results: BounceHandlingResult['recipients'] = [];
  const signalled: CaseFeedbackSignal['recipients'] = [];
  const updates: Array<{
    index: number;
    status: MessageDoc['recipients'][number]['status'] | null;
    feedback: RecipientFeedback;
    unverified?: boolean;
  }> = [];
  for (const b of verdict.bounces) {
    const index = matchRecipient(doc.recipients, b.recipient);
    const recipient = doc.recipients[index];
    if (!recipient) {
      results.push({ address: b.recipient, matched: false, suppressed: false });
      continue;
    }
    const address = recipient.address;
    const feedback: RecipientFeedback = {
      kind,
      reason: b.reason,
      status: b.status,
      hard: b.hard,
      diagnostic: b.diagnostic,
      source: source.channel,
      at,
    };
    // Delay notices change no status and suppress nothing: there is nothing to corroborate.
    if (kind !== 'delay' && !source.trusted && feedbackCorroboration(doc.recipients, index) === null) {
      updates.push({ index, status: null, feedback, unverified: true });
      const notice = source.noticeId ?? verdict.originalMessageId ?? 'unknown';
      await deps.events.append({
        id: `message.${kind}_unverified:${doc._id}:${address.toLowerCase()}:notice:${notice}`,
        tenantId,
        type: kind === 'bounce' ? 'message.bounce_unverified' : 'message.complaint_unverified',
        caseId: doc.caseId,
        messageId: doc._id,
        data: {
          recipient: address,
          reason: b.reason,
          status: b.status,
          hard: b.hard,
          diagnostic: b.diagnostic,
          source: source.channel,
          suppressed: false,
          why: 'the message had several recipients who could see this address, so any of them could have written this report; it is recorded, not acted on (docs/bounces.md)',
        },
      });
      results.push({ address, matched: true, suppressed: false, unverified: true });
      continue;
    }
    updates.push({ index, status: kind === 'bounce' ? 'bounced' : null, feedback });

    // The one consequence table (docs/bounces.md "Consequences"), as on the send path: only a dead address or a
    // complaint suppresses; a refusal about the sender (policy, SPF/DMARC, relaying, quota) never does.
    const consequence = consequenceOf({ kind, reason: b.reason, status: b.status, diagnostic: b.diagnostic });
    const suppress = (kind === 'bounce' && b.hard && consequence.hard) || kind === 'complaint';
    if (kind === 'bounce' && consequence.consequence === 'pause-tenant' && deps.pause) {
      // The server had taken the message and dropped it later: it is not re-sent (others of its recipients may
      // have it), but the tenant's next messages wait out the window instead of failing the same way.
      const daily = b.status === '5.4.5' || DAILY.test(b.diagnostic ?? '');
      const untilMs =
        at.getTime() + (daily ? (deps.pause.policy.quotaPauseMs ?? DEFAULT_QUOTA_PAUSE_MS) : deps.pause.policy.throttlePauseMs);
      const reply = (b.diagnostic ?? b.status ?? b.reason).slice(0, 500);
      await deps.pause.permits.pauseSending(tenantId, untilMs, daily ? 'daily' : 'rate', reply);
      await deps.events.append({
        id: `tenant.sending_paused:${doc._id}:notice:${source.noticeId ?? verdict.originalMessageId ?? 'unknown'}`,
        tenantId,
        type: 'tenant.sending_paused',
        caseId: doc.caseId,
        messageId: doc._id,
        data: {
          messageId: doc._id,
          kind: daily ? 'daily' : 'rate',
          pausedUntil: new Date(untilMs).toISOString(),
          reply,
          source: source.channel,
        },
      });
    }
    if (suppress) {
      await deps.suppressions.add(
        tenantId,
        address,
        kind === 'complaint' ? 'complaint' : 'bounce',
        b.reason,
        // The evidence: which channel and notice, which rule of the verdict and of the table, what the server said.
        `${source.channel}: ${b.diagnostic ?? b.status ?? b.reason} (notice ${source.noticeId ?? verdict.originalMessageId ?? 'unknown'}, rule ${verdict.rule}, ${kind === 'complaint' ? 'suppress-complaint' : `suppress/${b.reason}`})`,
      );
    }
    const data = {
      recipient: address,
      reason: b.reason,
      status: b.status,
      hard: b.hard,
      diagnostic: b.diagnostic,
      source: source.channel,
      suppressed: suppress,
      consequence: consequence.consequence,
    };
    if (kind === 'bounce') {
      await deps.events.append({
        id: `message.bounced:${doc._id}:${address.toLowerCase()}`,
        tenantId,
        type: 'message.bounced',
        caseId: doc.caseId,
        messageId: doc._id,
        data,
      });
    } else if (kind === 'complaint') {
      await deps.events.append({
        id: `message.complained:${doc._id}:${address.toLowerCase()}`,
        tenantId,
        type: 'message.complained',
        caseId: doc.caseId,
        messageId: doc._id,
        data,
      });
    } else {
      const notice = source.noticeId ?? verdict.originalMessageId ?? 'unknown';
      await deps.events.append({
        id: `message.deferred:${doc._id}:${address.toLowerCase()}:notice:${notice}`,
        tenantId,
        type: 'message.deferred',
        caseId: doc.caseId,
        messageId: doc._id,
        data,
      });
    }
    results.push({ address, matched: true, suppressed: suppress });
    signalled.push({ address, reason: b.reason, hard: b.hard, status: b.status });
  }

  if (updates.length) {
    const recipients = doc.recipients.map((r, i) => {
      const u = updates.find((x) => x.index === i);
      return u?.status ? { ...r, status: u.status } : r;
    });
    // Only a message the workflow has finished gets a new status; one still being sent is the
    // workflow's to finish (it sees the bounced recipient in the document).
    const finished = ['sent', 'partially_sent', 'bounced'].includes(doc.status);
    const status = finished ? statusAfterBounces(recipients) : null;
    const bounced = recipients.filter((r) => r.status === 'bounced').map((r) => r.address);
    await deps.messages.recordFeedback(
      doc._id,
      updates,
      status && status !== doc.status ? { status, reason: `bounced after sending: ${bounced.join(', ')}` } : null,
    );
  }
  if (signalled.length && doc.caseId && deps.signalCase) {
    const caseKind = kind === 'bounce' ? 'bounced' : kind === 'complaint' ? 'complained' : 'delayed';
    await deps.signalCase({ tenantId, caseId: doc.caseId, messageId: doc._id, kind: caseKind, recipients: signalled });
  }
  return { messageId: doc._id, recipients: results };
}
