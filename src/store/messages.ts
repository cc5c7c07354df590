import type { SentCopyOutcome } from '../domain/sent-copy';
import { GridFSBucket, ObjectId, type Collection, type Db, Binary } from 'mongodb';
import { isDuplicateKey } from './upsert';
import { CoalescedInserts, CoalescedUpdates } from './coalesce';
import { TERMINAL_STATUSES, type MessageStatus, type RecipientStatus } from '../domain/message';
import type { RecipientRefusal } from '../domain/delivery';
import { ConflictError, NotFoundError } from '../errors';
import type { MessageTracking } from '../domain/tracking/message';
import { downloadBuffer, uploadBuffer } from './gridfs';

/** One SMTP attempt as recorded: when, what the server said, what it meant. */
export interface AttemptRecord {
  n: number;
  at: Date;
  durationMs: number;
  outcome: string;
  reply: string;
  /** Recipients this attempt tried. */
  recipients: string[];
}

export interface RecipientRecord {
  address: string;
  kind: 'to' | 'cc' | 'bcc';
  status: RecipientStatus;
  reply?: string;
  /** How the consequence table read this recipient's refusal at RCPT TO (docs/bounces.md "Consequences"). */
  refusal?: RecipientRefusal;
  updatedAt?: Date;
  /** The last bounce, delay notice or complaint received for this recipient (docs/bounces.md). */
  feedback?: RecipientFeedback;
  /**
   * The last bounce or complaint naming this recipient that nothing corroborated (a co-recipient
   * could have forged it): recorded here, not acted on (docs/bounces.md "Whose report is trusted").
   */
  unverifiedFeedback?: RecipientFeedback;
}

export interface RecipientFeedback {
  kind: 'bounce' | 'delay' | 'complaint';
  reason: string;
  status: string | null;
  hard: boolean;
  diagnostic: string | null;
  source: string;
  at: Date;
}

export interface MessageDoc {
  _id: string;
  tenantId: string;
  messageId: string;
  status: MessageStatus;
  from: string;
  subject: string;
  caseId: string | null;
  /** The case was created for this message (registerOutbound `ensure`s it with this subject). */
  newCase?: true;
  inReplyTo: string | null;
  references: string[];
  sendAt: Date | null;
  idempotencyKey: string | null;
  recipients: RecipientRecord[];
  attempts: AttemptRecord[];
  /** Why a terminal status was reached, in words; and the last SMTP reply seen. */
  reason: string | null;
  lastReply: string | null;
  size: number;
  /**
   * Where the MIME is: in this document (`mime`, up to EMBEDDED_BODY_MAX: no extra write at accept
   * and no extra read per attempt), in `message_bodies` (`inline`, up to 4 MB) or in GridFS.
   */
  body: { mime: Binary } | { inline: true } | { gridfsId: ObjectId };
  workflowId: string;
  /** Set when the API answered 503 because the workflow could not be started (src/outbound/accept.ts). */
  notAcceptedAt?: Date;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
  /** Opens/clicks/unsubscribe applied at compose time (absent: none). */
  tracking?: MessageTracking;
  /** The Sent-folder copy's outcome (absent: not copied, or not yet; src/workflows/sent-copy.ts). */
  sentCopy?: SentCopyOutcome;
}

/** MIME bodies up to this size travel inside the message document itself (most transactional mail). */
export const EMBEDDED_BODY_MAX = 32 * 1024;
/** Larger bodies up to this size live in one `message_bodies` document; larger ones in GridFS. */
const INLINE_BODY_MAX = 4 * 1024 * 1024;

interface BodyDoc {
  _id: string;
  tenantId: string;
  mime: Binary;
}

/** Present while an SMTP attempt runs (`sending`), and for good once cancelled or finished. */
interface LockDoc {
  _id: string;
  state: 'sending' | 'cancelled' | 'done';
  attempt?: number;
  at: Date;
}

interface IdempotencyDoc {
  _id: string;
  messageId: string;
  /** SHA-256 of the request it was claimed for (src/outbound/idempotency.ts); absent on keys claimed before. */
  requestHash?: string;
  /** The request composing the message, while `leaseUntil` runs; after it a retry may take over. */
  owner?: string;
  leaseUntil?: Date;
  createdAt: Date;
}

/** What a claim found: ours, or the first request's (its message id, payload hash and lease). */
export type IdempotencyClaim =
  { won: true; messageId: string } | { won: false; messageId: string; requestHash: string | null; leaseUntil: Date | null };

