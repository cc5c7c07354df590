import { sentCopyPlan, type SentCopyMode, type SentCopyPlan } from '../domain/sent-copy';
import type { Collection, Db } from 'mongodb';
import { SharedReads, TenantReadCache } from './tenant-cache';
import { isDuplicateKey } from './upsert';
import { credentialMoveProblems, endpointKey, tenantCredentialEndpoint } from '../domain/credential-endpoint';
import { AUTH_SECRET_FIELDS, type AuthInput, type AuthSecretField, type TenantSettings } from '../domain/tenant';
import { ConflictError, NotFoundError, SealedCredentialsError, ValidationError } from '../errors';
import type { TenantWarning } from '../domain/smtp-probe';
import { tenantWarnings } from '../domain/verify-findings';
import type { HealthObservation, HealthStatus, TenantHealthView } from '../domain/tenant-health';
import { createHash, randomBytes } from 'node:crypto';
import { DecryptionError, generateSecret, hashApiKey, type Keyring } from '../security/crypto';
import {
  newTenantSalt,
  openTenantSecret,
  sealScopeOf,
  sealTenantSecret,
  type CredentialBinding,
  type SealPlace,
  type TenantSealScope,
} from './tenant-seal';

/** Auth as stored: the non-secret fields in clear, every secret sealed (AES-256-GCM, key id inside). */
export type StoredAuth = { type: AuthInput['type'] } & Record<string, unknown> & {
    sealed: Partial<Record<AuthSecretField, string>>;
  };

export interface TenantDoc {
  _id: string;
  settings: TenantSettings;
  auth: StoredAuth;
  inboundKey: string;
  apiKeyHash: string;
  webhookSecretSealed: string;
  /** Bumped on every change; optimistic concurrency and cache invalidation (SMTP pools) key on it. */
  settingsVersion: number;
  createdAt: Date;
  updatedAt: Date;
  /**
   * Random, made at create: part of the associated data of every secret sealed for this tenant
   * (src/store/tenant-seal.ts), so nothing sealed for an earlier tenant of the same id opens for it.
   * Absent only on tenants created before salts, until the upgrade at start gives them one.
   */
  salt?: string;
  /** Set while a tenant from before salts still has records sealed the old way (src/store/seal-upgrade.ts). */
  legacySeals?: boolean;
  /**
   * Tombstone: DELETE was accepted and the tenantDeletion workflow is removing the tenant's data. The
   * tenant is gone for every reader (get → 404, its keys revoked); its id stays taken until the
   * workflow removes this document.
   */
  deletion?: { requestedAt: Date; workflowId: string };
  /**
   * Health as last observed (src/activities/tenant-health.ts). Absent until the first observation:
   * healthy since creation. Any field may be missing (a first ok check sets only `checkedAt`).
   * `changes` counts status changes: the `tenant.health` event id carries it.
   */
  health?: { status?: HealthStatus; reason?: string | null; since?: Date; checkedAt?: Date; changes?: number };
}

/** A health status change won by this caller (compare-and-set): exactly one caller gets it per change. */
export interface HealthChange {
  status: HealthStatus;
  reason: string | null;
  since: Date;
  changes: number;
  preset: TenantSettings['preset'];
}

/** What the API may show: no secrets, only which ones are set. */
export interface TenantView {
  id: string;
  name: string;
  preset: TenantSettings['preset'];
  presetOptions: TenantSettings['presetOptions'];
  domains: string[];
  smtp: TenantSettings['smtp'];
  auth: Record<string, unknown>;
  limits: TenantSettings['limits'];
  tracking: TenantSettings['tracking'];
  inbound: { key: string; forwardingAddresses: string[] };
  webhook: { url: string; secretSet: true } | null;
  status: TenantSettings['status'];
  verify: NonNullable<TenantSettings['verify']>;
  sentCopy: SentCopyMode;
  /** What the Sent-copy setting means for this tenant now: appended to which IMAP server, or why not. */
  sentCopyPlan: SentCopyPlan;
  imap?: TenantSettings['imap'];
  /** The envelope sender of every message; null: each message's From address. */
  returnPath: string | null;
  /** Standing problems of the setup itself (e.g. `basic_auth_retirement`), each with its fix. */
  warnings: TenantWarning[];
  /** What the scheduled verify and real sends found lately (docs/operations.md, "Tenant health"). */
  health: TenantHealthView;
  settingsVersion: number;
  createdAt: string;
  updatedAt: string;
}

export interface CreatedTenant {
  tenant: TenantView;
  apiKey: string;
  webhookSecret: string;
}

