import { createHash } from 'node:crypto';
import { type Collection, type Db } from 'mongodb';
import {
  applyCaseEvent,
  emptyCounts,
  initialCaseState,
  type CaseEventKind,
  type CaseSignalEvent,
  type CaseState,
  type CaseSummary,
} from '../domain/cases';
import { NotFoundError } from '../errors';
import { isDuplicateKey, upsertRetrying } from './upsert';
import { CoalescedInserts, CoalescedUpdates } from './coalesce';

/**
 * Cases and everything threading looks up. Every hot-path read is by a deterministic `_id`
 * (FerretDB v1 serves only `_id` equality from an index):
 * - `cases`          `<tenant>:<caseId>` → the summary the case workflow last saved;
 * - `case_events`    `<tenant>:<caseId>:<eventId>` → the timeline (duplicates collapse on insert);
 * - `message_ids`    `<tenant>:<Message-ID>` → the case of every Message-ID we received (our own
 *                    outbound ones name their message instead: src/inbound/threading.ts);
 * - `case_subjects`  `<tenant>:<hash(normalised subject)>:<participant>` → the last case with that
 *                    subject and that participant (the subject+participants rule);
 * - `reply_tokens`   `<tenant>:<token>` → the case a `local+<token>@domain` Reply-To belongs to.
 */
export interface CaseDoc extends Omit<CaseSummary, 'tenantId' | 'caseId'> {
  _id: string;
  tenantId: string;
  caseId: string;
  /**
   * Whether the case workflow owns the summary. `false`: no workflow has been started, and events
   * that do not need one (outbound outcomes, opens, clicks) are applied here by `applyInStore`.
   * Absent (cases stored before this field existed) counts as live. Never goes back to `false`.
   */
  live?: boolean;
  /** The newest applied event ids (duplicates are recognised across runs and store-only applies). */
  recentEventIds?: string[];
  createdAt: Date;
  updatedAt: Date;
}

/** How many applied event ids the case record keeps (the workflow keeps more in its state). */
export const STORED_RECENT_EVENT_IDS = 50;

/** The case state a record holds: what a starting case workflow continues from. */
export function caseStateOf(doc: CaseDoc): CaseState {
  const { _id: _i, createdAt: _c, updatedAt: _u, live: _l, recentEventIds, ...rest } = doc;
  return {
    summary: { ...rest, participants: doc.participants ?? [], counts: { ...emptyCounts(), ...doc.counts } },
    recent: recentEventIds ?? [],
  };
}

/** `live` with `already: true`: the record was live already; `false`: too many collisions, the caller must switch it. */
export type StoreApplyResult = { outcome: 'applied' | 'duplicate'; summary: CaseSummary } | { outcome: 'live'; already: boolean };

export interface CaseEventDoc {
  _id: string;
  tenantId: string;
  caseId: string;
  eventId: string;
  kind: CaseEventKind;
  at: Date;
  ref: string | null;
  data: Record<string, unknown>;
}

export interface MessageIdDoc {
  _id: string;
  tenantId: string;
  messageId: string;
  caseId: string;
  kind: 'sent' | 'received';
  /** Our id of the message: m_… (outbound) or i_… (inbound). */
  ref: string;
  at: Date;
}

interface ReplyTokenDoc {
  _id: string;
  tenantId: string;
  caseId: string;
}

interface SubjectDoc {
  _id: string;
  tenantId: string;
  caseId: string;
  lastAt: Date;
}

const key = (...parts: string[]) => parts.join(':');

export class CaseRepository {
  readonly cases: Collection<CaseDoc>;
  private readonly events: Collection<CaseEventDoc>;
  private readonly ids: Collection<MessageIdDoc>;
  private readonly subjects: Collection<SubjectDoc>;
  private readonly tokens: Collection<ReplyTokenDoc>;
  /** The send path's per-message writes, coalesced under load (src/store/coalesce.ts). */
  private readonly caseInserts: CoalescedInserts<CaseDoc>;
  private readonly eventInserts: CoalescedInserts<CaseEventDoc>;
  private readonly subjectUpdates: CoalescedUpdates<SubjectDoc>;

