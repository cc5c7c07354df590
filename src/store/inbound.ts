import { GridFSBucket, ObjectId, type Collection, type Db } from 'mongodb';
import type { InboundEmail } from '../domain/inbound/email';
import type { MailVerdict } from '../domain/mail/classify';
import { NotFoundError } from '../errors';
import { downloadBuffer, uploadBuffer } from './gridfs';
import { isDuplicateKey, upsertRetrying } from './upsert';
import type { Keyring } from '../security/crypto';
import { isLegacySeal, openTenantSecret, sealTenantSecret, type SealPlace, type TenantSealScope } from './tenant-seal';

/**
 * Inbound mail as stored. `_id` is `i_<hash of tenant and Message-ID (or provider id)>`, so a
 * provider's retry of the same message hits the same document, and the API can read it by `_id`.
 * Attachments and the raw message live in GridFS (`inbound_files`) and are written before the
 * document: a stored message never points at a missing file.
 */
export interface StoredPart {
  fileId: ObjectId;
  filename: string | null;
  contentType: string;
  contentId: string | null;
  disposition: 'attachment' | 'inline';
  size: number;
}

export type InboundKind = 'human' | 'autoreply' | 'bounce' | 'complaint' | 'delay';

export interface InboundDoc extends Omit<InboundEmail, 'parts' | 'raw' | 'envelopeFrom'> {
  _id: string;
  tenantId: string;
  /** Bodies over the document budget are cut; this says so. */
  truncated: boolean;
  parts: StoredPart[];
  rawFileId: ObjectId | null;
  kind: InboundKind;
  classification: Omit<MailVerdict, 'kind'>;
  /** For bounces, delays and complaints: what the bounce handling matched and suppressed. */
  bounceHandling?: {
    messageId: string | null;
    /** `unverified`: matched, but recorded without acting on it (docs/bounces.md "Whose report is trusted"). */
    recipients: Array<{ address: string; matched: boolean; suppressed: boolean; unverified?: true }>;
  };
  caseId: string | null;
  /** Which threading rule placed it (in-reply-to, references, reply-token, subject-participants, new-case), or why not. */
  threading: { rule: string; matched: string | null };
  /** False until every follow-up (index, timeline, case signal) has been done once. */
  complete: boolean;
  receivedAt: Date;
}

interface InboundKeyDoc {
  _id: string;
  tenantId: string;
}

/** Per-tenant, per-provider inbound authentication; secrets sealed with the tenant (salt) and field as AAD. */
export interface InboundSettingsDoc {
  _id: string;
  tenantId: string;
  provider: InboundEmail['provider'];
  /**
   * Non-secret settings: basic-auth user name, allowed SNS topic ARNs, and SendGrid's Event Webhook
   * verification key (a public key: base64 DER SPKI, as SendGrid shows it).
   */
  clear: { username?: string; topicArns?: string[]; eventVerificationKey?: string };
  sealed: Partial<Record<InboundSecretField, string>>;
  updatedAt: Date;
}
export const INBOUND_SECRET_FIELDS = ['password', 'bearerToken', 'signingKey', 'apiKey'] as const;
export type InboundSecretField = (typeof INBOUND_SECRET_FIELDS)[number];
export type OpenInboundSettings = InboundSettingsDoc['clear'] & Partial<Record<InboundSecretField, string>>;

interface ReplayDoc {
  _id: string;
  tenantId: string;
  inboundIds: string[];
  at: Date;
}

const place = (tenantId: string, provider: string, field: string): SealPlace => ({
  place: `inbound.${provider}.${field}`,
  legacyAad: `tenant:${tenantId}:inbound.${provider}.${field}`,
});

export class InboundRepository {
  readonly col: Collection<InboundDoc>;
  private readonly keys: Collection<InboundKeyDoc>;
  private readonly settings: Collection<InboundSettingsDoc>;
  private readonly replays: Collection<ReplayDoc>;
  private readonly bucket: GridFSBucket;

  constructor(
    db: Db,
    private readonly keyring: Keyring,
  ) {
    this.col = db.collection<InboundDoc>('inbound_messages');
    this.keys = db.collection<InboundKeyDoc>('inbound_keys');
    this.settings = db.collection<InboundSettingsDoc>('inbound_settings');
    this.replays = db.collection<ReplayDoc>('inbound_replay_tokens');
    this.bucket = new GridFSBucket(db, { bucketName: 'inbound_files' });
  }

  /**
   * Indexes, and the `inbound_keys` map (`_id` = the key) for tenants created before it existed, so
   * the webhook's tenant lookup is a primary-key read and an unknown key never scans `tenants`.
   */
  static async ensureIndexes(db: Db): Promise<void> {
    await db.collection('inbound_messages').createIndex({ tenantId: 1, receivedAt: -1 }, { name: 'tenant_received' });
    const keys = db.collection<InboundKeyDoc>('inbound_keys');
    for await (const t of db
      .collection<{ _id: string; inboundKey: string }>('tenants')
      // Not for a tenant being deleted: its keys were revoked on purpose.
      .find({ deletion: { $exists: false } }, { projection: { _id: 1, inboundKey: 1 } })) {
      if (t.inboundKey)
        await upsertRetrying(() => keys.updateOne({ _id: t.inboundKey }, { $setOnInsert: { tenantId: t._id } }, { upsert: true }));
    }
  }