const aadFor = (tenantId: string, field: string) => `tenant:${tenantId}:${field}`;

/** Where a tenant's auth secret is sealed: bound to the credential endpoint of `settings` and `auth`. */
function authPlace(tenantId: string, field: string, settings: TenantSettings, auth: Record<string, unknown> & { type: string }): SealPlace {
  return {
    place: `auth.${field}`,
    bound: endpointKey(tenantCredentialEndpoint(settings, auth)),
    legacyAad: aadFor(tenantId, `auth.${field}`),
  };
}

const webhookPlace = (tenantId: string): SealPlace => ({ place: 'webhook.secret', legacyAad: aadFor(tenantId, 'webhook.secret') });

/** The secrets a stored auth holds, by field. */
const sealedFields = (auth: StoredAuth): string[] =>
  Object.keys(auth.sealed).filter((k) => auth.sealed[k as AuthSecretField] !== undefined);

/**
 * API key hash → tenant, keyed by `_id` so the per-request lookup is a primary-key read on both
 * MongoDB and FerretDB (whose SQLite backend only pushes `_id` equality down to an index).
 */
interface ApiKeyDoc {
  _id: string;
  tenantId: string;
  createdAt: Date;
}

export class TenantRepository {
  private readonly col: Collection<TenantDoc>;
  private readonly keys: Collection<ApiKeyDoc>;
  /** Inbound key → tenant (`_id` = key), read by the inbound webhooks (store/inbound.ts). */
  private readonly inboundKeys: Collection<{ _id: string; tenantId: string }>;

  private readonly cache: TenantReadCache<TenantDoc>;
  /** With the cache on, concurrent misses share one read. */
  private readonly reads = new SharedReads<TenantDoc | null>();

  constructor(
    db: Db,
    private readonly keyring: Keyring,
    /** TENANT_CACHE_MS: how long findByApiKey and getRecent may answer from memory (0: never). */
    cacheMs = 0,
  ) {
    this.cache = new TenantReadCache<TenantDoc>(cacheMs);
    this.col = db.collection<TenantDoc>('tenants');
    this.keys = db.collection<ApiKeyDoc>('api_keys');
    this.inboundKeys = db.collection<{ _id: string; tenantId: string }>('inbound_keys');
  }

  async create(id: string, settings: TenantSettings, auth: AuthInput): Promise<CreatedTenant> {
    const apiKey = generateSecret('ck_');
    // Standard Webhooks: `whsec_` + standard (padded) base64, which strict receivers' decoders need.
    const webhookSecret = `whsec_${randomBytes(32).toString('base64')}`;
    const now = new Date();
    const salt = newTenantSalt();
    const scope: TenantSealScope = { tenantId: id, salt, acceptLegacy: false };
    const doc: TenantDoc = {
      _id: id,
      settings,
      auth: this.sealAuth(scope, settings, auth),
      inboundKey: generateSecret('ib_').slice(0, 35),
      apiKeyHash: hashApiKey(apiKey),
      webhookSecretSealed: sealTenantSecret(this.keyring, scope, webhookPlace(id), webhookSecret),
      settingsVersion: 1,
      createdAt: now,
      updatedAt: now,
      salt,
    };
    try {
      await this.col.insertOne(doc);
    } catch (err) {
      if (isDuplicateKey(err)) {
        const existing = await this.col.findOne({ _id: id }, { projection: { deletion: 1 } });
        if (existing?.deletion) {
          throw new ConflictError(
            `tenant ${id} is being deleted (workflow ${existing.deletion.workflowId}); its id can be used again once that has finished`,
          );
        }
        throw new ConflictError(`tenant ${id} already exists`);
      }
      throw err;
    }
    await this.keys.insertOne({ _id: doc.apiKeyHash, tenantId: id, createdAt: now });
    await this.inboundKeys.insertOne({ _id: doc.inboundKey, tenantId: id });
    return { tenant: toView(doc), apiKey, webhookSecret };
  }

  /** The live tenant; a tenant being deleted is not found. */
  async get(id: string): Promise<TenantDoc> {
    const doc = await this.col.findOne({ _id: id });
    if (!doc || doc.deletion) throw new NotFoundError('tenant', id);
    return doc;
  }

  /**
   * The live tenant as read at most TENANT_CACHE_MS ago (this process's own writes are seen at
   * once): for a send's first attempt, where a read per message is the cost and a second-old
   * setting is not (docs/decisions.md, "Tenant cache"). Anything that decides on a change reads
   * with get().
   */
  async getRecent(id: string): Promise<TenantDoc> {
    const cached = this.cache.tenant(id);
    if (cached) return cached;
    const generation = this.cache.generation;
    const load = async () => {
      const doc = await this.get(id);
      this.cache.put(generation, doc);
      return doc;
    };
    if (!this.cache.enabled) return load();
    return (await this.reads.run(`id:${id}`, generation, load))!;
  }

