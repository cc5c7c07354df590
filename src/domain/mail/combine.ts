import { consequenceOf, type Consequence } from '../bounce-consequence';
import type { MailKind, MailVerdict } from './classify';
import { BOUNCE_REASONS, reasonFromText, type BounceReason } from './reasons';

/**
 * One verdict from two engines (docs/decisions.md "Bounce verdicts: Sisimai plus Cartero's rules"): Cartero's own
 * classifier (classifyMail) and Sisimai 4.25's records for the same raw message, when Sisimai answered. Each rule
 * below says which engine wins for what; each was decided by the scores on test/fixtures/bounces
 * (npm run bench:bounces). Pure: the records come from src/inbound/sisimai.ts.
 */

/** One recipient as Sisimai reports it (the fields read here; src/inbound/sisimai.ts SisimaiRecord). */
export interface EngineRecord {
  recipient: string;
  deliverystatus: string;
  reason: string;
  softbounce: number;
  diagnosticcode: string;
  messageid: string;
  action: string;
}

export interface FinalBounce {
  recipient: string;
  status: string | null;
  /** Suppress the address. */
  hard: boolean;
  /** Stop retrying this message to this recipient. */
  permanent: boolean;
  reason: BounceReason;
  diagnostic: string | null;
  consequence: Consequence;
  /** Which engine named this recipient: evidence kept with a suppression. */
  engine: 'cartero' | 'sisimai' | 'both';
}

export interface FinalVerdict {
  kind: MailKind;
  /** The rule that decided (classifyMail's rule, or `sisimai-<agent>` when only Sisimai saw the bounce). */
  rule: string;
  bounces: FinalBounce[];
  originalMessageId: string | null;
}

const NOT_BOUNCES = new Set(['delivered', 'vacation', 'feedback']);
const KNOWN_REASONS: ReadonlySet<string> = new Set(BOUNCE_REASONS);

/** Sisimai's reason in Cartero's vocabulary (the same names, apart from these). */
function reasonOf(sisimaiReason: string): BounceReason {
  if (KNOWN_REASONS.has(sisimaiReason)) return sisimaiReason as BounceReason;
  if (sisimaiReason === 'mailererror' || sisimaiReason === 'systemfull') return 'systemerror';
  return 'undefined';
}

/**
 * Sisimai fills a missing status with a code of its own (`5.0.9xx`, `4.0.9xx`, or `x.0.0` from the reason) that the
 * notice never gave: only a code the notice itself carries is a status.
 */
function realStatus(r: EngineRecord): string | null {
  const s = r.deliverystatus;
  if (!/^[245]\.\d{1,3}\.\d{1,3}$/.test(s) || /^\d\.0\.9\d\d$/.test(s)) return null;
  return s;
}

function withConsequence(
  kind: 'bounce' | 'delay' | 'complaint',
  b: { recipient: string; status: string | null; reason: BounceReason; diagnostic: string | null },
  engine: FinalBounce['engine'],
): FinalBounce {
  const c = consequenceOf({ kind, reason: b.reason, status: b.status, diagnostic: b.diagnostic });
  return { ...b, ...c, engine };
}

/**
 * @param returned To and Cc of the returned message (classify.ts returnedRecipients): the addresses we wrote to.
 */
export function combineVerdicts(
  cartero: MailVerdict,
  records: readonly EngineRecord[] | null,
  returned: readonly string[] = [],
): FinalVerdict {
  const rs = (records ?? []).filter((r) => r.recipient.includes('@'));
  const failed = rs.filter((r) => !NOT_BOUNCES.has(r.reason));
  const sisimaiId = rs.find((r) => r.messageid)?.messageid;
  const originalMessageId = cartero.originalMessageId ?? (sisimaiId ? `<${sisimaiId}>` : null);

  let kind: MailKind = cartero.kind;
  let rule = cartero.rule;
  // Sisimai reads a bounce where Cartero saw none (formats Cartero has no rule for).
  if ((kind === 'human' || kind === 'autoreply') && failed.length > 0 && cartero.rule !== 'dsn-success') {
    kind = failed.every((r) => r.action === 'delayed') ? 'delay' : 'bounce';
    rule = 'sisimai';
  }
  if (kind === 'human' && rs.some((r) => r.reason === 'vacation')) {
    kind = 'autoreply';
    rule = 'sisimai-vacation';
  }
  if (kind === 'human' || kind === 'autoreply') return { kind, rule, bounces: [], originalMessageId };

  const byRecipient = new Map(failed.map((r) => [r.recipient.toLowerCase(), r]));
  const out: FinalBounce[] = [];
  for (const b of cartero.bounces) {
    const s = byRecipient.get(b.recipient);
    byRecipient.delete(b.recipient);
    const status = b.status ?? (s ? realStatus(s) : null);
    const reason = b.reason !== 'undefined' || !s ? b.reason : reasonOf(s.reason);
    out.push(
      withConsequence(
        kind,
        { recipient: b.recipient, status, reason, diagnostic: b.diagnostic ?? (s?.diagnosticcode || null) },
        s ? 'both' : 'cartero',
      ),
    );
  }
  // Recipients only Sisimai found, when Cartero found none (a format it cannot read). Cartero's text rules still judge
  // the reason from Sisimai's diagnostic first: Sisimai files "User unknown" from some Japanese carriers under
  // `filtered` and "does not exist" texts under `onhold` (docs/decisions.md).
  if (out.length === 0 && kind !== 'complaint') {
    for (const s of byRecipient.values()) {
      const diagnostic = s.diagnosticcode || null;
      const reason = reasonFromText(diagnostic) ?? reasonOf(s.reason);
      out.push(withConsequence(kind, { recipient: s.recipient.toLowerCase(), status: realStatus(s), reason, diagnostic }, 'sisimai'));
    }
  }
  // A report about one recipient that is not the one address the returned message was sent to: its Final-Recipient
  // was rewritten on the way (forwarding, an alias, an internal mailbox name). The address we wrote to is the one
  // whose fate it tells.
  if (out.length === 1 && returned.length === 1 && out[0]!.recipient !== returned[0]!.toLowerCase()) {
    out[0] = { ...out[0]!, recipient: returned[0]!.toLowerCase() };
  }
  return { kind, rule, bounces: out, originalMessageId };
}

/** Cartero's verdict alone (Sisimai absent), with the same consequences. */
export function carteroOnly(cartero: MailVerdict, returned: readonly string[] = []): FinalVerdict {
  return combineVerdicts(cartero, null, returned);
}

/**
 * The combined verdict in classifyMail's shape, for the paths that store or apply a MailVerdict (inbound ingestion,
 * the bounce-mailbox watch): hard comes from the consequence table; permanent and the consequence are left to the
 * send path (docs/bounces.md "Consequences").
 */
export function asMailVerdict(v: FinalVerdict): MailVerdict {
  return {
    kind: v.kind,
    rule: v.rule,
    bounces: v.bounces.map((b) => ({ recipient: b.recipient, status: b.status, hard: b.hard, reason: b.reason, diagnostic: b.diagnostic })),
    originalMessageId: v.originalMessageId,
  };
}
