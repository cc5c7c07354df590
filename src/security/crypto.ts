import { createCipheriv, createDecipheriv, createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * AES-256-GCM with a key id carried beside every ciphertext, so keys rotate: new data uses the active
 * key, old data stays readable while its key is still configured.
 *
 * Sealed string format: `<format>.<kid>.<iv b64url>.<tag b64url>.<ciphertext b64url>`.
 * `aad` binds a ciphertext to its place (e.g. `tenant:<id>:smtp.password`) so a value copied into
 * another document or field does not decrypt. The format says how the caller built the AAD: `v1`
 * for the place alone, `v2` for a tenant's records sealed with its salt and, for credentials, the
 * endpoint they were given for (src/store/tenant-seal.ts). The format is not itself authenticated,
 * and needs not be: a `v2` value relabelled `v1` is opened with the other AAD and fails.
 */
export type SealFormat = 'v1' | 'v2';
const FORMATS: ReadonlySet<string> = new Set<SealFormat>(['v1', 'v2']);

export class Keyring {
  constructor(
    private readonly keys: ReadonlyMap<string, Buffer>,
    readonly activeKeyId: string,
  ) {
    if (!keys.has(activeKeyId)) throw new Error(`active key id ${activeKeyId} not in keyring`);
    for (const [kid, key] of keys) {
      if (key.length !== 32) throw new Error(`key ${kid} is not 32 bytes`);
    }
  }

  key(kid: string): Buffer {
    const key = this.keys.get(kid);
    if (!key) throw new DecryptionError(`unknown encryption key id "${kid}"`);
    return key;
  }

  encryptBytes(plain: Uint8Array, aad?: string): { kid: string; iv: Buffer; tag: Buffer; ciphertext: Buffer } {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key(this.activeKeyId), iv);
    if (aad !== undefined) cipher.setAAD(Buffer.from(aad, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    return { kid: this.activeKeyId, iv, tag: cipher.getAuthTag(), ciphertext };
  }

  decryptBytes(kid: string, iv: Uint8Array, tag: Uint8Array, ciphertext: Uint8Array, aad?: string): Buffer {
    const decipher = createDecipheriv('aes-256-gcm', this.key(kid), iv);
    if (aad !== undefined) decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      throw new DecryptionError(`ciphertext under key "${kid}" failed authentication`);
    }
  }

  seal(plain: string, aad: string, format: SealFormat = 'v1'): string {
    const { kid, iv, tag, ciphertext } = this.encryptBytes(Buffer.from(plain, 'utf8'), aad);
    return [format, kid, b64u(iv), b64u(tag), b64u(ciphertext)].join('.');
  }

  /** Opens a value of either format; the caller passes the AAD its format calls for (Keyring.formatOf). */
  open(sealed: string, aad: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 5 || !FORMATS.has(parts[0]!)) throw new DecryptionError('not a sealed value');
    const [, kid, iv, tag, ct] = parts as [string, string, string, string, string];
    return this.decryptBytes(kid, fromB64u(iv), fromB64u(tag), fromB64u(ct), aad).toString('utf8');
  }

  /** The format a sealed value was written in, or undefined for anything that is not one. */
  static formatOf(sealed: string): SealFormat | undefined {
    const parts = sealed.split('.');
    return parts.length === 5 && FORMATS.has(parts[0]!) ? (parts[0] as SealFormat) : undefined;
  }

  /** Key id a sealed value was written with; lets a rotation job find values to re-seal. */
  static keyIdOf(sealed: string): string | undefined {
    return Keyring.formatOf(sealed) ? sealed.split('.')[1] : undefined;
  }
}

export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url');
const fromB64u = (s: string): Buffer => Buffer.from(s, 'base64url');

/** A random secret with a readable prefix, e.g. `ck_live_…`; 32 random bytes. */
export function generateSecret(prefix: string): string {
  return `${prefix}${randomBytes(32).toString('base64url')}`;
}

/**
 * API keys are 256-bit random values, so a plain SHA-256 is a safe at-rest form (no dictionary to
 * attack) and lets the key be found by an indexed equality lookup.
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

export function constantTimeEqual(a: string, b: string): boolean {
  const ab = createHash('sha256').update(a).digest();
  const bb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ab, bb);
}