export class MessageRepository {
  readonly col: Collection<MessageDoc>;
  private readonly bodies: Collection<BodyDoc>;
  private readonly idem: Collection<IdempotencyDoc>;
  private readonly locks: Collection<LockDoc>;
  private readonly bucket: GridFSBucket;
  /** The send path's per-message writes, coalesced under load (src/store/coalesce.ts). */
  private readonly inserts: CoalescedInserts<MessageDoc>;
  private readonly attemptUpdates: CoalescedUpdates<MessageDoc>;
  private readonly lockInserts: CoalescedInserts<LockDoc>;

  constructor(db: Db, coalesceWrites = false) {
    this.col = db.collection<MessageDoc>('messages');
    this.bodies = db.collection<BodyDoc>('message_bodies');
    this.idem = db.collection<IdempotencyDoc>('idempotency_keys');
    this.locks = db.collection<LockDoc>('message_locks');
    this.bucket = new GridFSBucket(db, { bucketName: 'message_bodies_large' });
    this.inserts = new CoalescedInserts(this.col, coalesceWrites);
    this.attemptUpdates = new CoalescedUpdates(this.col, coalesceWrites);
    this.lockInserts = new CoalescedInserts(this.locks, coalesceWrites);
  }

  static async ensureIndexes(db: Db): Promise<void> {
    const col = db.collection('messages');
    // Listing a tenant's messages newest first, optionally by status or case.
    await col.createIndex({ tenantId: 1, createdAt: -1, _id: -1 }, { name: 'tenant_created' });
    await col.createIndex({ tenantId: 1, status: 1, createdAt: -1 }, { name: 'tenant_status' });
    await col.createIndex({ tenantId: 1, caseId: 1, createdAt: -1 }, { name: 'tenant_case' });
    await col.createIndex({ tenantId: 1, messageId: 1 }, { name: 'tenant_messageId' });
    // The reconciler's scan of unfinished messages (src/activities/reconcile.ts).
    await col.createIndex({ status: 1, updatedAt: 1 }, { name: 'status_updated' });
    // The worker's oldest-waiting gauge (src/metrics/worker.ts): one index lookup per status.
    await col.createIndex({ status: 1, createdAt: 1 }, { name: 'status_created' });
  }

  /**
   * Reserves an idempotency key for a message id, bound to the request's hash and leased to
   * `owner` for `leaseMs`: the first caller wins; later callers get the winner's id, hash and
   * lease (or `null` when the key is free again: its claimer gave it up). `_id` uniqueness makes
   * this atomic without transactions or partial indexes.
   */
  async claimIdempotencyKey(
    tenantId: string,
    key: string,
    claim: { messageId: string; requestHash: string; owner: string; leaseMs: number },
  ): Promise<IdempotencyClaim | null> {
    const _id = `${tenantId}:${key}`;
    const now = new Date();
    try {
      await this.idem.insertOne({
        _id,
        messageId: claim.messageId,
        requestHash: claim.requestHash,
        owner: claim.owner,
        leaseUntil: new Date(now.getTime() + claim.leaseMs),
        createdAt: now,
      });
      return { won: true, messageId: claim.messageId };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return this.idempotencyClaim(tenantId, key);
    }
  }

  /** The current claim of a key (never `won`), or null when nobody holds it. */
  async idempotencyClaim(tenantId: string, key: string): Promise<IdempotencyClaim | null> {
    const existing = await this.idem.findOne({ _id: `${tenantId}:${key}` });
    if (!existing) return null;
    return {
      won: false,
      messageId: existing.messageId,
      requestHash: existing.requestHash ?? null,
      leaseUntil: existing.leaseUntil ?? null,
    };
  }

  /**
   * Takes over a claim whose lease has run out (its request died before storing the message): one
   * caller wins, by a conditional update on the lease it saw.
   */
  async takeOverIdempotencyKey(tenantId: string, key: string, seen: Date | null, owner: string, leaseMs: number): Promise<boolean> {
    const now = new Date();
    const r = await this.idem.updateOne(
      { _id: `${tenantId}:${key}`, leaseUntil: seen ?? { $exists: false } },
      { $set: { owner, leaseUntil: new Date(now.getTime() + leaseMs) } },
    );
    return r.modifiedCount === 1;
  }

  /** Gives a key up (the request failed before storing a message): the next request with it starts afresh. */
  async releaseIdempotencyKey(tenantId: string, key: string, owner: string): Promise<void> {
    await this.idem.deleteOne({ _id: `${tenantId}:${key}`, owner });
  }

