import { randomBytes } from 'node:crypto';
import { DecryptionError, Keyring } from '../security/crypto';

/**
 * How every secret a tenant owns is sealed (docs/decisions.md, "Secrets bound to their tenant and
 * endpoint"). The associated data of a `v2` value names:
 * - the tenant id and the tenant's **salt**, random and made when the tenant is created, so a record
 *   that outlived its tenant does not open for a new tenant given the same id;
 * - the **place** (`auth.password`, `bounce-mailbox.password`, `oauth.accessToken`…), so a value
 *   copied into another field does not open;
 * - for credentials, what they are **bound** to: the endpoint they were given for
 *   (src/domain/credential-endpoint.ts), and for access tokens the credentials they came from, so a
 *   value whose endpoint moved does not open.
 * Values sealed before salts existed are `v1` (place-only associated data). They open only for a
 * tenant that has no salt yet or is being upgraded (`acceptLegacy`, src/store/seal-upgrade.ts), never
 * for a tenant created since.
 */
export interface TenantSealScope {
  tenantId: string;
  /** Null only for a tenant created before salts that has not been upgraded yet. */
  salt: string | null;
  /** Whether `v1` values still open: only while a tenant from before salts is being upgraded. */
  acceptLegacy: boolean;
}

/**
 * What a tenant's OAuth2 access tokens (and rotated refresh tokens) are bound to: the tenant (salt),
 * its credential endpoint and the credentials themselves. A token obtained for one SMTP server or
 * with one set of credentials does not open once either has changed, so it is never handed to a
 * server the tenant's settings did not name when it was obtained.
 */
export interface CredentialBinding {
  scope: TenantSealScope;
  key: string;
}

export interface SealPlace {
  place: string;
  /** What the value is good for beyond its place (an endpoint key); absent for plain secrets. */
  bound?: string;
  /** The associated data the value had in the `v1` format. */
  legacyAad: string;
}

export const newTenantSalt = (): string => randomBytes(16).toString('base64url');

export function sealScopeOf(doc: { _id: string; salt?: string; legacySeals?: boolean }): TenantSealScope {
  return { tenantId: doc._id, salt: doc.salt ?? null, acceptLegacy: doc.salt === undefined || doc.legacySeals === true };
}

const v2Aad = (scope: TenantSealScope, where: SealPlace): string =>
  JSON.stringify(['cartero-seal-v2', scope.tenantId, scope.salt, where.place, where.bound ?? null]);

export function sealTenantSecret(keyring: Keyring, scope: TenantSealScope, where: SealPlace, plain: string): string {
  // A tenant from before salts keeps the old format until it is upgraded (which reseals this too).
  if (scope.salt === null) return keyring.seal(plain, where.legacyAad);
  return keyring.seal(plain, v2Aad(scope, where), 'v2');
}

/** The plain value; DecryptionError when it does not open here (moved endpoint, another tenant, wrong place). */
export function openTenantSecret(keyring: Keyring, scope: TenantSealScope, where: SealPlace, sealed: string): string {
  switch (Keyring.formatOf(sealed)) {
    case 'v2':
      if (scope.salt === null)
        throw new DecryptionError(`${where.place} is sealed for a tenant with a salt; tenant ${scope.tenantId} has none`);
      return keyring.open(sealed, v2Aad(scope, where));
    case 'v1':
      if (!scope.acceptLegacy) throw new DecryptionError(`${where.place} was sealed before tenant ${scope.tenantId} was created`);
      return keyring.open(sealed, where.legacyAad);
    case undefined:
      throw new DecryptionError('not a sealed value');
  }
}

/** Whether a value is still in the format from before salts (for the upgrade). */
export const isLegacySeal = (sealed: string): boolean => Keyring.formatOf(sealed) === 'v1';
