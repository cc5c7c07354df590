import { type Collection, type Db } from 'mongodb';
import { isDuplicateKey } from './upsert';
import { DecryptionError, type Keyring } from '../security/crypto';
import { isLegacySeal, openTenantSecret, sealTenantSecret, type CredentialBinding, type SealPlace } from './tenant-seal';

/**
 * Each tenant's current OAuth2 access token, sealed (AES-256-GCM), with its expiry and a generation
 * number that grows with every token obtained; keyed by `_id` = tenant id so every read is a
 * primary-key lookup. A refresh token the provider rotated is kept here too (sealed), tagged with
 * the tenant settings version it descends from: a new consent or PATCHed credentials (a newer
 * version) make it obsolete without anyone having to delete it.
 *
 * Both are sealed bound to the tenant (salt), its credential endpoint (SMTP host, port, TLS trust,
 * token URL) and the credentials they came from (CredentialBinding): a token obtained while the
 * tenant's settings named one SMTP server does not open once they name another, so it can only ever
 * be handed to the server it was obtained for.
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

const place = (binding: CredentialBinding, field: 'accessToken' | 'refreshToken'): SealPlace => ({
  place: `oauth.${field}`,
  bound: binding.key,
  legacyAad: `oauth:${binding.scope.tenantId}:${field}`,
});

/** The stored token if it opens for the binding asked for, and the generation stored either way. */
export interface TokenLookup {
  token: StoredToken | null;
  generation: number;
}

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

  /**
   * Stores a new token (generation + 1) obtained with the credentials of `binding`; a rotated refresh
   * token is kept against `settingsVersion`.
   */
  async save(
    binding: CredentialBinding,
    grant: { accessToken: string; expiresAt: number; refreshToken?: string },
    settingsVersion: number,
    obtainedAt = Date.now(),
  ): Promise<StoredToken> {
    const tenantId = binding.scope.tenantId;
    const set: Partial<OAuthTokenDoc> = {
      accessTokenSealed: sealTenantSecret(this.keyring, binding.scope, place(binding, 'accessToken'), grant.accessToken),
      obtainedAt: new Date(obtainedAt),
      expiresAt: new Date(grant.expiresAt),
      updatedAt: new Date(),
    };
    if (grant.refreshToken) {
      set.rotatedRefreshTokenSealed = sealTenantSecret(this.keyring, binding.scope, place(binding, 'refreshToken'), grant.refreshToken);
      set.rotatedFromVersion = settingsVersion;
    }
    const doc = await this.col.findOneAndUpdate(
      { _id: tenantId },
      { $set: set, $inc: { generation: 1 } },
      { upsert: true, returnDocument: 'after' },
    );
    return { accessToken: grant.accessToken, obtainedAt, expiresAt: grant.expiresAt, generation: doc?.generation ?? 1 };
  }

  /** The tenant's token, or null when there is none or it was obtained for other settings (see lookup). */
  async get(binding: CredentialBinding): Promise<StoredToken | null> {
    return (await this.lookup(binding)).token;
  }

  /**
   * The stored token when it opens for `binding`. A token obtained for another endpoint or other
   * credentials is no token (null), but its generation is reported, so a refresh can ask for a newer one.
   */
  async lookup(binding: CredentialBinding): Promise<TokenLookup> {
    const doc = await this.col.findOne({ _id: binding.scope.tenantId });
    if (!doc) return { token: null, generation: 0 };
    let accessToken: string;
    try {
      accessToken = openTenantSecret(this.keyring, binding.scope, place(binding, 'accessToken'), doc.accessTokenSealed);
    } catch (err) {
      if (err instanceof DecryptionError) return { token: null, generation: doc.generation };
      throw err;
    }
    return {
      token: { accessToken, obtainedAt: doc.obtainedAt.getTime(), expiresAt: doc.expiresAt.getTime(), generation: doc.generation },
      generation: doc.generation,
    };
  }

  /** The provider's newest refresh token, if it rotated one since the tenant's credentials were last set (and for them). */
  async rotatedRefreshToken(binding: CredentialBinding, settingsVersion: number): Promise<string | undefined> {
    const doc = await this.col.findOne(
      { _id: binding.scope.tenantId },
      { projection: { rotatedRefreshTokenSealed: 1, rotatedFromVersion: 1 } },
    );
    if (!doc?.rotatedRefreshTokenSealed || doc.rotatedFromVersion !== settingsVersion) return undefined;
    try {
      return openTenantSecret(this.keyring, binding.scope, place(binding, 'refreshToken'), doc.rotatedRefreshTokenSealed);
    } catch (err) {
      if (err instanceof DecryptionError) return undefined;
      throw err;
    }
  }

  /** Upgrade from before salts (src/store/seal-upgrade.ts): the tokens resealed `v2`, bound to the tenant's current settings. */
  async resealLegacy(binding: CredentialBinding): Promise<void> {
    const doc = await this.col.findOne({ _id: binding.scope.tenantId });
    if (!doc) return;
    const set: Partial<OAuthTokenDoc> = {};
    if (isLegacySeal(doc.accessTokenSealed)) {
      const token = openTenantSecret(this.keyring, binding.scope, place(binding, 'accessToken'), doc.accessTokenSealed);
      set.accessTokenSealed = sealTenantSecret(this.keyring, binding.scope, place(binding, 'accessToken'), token);
    }
    if (doc.rotatedRefreshTokenSealed && isLegacySeal(doc.rotatedRefreshTokenSealed)) {
      const token = openTenantSecret(this.keyring, binding.scope, place(binding, 'refreshToken'), doc.rotatedRefreshTokenSealed);
      set.rotatedRefreshTokenSealed = sealTenantSecret(this.keyring, binding.scope, place(binding, 'refreshToken'), token);
    }
    if (Object.keys(set).length === 0) return;
    // Only if no new token was stored meanwhile (that one is `v2` already).
    await this.col.updateOne({ _id: doc._id, generation: doc.generation }, { $set: set });
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