  async storeBody(id: string, tenantId: string, mime: Buffer): Promise<MessageDoc['body']> {
    if (mime.length <= EMBEDDED_BODY_MAX) return { mime: new Binary(mime) };
    if (mime.length <= INLINE_BODY_MAX) {
      // Upsert: a retried request with the same id writes the same bytes.
      await this.bodies.replaceOne({ _id: id }, { tenantId, mime: new Binary(mime) }, { upsert: true });
      return { inline: true };
    }
    const gridfsId = new ObjectId();
    await uploadBuffer(this.bucket, gridfsId, id, mime, { tenantId });
    return { gridfsId };
  }

  async loadBody(doc: Pick<MessageDoc, '_id' | 'body'>): Promise<Buffer> {
    if ('mime' in doc.body) return Buffer.from(doc.body.mime.buffer.subarray(0, doc.body.mime.position));
    if ('inline' in doc.body) {
      const b = await this.bodies.findOne({ _id: doc._id });
      if (!b) throw new NotFoundError('message body', doc._id);
      return Buffer.from(b.mime.buffer);
    }
    return downloadBuffer(this.bucket, doc.body.gridfsId);
  }

  /** Inserts the message; a duplicate id (retried request) returns the stored one. */
  async insert(doc: MessageDoc): Promise<MessageDoc> {
    if ((await this.inserts.insert(doc)) === 'inserted') return doc;
    const existing = await this.col.findOne({ _id: doc._id });
    if (!existing) throw new Error(`message ${doc._id} refused as a duplicate but not found`);
    return existing;
  }

  /** Says on a stored message why it is not yet accepted (its workflow could not be started). */
  async markNotAccepted(id: string, reason: string): Promise<void> {
    await this.col.updateOne({ _id: id }, { $set: { reason, notAcceptedAt: new Date() } });
  }

  /**
   * Messages still as the API stored them (`queued`, `scheduled`) and untouched since `before`, in
   * (updatedAt, _id) order after `after`: the reconciler's candidates (src/activities/reconcile.ts).
   * A message whose workflow ran has moved on from `queued` (or is `scheduled` with a running timer).
   */
  async acceptedUntouchedSince(before: Date, limit: number, after?: { updatedAt: Date; _id: string }): Promise<MessageDoc[]> {
    const page = after
      ? { $or: [{ updatedAt: { $gt: after.updatedAt, $lt: before } }, { updatedAt: after.updatedAt, _id: { $gt: after._id } }] }
      : { updatedAt: { $lt: before } };
    return this.col
      .find({ status: { $in: ['queued', 'scheduled'] }, ...page }, { projection: { body: 0 } })
      .sort({ updatedAt: 1, _id: 1 })
      .limit(limit)
      .toArray();
  }

  /** When the oldest message in `status` was accepted (null: none); bounded by `maxTimeMS` (a metrics gauge). */
  async oldestIn(status: MessageStatus, maxTimeMS: number): Promise<Date | null> {
    const doc = await this.col
      .find({ status }, { projection: { createdAt: 1 }, maxTimeMS })
      .sort({ createdAt: 1 })
      .limit(1)
      .next();
    return doc?.createdAt ?? null;
  }

  /** How many messages are in `status`, counting no further than `cap` (a metrics gauge). */
  async countIn(status: MessageStatus, cap: number, maxTimeMS: number): Promise<number> {
    return this.col.countDocuments({ status }, { limit: cap, maxTimeMS });
  }

  /** Writes the recipient list, as the caller just read it, with those found on the suppression list marked `suppressed`. */
  async suppressRecipients(id: string, recipients: RecipientRecord[]): Promise<void> {
    await this.col.updateOne({ _id: id }, { $set: { recipients, updatedAt: new Date() } });
  }

  /** By `_id` alone (an index lookup on FerretDB too), then the tenant is checked here. */
  async get(tenantId: string, id: string): Promise<MessageDoc> {
    const doc = await this.find(tenantId, id);
    if (!doc) throw new NotFoundError('message', id);
    return doc;
  }

  async find(tenantId: string, id: string): Promise<MessageDoc | null> {
    const doc = await this.col.findOne({ _id: id });
    return doc && doc.tenantId === tenantId ? doc : null;
  }

  async findAny(id: string): Promise<MessageDoc | null> {
    return this.col.findOne({ _id: id });
  }

