import type { Collection, Db } from 'mongodb';
import type { BounceMailboxSettings, WatchState } from '../domain/bounce-mailbox';
import type { MailKind } from '../domain/mail/classify';
import type { Keyring } from '../security/crypto';

/** The watch's last known state, written by the activity, shown by GET. */
export interface WatchStatus {
  state: WatchState;
  /** Why the watch is not `watching` (the server's reply, the TLS or network error). */
  error: string | null;
  since: Date;
  /** Consecutive failed connection attempts (reset when a connection succeeds). */
  failures: number;
  lastConnectedAt: Date | null;
}

export interface WatchStats {
  processed: number;
  bounce: number;
  delay: number;
  complaint: number;
  autoreply: number;
  human: number;
  /** Feedback (bounce, delay, complaint) that named no message or recipient of this tenant. */
  unmatched: number;
  oversized: number;
  /** Mail the MIME parser could not read (moved unparsed). */
  unreadable: number;
  lastProcessedAt: Date | null;
}

/**
 * One document per tenant (`_id` = tenant id) in `bounce_mailboxes`. The password is sealed with
 * the keyring (associated data binds it to the tenant), never returned. `generation` is bumped on
 * every PUT so a watch still running with older settings cannot overwrite the new status.
 */
export interface BounceMailboxDoc {
  _id: string;
  settings: BounceMailboxSettings;
  passwordSealed: string;
  generation: number;
  status: WatchStatus;
  stats: WatchStats;
  createdAt: Date;
  updatedAt: Date;
}

const aadFor = (tenantId: string) => `bounce-mailbox:${tenantId}:password`;

const NO_STATS: WatchStats = {
  processed: 0,
  bounce: 0,
  delay: 0,
  complaint: 0,
  autoreply: 0,
  human: 0,
  unmatched: 0,
  oversized: 0,
  unreadable: 0,
  lastProcessedAt: null,
};

export class BounceMailboxRepository {
  private readonly col: Collection<BounceMailboxDoc>;

  constructor(
    db: Db,
    private readonly keyring: Keyring,
  ) {
    this.col = db.collection<BounceMailboxDoc>('bounce_mailboxes');
  }

  async get(tenantId: string): Promise<BounceMailboxDoc | null> {
    return this.col.findOne({ _id: tenantId });
  }

  /**
   * Creates or replaces the settings; `password` undefined keeps the stored one (null when there
   * is none: the caller must then refuse). The status restarts at `connecting`; stats are kept.
   */
  async put(tenantId: string, settings: BounceMailboxSettings, password: string | undefined): Promise<BounceMailboxDoc | null> {
    const now = new Date();
    const set: Record<string, unknown> = {
      settings,
      status: { state: 'connecting', error: null, since: now, failures: 0, lastConnectedAt: null } satisfies WatchStatus,
      updatedAt: now,
    };
    if (password !== undefined) set.passwordSealed = this.keyring.seal(password, aadFor(tenantId));
    if (password === undefined) {
      // Single-document conditional update: only an existing mailbox may keep its password.
      return this.col.findOneAndUpdate({ _id: tenantId }, { $set: set, $inc: { generation: 1 } }, { returnDocument: 'after' });
    }
    return this.col.findOneAndUpdate(
      { _id: tenantId },
      { $set: set, $inc: { generation: 1 }, $setOnInsert: { stats: NO_STATS, createdAt: now } },
      { upsert: true, returnDocument: 'after' },
    );
  }

  async delete(tenantId: string): Promise<boolean> {
    const r = await this.col.deleteOne({ _id: tenantId });
    return r.deletedCount === 1;
  }

  /** Decrypted password; for the watch activity only. Never log or return it. */
  openPassword(doc: BounceMailboxDoc): string {
    return this.keyring.open(doc.passwordSealed, aadFor(doc._id));
  }

  /** Records the watch's state, only if the settings it runs with are still the current ones. */
  async setStatus(tenantId: string, generation: number, status: WatchStatus): Promise<void> {
    // Not an `_id`-only filter (a scan on FerretDB), but the collection has one document per tenant.
    await this.col.updateOne({ _id: tenantId, generation }, { $set: { status } });
  }

  async countProcessed(tenantId: string, kind: MailKind | 'unmatched' | 'oversized' | 'unreadable', at: Date): Promise<void> {
    const inc: Record<string, number> = { 'stats.processed': 1, [`stats.${kind}`]: 1 };
    await this.col.updateOne({ _id: tenantId }, { $inc: inc, $set: { 'stats.lastProcessedAt': at } });
  }
}
