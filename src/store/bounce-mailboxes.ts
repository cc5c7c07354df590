import type { Collection, Db } from 'mongodb';
import type { BounceMailboxSettings, WatchState } from '../domain/bounce-mailbox';
import { credentialMoveProblems, endpointKey, imapCredentialEndpoint } from '../domain/credential-endpoint';
import type { MailKind } from '../domain/mail/classify';
import { ConflictError, SealedCredentialsError, ValidationError } from '../errors';
import { DecryptionError, type Keyring } from '../security/crypto';
import { isLegacySeal, openTenantSecret, sealTenantSecret, type SealPlace, type TenantSealScope } from './tenant-seal';

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
 * the keyring, never returned; its associated data binds it to the tenant (salt) and to the IMAP
 * endpoint it was given for (host, port, TLS trust: src/domain/credential-endpoint.ts), so settings
 * moved behind the API's back cannot open it. `generation` is bumped on every PUT so a watch still
 * running with older settings cannot overwrite the new status.
 */
export interface BounceMailboxDoc {
  _id: string;
  settings: BounceMailboxSettings;
  /** Absent with `auth.kind` oauth2 (the watch logs in with the tenant's access token). */
  passwordSealed?: string;
  /**
   * The highest UID the watch has looked at in `settings.mailbox` (for that UIDVALIDITY): human
   * mail is left unread where it is, so "unseen" alone would offer it again on every pass. `key` names
   * the account, mailbox and UIDVALIDITY it counts in (another one starts from its unseen mail again).
   */
  cursor?: { key: string; uid: number };
  generation: number;
  status: WatchStatus;
  stats: WatchStats;
  createdAt: Date;
  updatedAt: Date;
}

const passwordPlace = (tenantId: string, settings: BounceMailboxSettings): SealPlace => ({
  place: 'bounce-mailbox.password',
  bound: endpointKey(imapCredentialEndpoint(settings)),
  legacyAad: `bounce-mailbox:${tenantId}:password`,
});

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
   * is none: the caller must then refuse), but only for the endpoint it was given with: a moved
   * host, port or TLS trust without the password is a ValidationError naming the fields. The status
   * restarts at `connecting`; stats are kept.
   */
  async put(tenant: TenantSealScope, settings: BounceMailboxSettings, password: string | undefined): Promise<BounceMailboxDoc | null> {
    const tenantId = tenant.tenantId;
    const now = new Date();
    const set: Record<string, unknown> = {
      settings,
      status: { state: 'connecting', error: null, since: now, failures: 0, lastConnectedAt: null } satisfies WatchStatus,
      updatedAt: now,
    };
    if (settings.auth?.kind === 'oauth2') {
      // No password is kept for an XOAUTH2 login: one left behind would outlive its purpose.
      return this.col.findOneAndUpdate(
        { _id: tenantId },
        { $set: set, $unset: { passwordSealed: '' }, $inc: { generation: 1 }, $setOnInsert: { stats: NO_STATS, createdAt: now } },
        { upsert: true, returnDocument: 'after' },
      );
    }
    if (password === undefined) {
      const existing = await this.col.findOne({ _id: tenantId });
      if (!existing?.passwordSealed) return null;
      const problems = credentialMoveProblems(
        imapCredentialEndpoint(existing.settings),
        imapCredentialEndpoint(settings),
        ['password'],
        'password',
      );
      if (problems.length > 0) throw new ValidationError(`invalid ${problems.map((p) => p.field).join(', ')}`, problems);
      // Single-document conditional update: only the mailbox just checked may keep its password.
      const kept = await this.col.findOneAndUpdate(
        { _id: tenantId, generation: existing.generation },
        { $set: set, $inc: { generation: 1 } },
        { returnDocument: 'after' },
      );
      if (!kept) throw new ConflictError(`the bounce mailbox of ${tenantId} was changed concurrently; retry the request`);
      return kept;
    }
    set.passwordSealed = sealTenantSecret(this.keyring, tenant, passwordPlace(tenantId, settings), password);
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

  /**
   * Decrypted password; for the watch activity only. Never log or return it. SealedCredentialsError
   * when it does not open for the stored settings (moved behind the API's back, or sealed for an
   * earlier tenant of this id): nothing is sent anywhere.
   */
  openPassword(doc: BounceMailboxDoc, tenant: TenantSealScope): string {
    try {
      if (doc.passwordSealed === undefined) throw new DecryptionError('no password stored');
      return openTenantSecret(this.keyring, tenant, passwordPlace(doc._id, doc.settings), doc.passwordSealed);
    } catch (err) {
      if (!(err instanceof DecryptionError)) throw err;
      throw new SealedCredentialsError(
        `stored credentials unusable: the bounce mailbox password does not open for the current host, port and TLS trust ` +
          `(it was given for another endpoint or another tenant of this id); PUT the settings again with the password`,
      );
    }
  }

  /** Upgrade from before salts (src/store/seal-upgrade.ts): the password resealed `v2`, bound to the current settings. */
  async resealLegacy(tenant: TenantSealScope): Promise<void> {
    const doc = await this.col.findOne({ _id: tenant.tenantId });
    if (!doc?.passwordSealed || !isLegacySeal(doc.passwordSealed)) return;
    const resealed = sealTenantSecret(this.keyring, tenant, passwordPlace(doc._id, doc.settings), this.openPassword(doc, tenant));
    // Only if nobody PUT a new password meanwhile (that one is `v2` already).
    await this.col.updateOne({ _id: doc._id, passwordSealed: doc.passwordSealed }, { $set: { passwordSealed: resealed } });
  }

  /** Records the watch's state, only if the settings it runs with are still the current ones. */
  async setStatus(tenantId: string, generation: number, status: WatchStatus): Promise<void> {
    // Not an `_id`-only filter (a scan on FerretDB), but the collection has one document per tenant.
    await this.col.updateOne({ _id: tenantId, generation }, { $set: { status } });
  }

  /** Moves the watch's cursor forward (never back), only for the settings it runs with. */
  async advanceCursor(tenantId: string, generation: number, cursor: { key: string; uid: number }): Promise<void> {
    await this.col.updateOne({ _id: tenantId, generation }, { $set: { cursor } });
  }

  async countProcessed(tenantId: string, kind: MailKind | 'unmatched' | 'oversized' | 'unreadable', at: Date): Promise<void> {
    const inc: Record<string, number> = { 'stats.processed': 1, [`stats.${kind}`]: 1 };
    await this.col.updateOne({ _id: tenantId }, { $inc: inc, $set: { 'stats.lastProcessedAt': at } });
  }
}