  constructor(db: Db, coalesceWrites = false) {
    this.cases = db.collection<CaseDoc>('cases');
    this.events = db.collection<CaseEventDoc>('case_events');
    this.ids = db.collection<MessageIdDoc>('message_ids');
    this.subjects = db.collection<SubjectDoc>('case_subjects');
    this.tokens = db.collection<ReplyTokenDoc>('reply_tokens');
    this.caseInserts = new CoalescedInserts(this.cases, coalesceWrites);
    this.eventInserts = new CoalescedInserts(this.events, coalesceWrites);
    this.subjectUpdates = new CoalescedUpdates(this.subjects, coalesceWrites);
  }

  static async ensureIndexes(db: Db): Promise<void> {
    // The timeline of one case, oldest first (API reads, not a per-message path).
    await db.collection('case_events').createIndex({ tenantId: 1, caseId: 1, at: 1, _id: 1 }, { name: 'tenant_case_at' });
    await db.collection('cases').createIndex({ tenantId: 1, lastActivityAt: -1 }, { name: 'tenant_activity' });
  }

  /**
   * Creates the case record if new (then true); an existing case keeps its data. An insert rather
   * than an upsert with `$setOnInsert`: FerretDB v1 drops empty arrays from `$setOnInsert`.
   */
  async ensure(tenantId: string, caseId: string, subject: string | null, at = new Date()): Promise<boolean> {
    // No workflow run yet (runs: 0): the first one counts itself when it loads this record.
    const { summary } = initialCaseState(tenantId, caseId);
    const outcome = await this.caseInserts.insert({
      _id: key(tenantId, caseId),
      ...summary,
      subject,
      runs: 0,
      live: false,
      recentEventIds: [],
      createdAt: at,
      updatedAt: at,
    });
    return outcome === 'inserted';
  }

  /** The summary as the case workflow computed it; once live, the workflow is its only writer. */
  async saveSummary(summary: CaseSummary, recent: string[] = []): Promise<void> {
    const { tenantId, caseId, ...rest } = summary;
    const now = new Date();
    const recentEventIds = recent.slice(-STORED_RECENT_EVENT_IDS);
    await upsertRetrying(() =>
      this.cases.updateOne(
        { _id: key(tenantId, caseId) },
        { $set: { ...rest, tenantId, caseId, live: true, recentEventIds, updatedAt: now }, $setOnInsert: { createdAt: now } },
        { upsert: true },
      ),
    );
  }

  /**
   * Applies an event to a case no workflow owns yet, by compare-and-set on `eventCount` (so
   * concurrent store-only applies serialise) and on `live: false` (so nothing is written after the
   * case went live: the caller then signals the workflow, which loaded the record after the switch
   * and therefore saw every event applied here). `live` also comes back after too many collisions,
   * so a hot case moves to its workflow instead of spinning here.
   */
  async applyInStore(
    tenantId: string,
    caseId: string,
    event: CaseSignalEvent,
    opts: { pristineSubject?: string | null; maxTries?: number } = {},
  ): Promise<StoreApplyResult> {
    const _id = key(tenantId, caseId);
    if (opts.pristineSubject !== undefined) {
      const first = await this.applyToPristine(_id, tenantId, caseId, opts.pristineSubject, event);
      if (first) return first;
    }
    const maxTries = opts.maxTries ?? 8;
    for (let i = 0; i < maxTries; i++) {
      const doc = await this.cases.findOne({ _id });
      if (!doc) throw new NotFoundError('case', caseId);
      if (doc.live !== false) return { outcome: 'live', already: true };
      const state = caseStateOf(doc);
      const next = applyCaseEvent(state, event);
      if (next === state) return { outcome: 'duplicate', summary: state.summary };
      const { tenantId: _t, caseId: _c, ...fields } = next.summary;
      const res = await this.cases.updateOne(
        { _id, live: false, eventCount: doc.eventCount },
        { $set: { ...fields, recentEventIds: next.recent.slice(-STORED_RECENT_EVENT_IDS), updatedAt: new Date() } },
      );
      if (res.matchedCount === 1) return { outcome: 'applied', summary: next.summary };
    }
    return { outcome: 'live', already: false };
  }

