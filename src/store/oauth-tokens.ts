import { type Collection, type Db } from 'mongodb';
import { isDuplicateKey } from './upsert';
import type { Keyring } from '../security/crypto';

/**
 * Each tenant's current OAuth2 access token, sealed (AES-256-GCM, bound to the tenant), with its
 * expiry and a generation number that grows with every token obtained; keyed by `_id` = tenant id
 * so every read is a primary-key lookup. A refresh token the provider rotated is kept here too
 * (sealed), tagged with the tenant settings version it descends from: a new consent or PATCHed
 * credentials (a newer version) make it obsolete without anyone having to delete it.
 */
export interface OAuthTokenDoc {
  _id: string;
  accessTokenSealed: string;
  obtainedAt: Date;
  expiresAt: Date;
  generation: number;
  rotatedRefreshTokenSealed?: string;
  rotatedFromVersion?: number;
  updatedAt: Date;
}

export interface StoredToken {
  accessToken: string;
  obtainedAt: number;
  expiresAt: number;
  generation: number;
}

/** Used consent `state` ids: inserting one twice fails on `_id`, which is how a replay is caught. */
interface UsedStateDoc {
  _id: string;
  tenantId: string;
  usedAt: Date;
}

const aad = (tenantId: string, field: string) => `oauth:${tenantId}:${field}`;

export class OAuthTokenRepository {
  private readonly col: Collection<OAuthTokenDoc>;
  private readonly states: Collection<UsedStateDoc>;

  constructor(
    db: Db,
    private readonly keyring: Keyring,
  ) {
    this.col = db.collection<OAuthTokenDoc>('oauth_tokens');
    this.states = db.collection<UsedStateDoc>('oauth_states_used');
  }

  static async ensureIndexes(db: Db): Promise<void> {
    // For the clean-up of old state ids (no TTL indexes on FerretDB).
    await db.collection('oauth_states_used').createIndex({ usedAt: 1 }, { name: 'usedAt' });
  }

  /** Stores a new token (generation + 1); a rotated refresh token is kept against `settingsVersion`. */
  async save(
    tenantId: string,
    grant: { accessToken: string; expiresAt: number; refreshToken?: string },
    settingsVersion: number,
    obtainedAt = Date.now(),
  ): Promise<StoredToken> {
    const set: Partial<OAuthTokenDoc> = {
      accessTokenSealed: this.keyring.seal(grant.accessToken, aad(tenantId, 'accessToken')),
      obtainedAt: new Date(obtainedAt),
      expiresAt: new Date(grant.expiresAt),
      updatedAt: new Date(),
    };
    if (grant.refreshToken) {
      set.rotatedRefreshTokenSealed = this.keyring.seal(grant.refreshToken, aad(tenantId, 'refreshToken'));
      set.rotatedFromVersion = settingsVersion;
    }
    const doc = await this.col.findOneAndUpdate(
      { _id: tenantId },
      { $set: set, $inc: { generation: 1 } },
      { upsert: true, returnDocument: 'after' },
    );
    return { accessToken: grant.accessToken, obtainedAt, expiresAt: grant.expiresAt, generation: doc?.generation ?? 1 };
  }

  async get(tenantId: string): Promise<StoredToken | null> {
    const doc = await this.col.findOne({ _id: tenantId });
    if (!doc) return null;
    return {
      accessToken: this.keyring.open(doc.accessTokenSealed, aad(tenantId, 'accessToken')),
      obtainedAt: doc.obtainedAt.getTime(),
      expiresAt: doc.expiresAt.getTime(),
      generation: doc.generation,
    };
  }

  /** The provider's newest refresh token, if it rotated one since the tenant's credentials were last set. */
  async rotatedRefreshToken(tenantId: string, settingsVersion: number): Promise<string | undefined> {
    const doc = await this.col.findOne({ _id: tenantId }, { projection: { rotatedRefreshTokenSealed: 1, rotatedFromVersion: 1 } });
    if (!doc?.rotatedRefreshTokenSealed || doc.rotatedFromVersion !== settingsVersion) return undefined;
    return this.keyring.open(doc.rotatedRefreshTokenSealed, aad(tenantId, 'refreshToken'));
  }

  async delete(tenantId: string): Promise<void> {
    await this.col.deleteOne({ _id: tenantId });
  }

  /** Records a consent state id as used; false if it was used before (a replay). */
  async useState(stateId: string, tenantId: string): Promise<boolean> {
    try {
      await this.states.insertOne({ _id: stateId, tenantId, usedAt: new Date() });
      return true;
    } catch (err) {
      if (isDuplicateKey(err)) return false;
      throw err;
    }
  }

  /** States expire anyway; their used-ids only need to outlive that. */
  async forgetStatesUsedBefore(before: Date): Promise<number> {
    return (await this.states.deleteMany({ usedAt: { $lt: before } })).deletedCount;
  }
}