  async findByApiKey(apiKey: string): Promise<TenantDoc | null> {
    const hash = hashApiKey(apiKey);
    const cached = this.cache.tenantOfKey(hash);
    if (cached) return cached;
    const generation = this.cache.generation;
    const load = async () => {
      const key = await this.keys.findOne({ _id: hash });
      if (!key) return null;
      const tenant = await this.col.findOne({ _id: key.tenantId });
      // The tenant's own record is authoritative: a key left behind by a crash mid-rotation is dead,
      // and so is every key of a tenant being deleted.
      if (!tenant || tenant.deletion || tenant.apiKeyHash !== key._id) return null;
      this.cache.put(generation, tenant, hash);
      return tenant;
    };
    if (!this.cache.enabled) return load();
    return this.reads.run(`key:${hash}`, generation, load);
  }

  /** After every write of this repository: this process reads its own changes at once. */
  private async changed<T>(write: Promise<T>): Promise<T> {
    try {
      return await write;
    } finally {
      this.cache.clear();
    }
  }

  async findByInboundKey(inboundKey: string): Promise<TenantDoc | null> {
    const doc = await this.col.findOne({ inboundKey });
    return doc && !doc.deletion ? doc : null;
  }

  /**
   * Replaces settings (and auth when given) if nobody changed the tenant since `expectedVersion`.
   * Single-document conditional update: atomic on FerretDB and MongoDB alike.
   *
   * Without `auth`, the stored secrets stay, so the settings must keep the endpoint they were given
   * for: moving it is a ValidationError naming the moved fields and `auth` (the secrets would not
   * open for the new endpoint anyway, see openAuth; this says so before anything is stored).
   */
  async update(id: string, expectedVersion: number, settings: TenantSettings, auth: AuthInput | undefined): Promise<TenantDoc> {
    const current = await this.get(id);
    if (current.settingsVersion !== expectedVersion) throw new ConflictError(`tenant ${id} was changed concurrently; retry the request`);
    const set: Partial<TenantDoc> = { settings, updatedAt: new Date() };
    if (auth) {
      set.auth = this.sealAuth(sealScopeOf(current), settings, auth);
    } else {
      const problems = credentialMoveProblems(
        tenantCredentialEndpoint(current.settings, current.auth),
        tenantCredentialEndpoint(settings, current.auth),
        sealedFields(current.auth).map((f) => `auth.${f}`),
        'auth',
      );
      if (problems.length > 0) throw new ValidationError(`invalid ${[...new Set(problems.map((p) => p.field))].join(', ')}`, problems);
    }
    const updated = await this.changed(
      this.col.findOneAndUpdate(
        // The salt too: the secrets were sealed with the one read above (the upgrade may add one meanwhile).
        { _id: id, settingsVersion: expectedVersion, deletion: { $exists: false }, salt: current.salt ?? { $exists: false } },
        { $set: set, $inc: { settingsVersion: 1 } },
        { returnDocument: 'after' },
      ),
    );
    if (!updated) {
      await this.get(id); // 404 if it is gone
      throw new ConflictError(`tenant ${id} was changed concurrently; retry the request`);
    }
    return updated;
  }

  async rotateApiKey(id: string): Promise<string> {
    const old = await this.get(id);
    const apiKey = generateSecret('ck_');
    const hash = hashApiKey(apiKey);
    await this.keys.insertOne({ _id: hash, tenantId: id, createdAt: new Date() });
    const res = await this.changed(this.col.updateOne({ _id: id }, { $set: { apiKeyHash: hash, updatedAt: new Date() } }));
    if (res.matchedCount === 0) throw new NotFoundError('tenant', id);
    await this.keys.deleteOne({ _id: old.apiKeyHash });
    return apiKey;
  }

  /**
   * First step of DELETE: the tenant becomes a tombstone (gone for every reader, its id still taken)
   * and its API and inbound keys are revoked at once. Idempotent: a repeated DELETE of a tenant being
   * deleted revokes again (a crash may have come between the writes) and succeeds.
   * NotFoundError when there is no such tenant, live or being deleted.
   */
  async markDeleted(id: string, workflowId: string): Promise<void> {
    const now = new Date();
    const marked = await this.changed(
      this.col.findOneAndUpdate(
        { _id: id, deletion: { $exists: false } },
        { $set: { deletion: { requestedAt: now, workflowId }, updatedAt: now }, $inc: { settingsVersion: 1 } },
        { returnDocument: 'after' },
      ),
    );
    if (!marked && !(await this.col.findOne({ _id: id }, { projection: { _id: 1 } }))) throw new NotFoundError('tenant', id);
    await this.revokeKeys(id);
  }