  /**
   * The first event of a case the caller expects untouched since `ensure(…, subject)` (the message
   * that created it): applied to that known state by one compare-and-set, with no read. A record
   * with no event, not live and that subject holds exactly that state (only events change the rest),
   * so the filter makes the write safe; `null` (anything else) sends the caller to the read path.
   */
  private async applyToPristine(
    _id: string,
    tenantId: string,
    caseId: string,
    subject: string | null,
    event: CaseSignalEvent,
  ): Promise<StoreApplyResult | null> {
    const initial = initialCaseState(tenantId, caseId);
    const state: CaseState = { summary: { ...initial.summary, subject, runs: 0 }, recent: [] };
    const next = applyCaseEvent(state, event);
    const { tenantId: _t, caseId: _c, ...fields } = next.summary;
    const res = await this.cases.updateOne(
      { _id, live: false, eventCount: 0, subject },
      { $set: { ...fields, recentEventIds: next.recent.slice(-STORED_RECENT_EVENT_IDS), updatedAt: new Date() } },
    );
    return res.matchedCount === 1 ? { outcome: 'applied', summary: next.summary } : null;
  }

  /** Hands the case to its workflow for good: call before starting or signalling it. */
  async goLive(tenantId: string, caseId: string): Promise<void> {
    await this.cases.updateOne({ _id: key(tenantId, caseId), live: false }, { $set: { live: true } });
  }

  async find(tenantId: string, caseId: string): Promise<CaseDoc | null> {
    return this.cases.findOne({ _id: key(tenantId, caseId) });
  }

  async get(tenantId: string, caseId: string): Promise<CaseDoc> {
    const doc = await this.find(tenantId, caseId);
    if (!doc) throw new NotFoundError('case', caseId);
    return doc;
  }

  /** Appends to the timeline; false when this event id is already there. */
  async appendEvent(e: Omit<CaseEventDoc, '_id'>): Promise<boolean> {
    return (await this.eventInserts.insert({ _id: key(e.tenantId, e.caseId, e.eventId), ...e })) === 'inserted';
  }

  async timeline(tenantId: string, caseId: string, q: { limit: number; after?: { at: Date; id: string } }): Promise<CaseEventDoc[]> {
    const filter: Record<string, unknown> = { tenantId, caseId };
    if (q.after) filter.$or = [{ at: { $gt: q.after.at } }, { at: q.after.at, _id: { $gt: q.after.id } }];
    return this.events.find(filter).sort({ at: 1, _id: 1 }).limit(q.limit).toArray();
  }

  /** Records which case a Message-ID belongs to; the first registration wins (a forged reuse cannot move it). */
  async registerMessageId(d: Omit<MessageIdDoc, '_id'>): Promise<MessageIdDoc> {
    const _id = key(d.tenantId, d.messageId);
    try {
      await this.ids.insertOne({ _id, ...d });
      return { _id, ...d };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const existing = await this.ids.findOne({ _id });
      if (!existing) throw err;
      return existing;
    }
  }

  async lookupMessageId(tenantId: string, messageId: string): Promise<MessageIdDoc | null> {
    return this.ids.findOne({ _id: key(tenantId, messageId) });
  }

  /** `reply_tokens`: `<tenant>:<token>` → case, for replies addressed to `local+<token>@domain`. */
  async registerReplyToken(tenantId: string, token: string, caseId: string): Promise<void> {
    await upsertRetrying(() =>
      this.tokens.updateOne({ _id: key(tenantId, token) }, { $setOnInsert: { tenantId, caseId } }, { upsert: true }),
    );
  }

  async caseForReplyToken(tenantId: string, token: string): Promise<string | null> {
    return (await this.tokens.findOne({ _id: key(tenantId, token.toLowerCase()) }))?.caseId ?? null;
  }

  /** Remembers that `participant` took part in a case with this (normalised) subject. */
  async noteSubject(tenantId: string, normalizedSubject: string, participant: string, caseId: string, at: Date): Promise<void> {
    if (!normalizedSubject) return;
    await upsertRetrying(() =>
      this.subjectUpdates.update({
        filter: { _id: subjectKey(tenantId, normalizedSubject, participant) },
        update: { $set: { tenantId, caseId, lastAt: at } },
        upsert: true,
      }),
    );
  }

  async subjectCase(tenantId: string, normalizedSubject: string, participant: string): Promise<{ caseId: string; lastAt: Date } | null> {
    if (!normalizedSubject) return null;
    const d = await this.subjects.findOne({ _id: subjectKey(tenantId, normalizedSubject, participant) });
    return d ? { caseId: d.caseId, lastAt: d.lastAt } : null;
  }
}

function subjectKey(tenantId: string, normalizedSubject: string, participant: string): string {
  const h = createHash('sha256').update(normalizedSubject, 'utf8').digest('base64url').slice(0, 22);
  return key(tenantId, h, participant.toLowerCase());
}
