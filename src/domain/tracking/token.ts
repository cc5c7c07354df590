import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';

/**
 * Signed tracking tokens for the open pixel (`/t/o/:token`), click redirects (`/t/c/:token`) and
 * one-click unsubscribe (`/u/:token`). Pure and synchronous (no I/O), but it uses node:crypto, so
 * workflow code must not import it.
 *
 * Layout (before base64url): `ver kind kidLen kid tenantLen tenant msgLen msg recipient:u16`
 * then, for clicks only, `link:u16 urlLen:u16 url`, then the first 16 bytes (128 bits) of
 * HMAC-SHA256 over a domain-separation label and everything before it. A click redirects only to
 * the URL inside a token we signed, so the endpoint needs no store read and cannot be an open
 * redirect. Any change to any byte, including the non-canonical base64url spellings of the same
 * bytes, fails verification.
 */
export type TokenKind = 'open' | 'click' | 'unsubscribe';

export interface TokenClaims {
  kind: TokenKind;
  tenantId: string;
  messageId: string;
  /** Index into the message's recipients; null when the body is shared by several recipients. */
  recipient: number | null;
  /** Click tokens: index of the link in the message and the URL to redirect to. */
  link?: number;
  url?: string;
}

export interface VerifiedToken extends TokenClaims {
  /** The key id that signed it (useful when retiring keys). */
  keyId: string;
}

/** The master keys, by id (the encryption keyring); tracking keys are derived from them. */
export interface TokenKeySource {
  readonly activeKeyId: string;
  key(kid: string): Uint8Array | undefined;
}

const VERSION = 1;
const MAC_BYTES = 16;
const NO_RECIPIENT = 0xffff;
const KINDS: readonly TokenKind[] = ['open', 'click', 'unsubscribe'];
const LABEL = Buffer.from('cartero/tracking-token/v1\0', 'utf8');
/** Longer strings are refused before decoding (a URL of 2 KB plus the ids fits well under it). */
export const MAX_TOKEN_CHARS = 4096;
export const MAX_TRACKED_URL_BYTES = 2048;
const B64URL = /^[\w-]+$/;

export class TrackingTokens {
  private readonly derived = new Map<string, Buffer>();

  constructor(private readonly keys: TokenKeySource) {}

  /** HKDF from the master key: the tracking key never equals an encryption key, and rotates with it. */
  private keyFor(kid: string): Buffer | undefined {
    let k = this.derived.get(kid);
    if (k) return k;
    const master = this.keys.key(kid);
    if (!master) return undefined;
    k = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'cartero tracking tokens v1', 32));
    this.derived.set(kid, k);
    return k;
  }

  sign(claims: TokenClaims): string {
    const kid = this.keys.activeKeyId;
    const key = this.keyFor(kid);
    if (!key) throw new Error(`no key ${kid} for tracking tokens`);
    const parts: Buffer[] = [Buffer.from([VERSION, KINDS.indexOf(claims.kind) + 1])];
    for (const s of [kid, claims.tenantId, claims.messageId]) {
      const b = Buffer.from(s, 'utf8');
      if (b.length === 0 || b.length > 255) throw new Error('token field must be 1-255 bytes');
      parts.push(Buffer.from([b.length]), b);
    }
    const r = claims.recipient;
    if (r !== null && (!Number.isInteger(r) || r < 0 || r >= NO_RECIPIENT)) throw new Error(`recipient index ${r} out of range`);
    parts.push(u16(r ?? NO_RECIPIENT));
    if (claims.kind === 'click') {
      const url = Buffer.from(claims.url ?? '', 'utf8');
      const link = claims.link ?? -1;
      if (url.length === 0 || url.length > MAX_TRACKED_URL_BYTES) throw new Error('click URL must be 1-2048 bytes');
      if (!Number.isInteger(link) || link < 0 || link > 0xffff) throw new Error(`link index ${link} out of range`);
      parts.push(u16(link), u16(url.length), url);
    }
    const payload = Buffer.concat(parts);
    return Buffer.concat([payload, mac(key, payload)]).toString('base64url');
  }

  /** The claims of a genuine token of `kind`, or null: never throws on any input. */
  verify(token: string, kind: TokenKind): VerifiedToken | null {
    if (typeof token !== 'string' || token.length > MAX_TOKEN_CHARS || !B64URL.test(token)) return null;
    const raw = Buffer.from(token, 'base64url');
    // Buffer's decoder ignores the unused low bits of the last character: several strings map to
    // the same bytes. Only the canonical spelling is ours.
    if (raw.toString('base64url') !== token || raw.length <= MAC_BYTES + 2) return null;
    const payload = raw.subarray(0, raw.length - MAC_BYTES);
    const tag = raw.subarray(raw.length - MAC_BYTES);
    const parsed = parse(payload);
    if (!parsed || parsed.kind !== kind) return null;
    const key = this.keyFor(parsed.keyId);
    if (!key || !timingSafeEqual(mac(key, payload), tag)) return null;
    return parsed;
  }
}

function mac(key: Buffer, payload: Buffer): Buffer {
  return createHmac('sha256', key).update(LABEL).update(payload).digest().subarray(0, MAC_BYTES);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** Strict parse: every length must fit exactly, no trailing bytes. The MAC is checked afterwards. */
function parse(p: Buffer): VerifiedToken | null {
  let i = 0;
  const byte = (): number | null => (i < p.length ? p[i++]! : null);
  const short = (): number | null => {
    if (i + 2 > p.length) return null;
    const v = p.readUInt16BE(i);
    i += 2;
    return v;
  };
  const str = (len: number | null): string | null => {
    if (len === null || len === 0 || i + len > p.length) return null;
    const s = p.toString('utf8', i, i + len);
    i += len;
    return s;
  };
  if (byte() !== VERSION) return null;
  const k = byte();
  const kind = k === null ? undefined : KINDS[k - 1];
  if (!kind) return null;
  const keyId = str(byte());
  const tenantId = str(byte());
  const messageId = str(byte());
  const r = short();
  if (keyId === null || tenantId === null || messageId === null || r === null) return null;
  const claims: VerifiedToken = { kind, keyId, tenantId, messageId, recipient: r === NO_RECIPIENT ? null : r };
  if (kind === 'click') {
    const link = short();
    const url = str(short());
    if (link === null || url === null) return null;
    claims.link = link;
    claims.url = url;
  }
  return i === p.length ? claims : null;
}