  async tenantForKey(inboundKey: string): Promise<string | null> {
    return (await this.keys.findOne({ _id: inboundKey }))?.tenantId ?? null;
  }

  async find(id: string): Promise<InboundDoc | null> {
    return this.col.findOne({ _id: id });
  }

  async get(tenantId: string, id: string): Promise<InboundDoc> {
    const doc = await this.find(id);
    if (!doc || doc.tenantId !== tenantId) throw new NotFoundError('inbound message', id);
    return doc;
  }

  /** Inserts the message; when another delivery got there first, returns that one instead. */
  async insert(doc: InboundDoc): Promise<{ doc: InboundDoc; inserted: boolean }> {
    try {
      await this.col.insertOne(doc);
      return { doc, inserted: true };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const existing = await this.col.findOne({ _id: doc._id });
      if (!existing) throw err;
      return { doc: existing, inserted: false };
    }
  }

  async recordBounceHandling(id: string, result: NonNullable<InboundDoc['bounceHandling']>): Promise<void> {
    await this.col.updateOne({ _id: id }, { $set: { bounceHandling: result } });
  }

  async markComplete(id: string): Promise<void> {
    await this.col.updateOne({ _id: id }, { $set: { complete: true } });
  }

  async putFile(tenantId: string, filename: string, content: Buffer, metadata: Record<string, unknown>): Promise<ObjectId> {
    const id = new ObjectId();
    await uploadBuffer(this.bucket, id, filename, content, { tenantId, ...metadata });
    return id;
  }

  /**
   * Removes files uploaded by a delivery that lost the race to store the message, or whose store
   * failed. Best effort: a file left behind is referenced by no document and harms nothing, while a
   * throw here would fail a delivery that was stored (lost race) or hide the error that matters.
   */
  async deleteFiles(ids: ObjectId[]): Promise<void> {
    for (const id of ids) await this.bucket.delete(id).catch(() => undefined);
  }

  async readFile(id: ObjectId): Promise<Buffer> {
    return downloadBuffer(this.bucket, id);
  }

  async putSettings(
    tenant: TenantSealScope,
    provider: InboundEmail['provider'],
    clear: InboundSettingsDoc['clear'],
    secrets: Partial<Record<InboundSecretField, string>>,
  ): Promise<InboundSettingsDoc> {
    const tenantId = tenant.tenantId;
    const sealed: InboundSettingsDoc['sealed'] = {};
    for (const [field, value] of Object.entries(secrets) as Array<[InboundSecretField, string | undefined]>) {
      if (value !== undefined) sealed[field] = sealTenantSecret(this.keyring, tenant, place(tenantId, provider, field), value);
    }
    const doc: InboundSettingsDoc = { _id: `${tenantId}:${provider}`, tenantId, provider, clear, sealed, updatedAt: new Date() };
    await upsertRetrying(() => this.settings.replaceOne({ _id: doc._id }, doc, { upsert: true }));
    return doc;
  }

  async getSettings(tenantId: string, provider: InboundEmail['provider']): Promise<InboundSettingsDoc | null> {
    return this.settings.findOne({ _id: `${tenantId}:${provider}` });
  }

  async deleteSettings(tenantId: string, provider: InboundEmail['provider']): Promise<boolean> {
    return (await this.settings.deleteOne({ _id: `${tenantId}:${provider}` })).deletedCount === 1;
  }

  /** Decrypted settings, for the webhook's authentication only. Never log or return them. */
  openSettings(doc: InboundSettingsDoc, tenant: TenantSealScope): OpenInboundSettings {
    const out: OpenInboundSettings = { ...doc.clear };
    for (const [field, value] of Object.entries(doc.sealed) as Array<[InboundSecretField, string | undefined]>) {
      if (value !== undefined) out[field] = openTenantSecret(this.keyring, tenant, place(doc.tenantId, doc.provider, field), value);
    }
    return out;
  }

  /** Upgrade from before salts (src/store/seal-upgrade.ts): every provider's secrets resealed `v2`. */
  async resealLegacy(tenant: TenantSealScope): Promise<void> {
    for (const doc of await this.settings.find({ tenantId: tenant.tenantId }).toArray()) {
      for (const [field, value] of Object.entries(doc.sealed) as Array<[InboundSecretField, string | undefined]>) {
        if (value === undefined || !isLegacySeal(value)) continue;
        const where = place(doc.tenantId, doc.provider, field);
        const resealed = sealTenantSecret(this.keyring, tenant, where, openTenantSecret(this.keyring, tenant, where, value));
        // Only if the value was not replaced meanwhile (a new one is `v2` already).
        await this.settings.updateOne({ _id: doc._id, [`sealed.${field}`]: value }, { $set: { [`sealed.${field}`]: resealed } });
      }
    }
  }

  /**
   * Mailgun's signature token may be used for one delivery only. Returns the messages the token was
   * first used for, or null if it is new (and now claimed for `inboundIds`).
   */
  async claimReplayToken(tenantId: string, token: string, inboundIds: string[]): Promise<string[] | null> {
    const _id = `${tenantId}:mailgun:${token}`;
    try {
      await this.replays.insertOne({ _id, tenantId, inboundIds, at: new Date() });
      return null;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return (await this.replays.findOne({ _id }))?.inboundIds ?? [];
    }
  }
}
