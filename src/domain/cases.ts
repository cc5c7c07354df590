/**
 * A case: the conversation that outbound messages and inbound replies belong to. This is the pure
 * part — event kinds and how each changes the summary the case workflow keeps (and the API shows).
 * Importable by workflows.
 */
export const CASE_EVENT_KINDS = [
  'inbound',
  'autoreply',
  'sent',
  'delivery_failed',
  'opened',
  'clicked',
  'bounced',
  'complained',
  'delayed',
  'closed',
  'reopened',
] as const;
export type CaseEventKind = (typeof CASE_EVENT_KINDS)[number];

/** What a signal to the case workflow carries: small, ids only, never bodies. */
export interface CaseSignalEvent {
  /** Deterministic per occurrence (`inbound:<id>`, `sent:<messageId>`…): duplicates collapse. */
  eventId: string;
  kind: CaseEventKind;
  /** Epoch ms when it happened. */
  at: number;
  /** Our message id (m_… or i_…) the event is about, if any. */
  ref?: string | null;
  /** Addresses involved (the sender of an inbound mail, the recipients of a sent one). */
  participants?: string[];
  subject?: string | null;
}

/**
 * A bounce, complaint or delay notice that matched one of a case's messages, as the bounce handling
 * (src/inbound/feedback.ts) tells the case seam (src/cases/record.ts caseFeedbackSignaller).
 */
export interface CaseFeedbackSignal {
  tenantId: string;
  caseId: string;
  messageId: string;
  kind: 'bounced' | 'complained' | 'delayed';
  recipients: Array<{ address: string; reason: string; hard: boolean; status: string | null }>;
}

export type CaseStatus = 'open' | 'closed';

export interface CaseSummary {
  tenantId: string;
  caseId: string;
  status: CaseStatus;
  subject: string | null;
  participants: string[];
  counts: Record<CaseEventKind, number>;
  /** Events applied, duplicates excluded. */
  eventCount: number;
  firstActivityAt: number | null;
  lastActivityAt: number | null;
  lastInboundAt: number | null;
  closedAt: number | null;
  /** Workflow runs so far (continue-as-new starts a new run with this state). */
  runs: number;
}

export interface CaseState {
  summary: CaseSummary;
  /** Recently applied event ids, newest last, bounded: signal redeliveries are ignored. */
  recent: string[];
}

export const MAX_PARTICIPANTS = 100;
export const RECENT_EVENT_IDS = 1000;

export function emptyCounts(): Record<CaseEventKind, number> {
  return Object.fromEntries(CASE_EVENT_KINDS.map((k) => [k, 0])) as Record<CaseEventKind, number>;
}

export function initialCaseState(tenantId: string, caseId: string): CaseState {
  return {
    summary: {
      tenantId,
      caseId,
      status: 'open',
      subject: null,
      participants: [],
      counts: emptyCounts(),
      eventCount: 0,
      firstActivityAt: null,
      lastActivityAt: null,
      lastInboundAt: null,
      closedAt: null,
      runs: 1,
    },
    recent: [],
  };
}

/**
 * Applies one event; returns the same state object when the event was already applied. A human
 * reply reopens a closed case (the customer wrote again); automatic mail and tracking do not.
 */
export function applyCaseEvent(state: CaseState, e: CaseSignalEvent): CaseState {
  if (state.recent.includes(e.eventId)) return state;
  const s = state.summary;
  const counts = { ...s.counts, [e.kind]: (s.counts[e.kind] ?? 0) + 1 };
  const participants = [...s.participants];
  for (const p of e.participants ?? []) {
    const a = p.toLowerCase();
    if (!participants.includes(a) && participants.length < MAX_PARTICIPANTS) participants.push(a);
  }
  let status = s.status;
  let closedAt = s.closedAt;
  if (e.kind === 'closed') {
    status = 'closed';
    closedAt = e.at;
  } else if (e.kind === 'reopened' || (e.kind === 'inbound' && status === 'closed')) {
    status = 'open';
    closedAt = null;
  }
  const recent = [...state.recent, e.eventId];
  if (recent.length > RECENT_EVENT_IDS) recent.splice(0, recent.length - RECENT_EVENT_IDS);
  return {
    summary: {
      ...s,
      status,
      closedAt,
      subject: s.subject ?? e.subject ?? null,
      participants,
      counts,
      eventCount: s.eventCount + 1,
      firstActivityAt: s.firstActivityAt === null ? e.at : Math.min(s.firstActivityAt, e.at),
      lastActivityAt: s.lastActivityAt === null ? e.at : Math.max(s.lastActivityAt, e.at),
      lastInboundAt: e.kind === 'inbound' ? Math.max(s.lastInboundAt ?? 0, e.at) : s.lastInboundAt,
    },
    recent,
  };
}

/** Case ids: chosen by the product (`caseId` on a message) or generated; safe in ids and addresses. */
export const CASE_ID_PATTERN = /^[\w-]{1,64}$/;