  /** Last step of the deletion workflow: the id is free again. Never removes a live tenant. */
  async removeTombstone(id: string): Promise<boolean> {
    await this.revokeKeys(id);
    return (await this.changed(this.col.deleteOne({ _id: id, deletion: { $exists: true } }))).deletedCount === 1;
  }

  private async revokeKeys(id: string): Promise<void> {
    await this.changed(this.keys.deleteMany({ tenantId: id }));
    await this.inboundKeys.deleteMany({ tenantId: id });
  }

  /**
   * Decrypted auth; for activities only. Never log or return the result. SealedCredentialsError when
   * a secret does not open for the tenant's current settings: its endpoint was moved since it was
   * given (a store edited behind the API's back), or it was sealed for an earlier tenant of this id.
   */
  openAuth(doc: TenantDoc): AuthInput {
    const { sealed, ...rest } = doc.auth;
    const out: Record<string, unknown> = { ...rest };
    const scope = sealScopeOf(doc);
    for (const [field, value] of Object.entries(sealed)) {
      if (value === undefined) continue;
      try {
        out[field] = openTenantSecret(this.keyring, scope, authPlace(doc._id, field, doc.settings, doc.auth), value);
      } catch (err) {
        if (!(err instanceof DecryptionError)) throw err;
        throw new SealedCredentialsError(
          `stored credentials unusable: auth.${field} of tenant ${doc._id} does not open for its current settings; it was given ` +
            `for another endpoint (SMTP host, port, TLS trust, token URL) or another tenant of this id. Send auth again with the secret.`,
        );
      }
    }
    return out as AuthInput;
  }

  /** What the tenant's OAuth2 tokens are bound to now (see CredentialBinding). */
  credentialBinding(doc: TenantDoc): CredentialBinding {
    const credentials = createHash('sha256')
      .update(JSON.stringify(sealedFields(doc.auth).map((f) => [f, doc.auth.sealed[f as AuthSecretField]])))
      .digest('base64url');
    return { scope: sealScopeOf(doc), key: JSON.stringify([endpointKey(tenantCredentialEndpoint(doc.settings, doc.auth)), credentials]) };
  }

  /**
   * The receiver answered 410 Gone: remove the webhook, only if it still points at that URL (the
   * product may have set a new one meanwhile). Bumps settingsVersion like any change.
   */
  async disableWebhook(id: string, url: string): Promise<boolean> {
    const res = await this.changed(
      this.col.updateOne(
        { _id: id, 'settings.webhook.url': url, deletion: { $exists: false } },
        { $set: { 'settings.webhook': null, updatedAt: new Date() }, $inc: { settingsVersion: 1 } },
      ),
    );
    return res.modifiedCount > 0;
  }

  openWebhookSecret(doc: TenantDoc): string {
    return openTenantSecret(this.keyring, sealScopeOf(doc), webhookPlace(doc._id), doc.webhookSecretSealed);
  }

  /**
   * Applies what a verify or a send found. The status changes by a conditional single-document
   * update (atomic on FerretDB and MongoDB), so of many concurrent failures exactly one gets the
   * change back and emits its event; the others only find it degraded already. A send's success
   * writes nothing unless it recovers the tenant (callers skip it for a tenant they saw healthy).
   */
  async observeHealth(id: string, obs: HealthObservation, now = new Date()): Promise<HealthChange | null> {
    const live = { _id: id, deletion: { $exists: false } };
    const to: HealthStatus = obs.kind === 'failed' ? 'degraded' : 'healthy';
    const reason = obs.kind === 'failed' ? obs.reason : null;
    const changed = await this.changed(
      this.col.findOneAndUpdate(
        // A missing status is healthy: `$ne: 'degraded'` matches it, `degraded` does not.
        { ...live, 'health.status': to === 'degraded' ? { $ne: 'degraded' } : 'degraded' },
        {
          $set: { 'health.status': to, 'health.reason': reason, 'health.since': now, 'health.checkedAt': now },
          $inc: { 'health.changes': 1 },
        },
        { returnDocument: 'after' },
      ),
    );
    if (changed) {
      return { status: to, reason, since: now, changes: changed.health?.changes ?? 1, preset: changed.settings.preset };
    }
    // No change: a verify still records when it looked (a send's failure too: it is rare).
    if (obs.source === 'verify' || obs.kind === 'failed') await this.col.updateOne(live, { $set: { 'health.checkedAt': now } });
    return null;
  }