  async list(
    tenantId: string,
    q: { status?: MessageStatus; caseId?: string; limit: number; before?: { createdAt: Date; id: string } },
  ): Promise<MessageDoc[]> {
    const filter: Record<string, unknown> = { tenantId };
    if (q.status) filter.status = q.status;
    if (q.caseId) filter.caseId = q.caseId;
    if (q.before) {
      filter.$or = [{ createdAt: { $lt: q.before.createdAt } }, { createdAt: q.before.createdAt, _id: { $lt: q.before.id } }];
    }
    return this.col.find(filter).sort({ createdAt: -1, _id: -1 }).limit(q.limit).toArray();
  }

  /**
   * Sets a non-terminal status unless the message was cancelled or finished meanwhile. The lock
   * read and the write are two steps: a cancel landing between them is repaired by the workflow,
   * which finishes the message as cancelled when the cancel signal reaches it.
   */
  async setStatus(id: string, status: MessageStatus): Promise<void> {
    const lock = await this.locks.findOne({ _id: id });
    if (lock && lock.state !== 'sending') return;
    await this.col.updateOne({ _id: id }, { $set: { status, updatedAt: new Date() } });
  }

  /**
   * Claims the message for SMTP attempt `attempt` by inserting its lock document. Cancellation
   * inserts the same `_id`, so exactly one of them wins, atomically, with no multi-document
   * transaction. A retry of the same attempt (its worker died) takes the lock over, and so does a
   * later attempt finding an earlier attempt's lock: the workflow only asks for attempt n+1 once
   * attempt n was recorded, so that lock is stale (its worker died between recording the attempt
   * and releasing the lock). Without this the message would be stuck, or wrongly end cancelled.
   */
  async claimForSending(id: string, attempt: number): Promise<boolean> {
    let ok = await this.tryLock({ _id: id, state: 'sending', attempt, at: new Date() });
    if (!ok) {
      const lock = await this.locks.findOne({ _id: id });
      ok = lock?.state === 'sending' && lock.attempt === attempt;
      if (!ok && lock?.state === 'sending' && lock.attempt !== undefined && lock.attempt < attempt) {
        // Conditional on the stale attempt so a concurrent cancel or claim still wins cleanly.
        // Rare (after a crash), so the non-`_id` filter's table scan on FerretDB does not matter.
        const took = await this.locks.updateOne(
          { _id: id, state: 'sending', attempt: lock.attempt },
          { $set: { attempt, at: new Date() } },
        );
        ok = took.modifiedCount === 1;
      }
    }
    // The status document is not rewritten to `sending`: the lock says it (withLiveStatus), which
    // saves a write on every attempt.
    return ok;
  }

  async lockOf(id: string): Promise<Pick<LockDoc, 'state' | 'attempt'> | null> {
    return this.locks.findOne({ _id: id });
  }

  /** The stored status, or `sending` while an SMTP attempt holds the lock. */
  async withLiveStatus(doc: MessageDoc): Promise<MessageDoc> {
    if (TERMINAL_STATUSES.has(doc.status)) return doc;
    const lock = await this.locks.findOne({ _id: doc._id });
    return lock?.state === 'sending' ? { ...doc, status: 'sending' } : doc;
  }

  /** Cancels if not inside an SMTP transaction nor finished; 409 otherwise, 404 if unknown. */
  async cancel(tenantId: string, id: string): Promise<MessageDoc> {
    const current = await this.get(tenantId, id);
    if (TERMINAL_STATUSES.has(current.status)) throw new ConflictError(`the message is ${current.status} and cannot be cancelled`);
    if (!(await this.tryLock({ _id: id, state: 'cancelled', at: new Date() }))) {
      const lock = await this.locks.findOne({ _id: id });
      throw new ConflictError(
        lock?.state === 'sending'
          ? 'the message is inside an SMTP transaction and can no longer be cancelled'
          : `the message is already ${lock?.state === 'cancelled' ? 'cancelled' : 'finished'}`,
      );
    }
    const now = new Date();
    await this.col.updateOne(
      { _id: id },
      { $set: { status: 'cancelled', reason: 'cancelled through the API', updatedAt: now, completedAt: now } },
    );
    return this.get(tenantId, id);
  }

