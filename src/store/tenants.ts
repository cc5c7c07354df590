import type { Collection, Db } from 'mongodb';
import { isDuplicateKey } from './upsert';
import { AUTH_SECRET_FIELDS, type AuthInput, type AuthSecretField, type TenantSettings } from '../domain/tenant';
import { ConflictError, NotFoundError } from '../errors';
import { randomBytes } from 'node:crypto';
import { generateSecret, hashApiKey, type Keyring } from '../security/crypto';

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

  constructor(
    db: Db,
    private readonly keyring: Keyring,
  ) {
    this.col = db.collection<TenantDoc>('tenants');
    this.keys = db.collection<ApiKeyDoc>('api_keys');
    this.inboundKeys = db.collection<{ _id: string; tenantId: string }>('inbound_keys');
  }

  async create(id: string, settings: TenantSettings, auth: AuthInput): Promise<CreatedTenant> {
    const apiKey = generateSecret('ck_');
    // Standard Webhooks: `whsec_` + standard (padded) base64, which strict receivers' decoders need.
    const webhookSecret = `whsec_${randomBytes(32).toString('base64')}`;
    const now = new Date();
    const doc: TenantDoc = {
      _id: id,
      settings,
      auth: this.sealAuth(id, auth),
      inboundKey: generateSecret('ib_').slice(0, 35),
      apiKeyHash: hashApiKey(apiKey),
      webhookSecretSealed: this.keyring.seal(webhookSecret, aadFor(id, 'webhook.secret')),
      settingsVersion: 1,
      createdAt: now,
      updatedAt: now,
    };
    try {
      await this.col.insertOne(doc);
    } catch (err) {
      if (isDuplicateKey(err)) {
        throw new ConflictError(`tenant ${id} already exists`);
      }
      throw err;
    }
    await this.keys.insertOne({ _id: doc.apiKeyHash, tenantId: id, createdAt: now });
    await this.inboundKeys.insertOne({ _id: doc.inboundKey, tenantId: id });
    return { tenant: toView(doc), apiKey, webhookSecret };
  }

  async get(id: string): Promise<TenantDoc> {
    const doc = await this.col.findOne({ _id: id });
    if (!doc) throw new NotFoundError('tenant', id);
    return doc;
  }

  async findByApiKey(apiKey: string): Promise<TenantDoc | null> {
    const key = await this.keys.findOne({ _id: hashApiKey(apiKey) });
    if (!key) return null;
    const tenant = await this.col.findOne({ _id: key.tenantId });
    // The tenant's own record is authoritative: a key left behind by a crash mid-rotation is dead.
    return tenant && tenant.apiKeyHash === key._id ? tenant : null;
  }

  async findByInboundKey(inboundKey: string): Promise<TenantDoc | null> {
    return this.col.findOne({ inboundKey });
  }

  /**
   * Replaces settings (and auth when given) if nobody changed the tenant since `expectedVersion`.
   * Single-document conditional update: atomic on FerretDB and MongoDB alike.
   */
  async update(id: string, expectedVersion: number, settings: TenantSettings, auth: AuthInput | undefined): Promise<TenantDoc> {
    const set: Partial<TenantDoc> = { settings, updatedAt: new Date() };
    if (auth) set.auth = this.sealAuth(id, auth);
    const updated = await this.col.findOneAndUpdate(
      { _id: id, settingsVersion: expectedVersion },
      { $set: set, $inc: { settingsVersion: 1 } },
      { returnDocument: 'after' },
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
    const res = await this.col.updateOne({ _id: id }, { $set: { apiKeyHash: hash, updatedAt: new Date() } });
    if (res.matchedCount === 0) throw new NotFoundError('tenant', id);
    await this.keys.deleteOne({ _id: old.apiKeyHash });
    return apiKey;
  }

  async delete(id: string): Promise<void> {
    const doc = await this.col.findOneAndDelete({ _id: id });
    if (!doc) throw new NotFoundError('tenant', id);
    await this.keys.deleteOne({ _id: doc.apiKeyHash });
  }

  /** Decrypted auth; for activities only. Never log or return the result. */
  openAuth(doc: TenantDoc): AuthInput {
    const { sealed, ...rest } = doc.auth;
    const out: Record<string, unknown> = { ...rest };
    for (const [field, value] of Object.entries(sealed)) {
      if (value !== undefined) out[field] = this.keyring.open(value, aadFor(doc._id, `auth.${field}`));
    }
    return out as AuthInput;
  }

  /**
   * The receiver answered 410 Gone: remove the webhook, only if it still points at that URL (the
   * product may have set a new one meanwhile). Bumps settingsVersion like any change.
   */
  async disableWebhook(id: string, url: string): Promise<boolean> {
    const res = await this.col.updateOne(
      { _id: id, 'settings.webhook.url': url },
      { $set: { 'settings.webhook': null, updatedAt: new Date() }, $inc: { settingsVersion: 1 } },
    );
    return res.modifiedCount > 0;
  }

  openWebhookSecret(doc: TenantDoc): string {
    return this.keyring.open(doc.webhookSecretSealed, aadFor(doc._id, 'webhook.secret'));
  }

  private sealAuth(tenantId: string, auth: AuthInput): StoredAuth {
    const sealed: Partial<Record<AuthSecretField, string>> = {};
    const clear: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(auth)) {
      if ((AUTH_SECRET_FIELDS as readonly string[]).includes(k) && typeof v === 'string') {
        sealed[k as AuthSecretField] = this.keyring.seal(v, aadFor(tenantId, `auth.${k}`));
      } else {
        clear[k] = v;
      }
    }
    return { ...clear, type: auth.type, sealed };
  }
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
    settingsVersion: doc.settingsVersion,
    createdAt: doc.createdAt.toISOString(),
    updatedAt: doc.updatedAt.toISOString(),
  };
}