  /** Live tenants by health status (the worker's gauge): two counts, whatever the number of tenants. */
  async countByHealth(): Promise<Record<HealthStatus, number>> {
    const live = { deletion: { $exists: false } };
    const [all, degraded] = await Promise.all([
      this.col.countDocuments(live),
      this.col.countDocuments({ ...live, 'health.status': 'degraded' }),
    ]);
    return { healthy: all - degraded, degraded };
  }

  /** Tenants with records still sealed the way they were before salts (src/store/seal-upgrade.ts). */
  legacyTenants(): AsyncIterable<TenantDoc> {
    return this.col.find({ $or: [{ salt: { $exists: false } }, { legacySeals: true }], deletion: { $exists: false } });
  }

  /**
   * Gives a tenant from before salts its salt and reseals its own secrets in the `v2` format (bound
   * to the endpoint they are used with now); `legacySeals` stays set until its other records are
   * resealed too. The settings version is left alone: nothing a reader keys on changes.
   */
  async saltLegacy(doc: TenantDoc): Promise<TenantDoc> {
    for (let current: TenantDoc | null = doc; current; current = await this.col.findOne({ _id: doc._id })) {
      if (current.salt) return current;
      const auth = this.openAuth(current);
      const webhookSecret = this.openWebhookSecret(current);
      const salt = newTenantSalt();
      const scope: TenantSealScope = { tenantId: current._id, salt, acceptLegacy: true };
      const upgraded = await this.changed(
        this.col.findOneAndUpdate(
          { _id: current._id, settingsVersion: current.settingsVersion, salt: { $exists: false } },
          {
            $set: {
              salt,
              legacySeals: true,
              auth: this.sealAuth(scope, current.settings, auth),
              webhookSecretSealed: sealTenantSecret(this.keyring, scope, webhookPlace(current._id), webhookSecret),
            },
          },
          { returnDocument: 'after' },
        ),
      );
      if (upgraded) return upgraded;
    }
    throw new NotFoundError('tenant', doc._id);
  }

  /** The tenant's records are all in the `v2` format now: `v1` values no longer open for it. */
  async finishLegacy(id: string): Promise<void> {
    await this.changed(this.col.updateOne({ _id: id, legacySeals: true }, { $unset: { legacySeals: '' } }));
  }

  private sealAuth(scope: TenantSealScope, settings: TenantSettings, auth: AuthInput): StoredAuth {
    const sealed: Partial<Record<AuthSecretField, string>> = {};
    const clear: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(auth)) {
      if ((AUTH_SECRET_FIELDS as readonly string[]).includes(k) && typeof v === 'string') {
        sealed[k as AuthSecretField] = sealTenantSecret(this.keyring, scope, authPlace(scope.tenantId, k, settings, auth), v);
      } else {
        clear[k] = v;
      }
    }
    return { ...clear, type: auth.type, sealed };
  }
}

function healthView(doc: TenantDoc): TenantHealthView {
  const h = doc.health ?? {};
  return {
    status: h.status ?? 'healthy',
    reason: h.reason ?? null,
    since: (h.since ?? doc.createdAt).toISOString(),
    checkedAt: h.checkedAt ? h.checkedAt.toISOString() : null,
  };
}

export function toView(doc: TenantDoc): TenantView {
  const { sealed, ...authClear } = doc.auth;
  const secretsSet = Object.fromEntries(Object.keys(sealed).map((k) => [`${k}Set`, true] as const));
  const s = doc.settings;
  return {
    id: doc._id,
    name: s.name,
    preset: s.preset,
    presetOptions: s.presetOptions,
    domains: s.domains,
    smtp: s.smtp,
    auth: { ...authClear, ...secretsSet },
    limits: s.limits,
    tracking: s.tracking,
    inbound: { key: doc.inboundKey, forwardingAddresses: s.inbound.forwardingAddresses },
    webhook: s.webhook ? { url: s.webhook.url, secretSet: true } : null,
    status: s.status,
    verify: s.verify ?? {},
    sentCopy: s.sentCopy ?? 'auto',
    sentCopyPlan: sentCopyPlan(s),
    ...(s.imap ? { imap: s.imap } : {}),
    returnPath: s.returnPath ?? null,
    warnings: tenantWarnings(s.preset, doc.auth.type),
    health: healthView(doc),
    settingsVersion: doc.settingsVersion,
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
  };
}