  /** Records attempt `attempt.n` (idempotent) and releases or settles the lock. */
  async recordAttempt(
    id: string,
    attempt: AttemptRecord,
    recipients: RecipientRecord[],
    status: MessageStatus,
    fields: { reason?: string | null; lastReply: string },
  ): Promise<void> {
    const now = new Date();
    const terminal = TERMINAL_STATUSES.has(status);
    // Only the recipients this attempt tried are written, field by field: a bounce or complaint
    // recorded meanwhile for a recipient of an earlier attempt (recordFeedback) must survive.
    const attempted = new Set(attempt.recipients);
    const perRecipient: Record<string, unknown> = {};
    recipients.forEach((r, i) => {
      if (!attempted.has(r.address)) return;
      perRecipient[`recipients.${i}.status`] = r.status;
      if (r.reply !== undefined) perRecipient[`recipients.${i}.reply`] = r.reply;
      if (r.refusal !== undefined) perRecipient[`recipients.${i}.refusal`] = r.refusal;
      perRecipient[`recipients.${i}.updatedAt`] = r.updatedAt ?? now;
    });
    // The caller holds the lock for this attempt and found it unrecorded, so this is its only
    // writer; the filter stays `_id`-only (the one FerretDB serves from an index).
    await this.attemptUpdates.update({
      filter: { _id: id },
      update: {
        $push: { attempts: attempt },
        $set: {
          ...perRecipient,
          status,
          lastReply: fields.lastReply,
          ...(fields.reason !== undefined ? { reason: fields.reason } : {}),
          updatedAt: now,
          ...(terminal ? { completedAt: now } : {}),
        },
      },
    });
    // A finished message keeps its lock (nothing can claim or cancel it again; cancel also checks
    // the terminal status first), which saves a write; otherwise release it for the next attempt.
    if (!terminal) await this.locks.deleteOne({ _id: id });
  }

  /** Records the Sent copy's outcome; an `appended` is never overwritten (a late retry's failure). */
  async setSentCopy(id: string, outcome: SentCopyOutcome): Promise<void> {
    await this.col.updateOne({ _id: id, 'sentCopy.status': { $ne: 'appended' } }, { $set: { sentCopy: outcome } });
  }

  /** Ends a message for a reason decided outside an SMTP attempt; a cancel that won stays. */
  async finish(id: string, status: MessageStatus, reason: string, recipients?: RecipientRecord[]): Promise<void> {
    if (!(await this.tryLock({ _id: id, state: status === 'cancelled' ? 'cancelled' : 'done', at: new Date() }))) {
      const lock = await this.locks.findOne({ _id: id });
      if (lock?.state === 'cancelled' && status !== 'cancelled') return;
      if (lock?.state === 'done') {
        // A re-run after a crash between the lock and the status write: finish the write, but never
        // overwrite a status that is already terminal (the rare non-`_id` filter is fine here).
        const now = new Date();
        await this.col.updateOne(
          { _id: id, status: { $nin: [...TERMINAL_STATUSES] } },
          { $set: { status, reason, updatedAt: now, completedAt: now, ...(recipients ? { recipients } : {}) } },
        );
        return;
      }
    }
    const now = new Date();
    await this.col.updateOne(
      { _id: id },
      { $set: { status, reason, updatedAt: now, completedAt: now, ...(recipients ? { recipients } : {}) } },
    );
  }

  /**
   * Records bounces / delays / complaints on recipients by array position (`recipients.<i>.…`), so
   * the write is one `_id`-filtered update that leaves every other field alone, even if the
   * workflow writes the message concurrently. `finished` moves a finished message to `bounced` or
   * `partially_sent` when recipients bounced after it was sent.
   */
  async recordFeedback(
    id: string,
    updates: ReadonlyArray<{ index: number; status: RecipientStatus | null; feedback: RecipientFeedback; unverified?: boolean }>,
    finished: { status: MessageStatus; reason: string } | null,
  ): Promise<void> {
    const now = new Date();
    const set: Record<string, unknown> = { updatedAt: now };
    for (const u of updates) {
      set[`recipients.${u.index}.${u.unverified ? 'unverifiedFeedback' : 'feedback'}`] = u.feedback;
      if (u.status) {
        set[`recipients.${u.index}.status`] = u.status;
        set[`recipients.${u.index}.updatedAt`] = now;
      }
    }
    if (finished) Object.assign(set, { status: finished.status, reason: finished.reason });
    await this.col.updateOne({ _id: id }, { $set: set });
  }

  private async tryLock(lock: LockDoc): Promise<boolean> {
    return (await this.lockInserts.insert(lock)) === 'inserted';
  }

  /** Messages of a tenant waiting for credentials/settings: the workflows to wake after a fix. */
  async waitingForCredentials(tenantId: string): Promise<Array<Pick<MessageDoc, '_id' | 'workflowId'>>> {
    return this.col.find({ tenantId, status: 'waiting_credentials' }, { projection: { _id: 1, workflowId: 1 } }).toArray();
  }
}
