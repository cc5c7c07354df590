import { createHash, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { CONSENT_PROVIDERS, type ConsentProvider } from '../domain/oauth';
import { ConsentError } from '../errors';
import type { Keyring } from '../security/crypto';

/**
 * The consent flow's `state`: `<payload b64url>.<kid>.<HMAC-SHA256 b64url>`, signed with a key
 * derived (HKDF) from the encryption keyring's key `kid`, so it rotates with the keyring and no new
 * secret has to be configured. It names the tenant and provider, expires, carries a random id the
 * callback records to refuse replays, and the PKCE verifier sealed (AES-GCM, bound to that id): the
 * verifier travels through the browser only encrypted, and nothing is stored before the callback.
 */
export interface ConsentState {
  sid: string;
  tenantId: string;
  provider: ConsentProvider;
  exp: number;
  codeVerifier: string;
}

const payloadSchema = z.strictObject({
  sid: z.string().min(16).max(64),
  t: z.string().min(1).max(64),
  p: z.enum(CONSENT_PROVIDERS),
  exp: z.number().int(),
  v: z.string().min(1).max(512),
});

const b64u = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function stateKey(keyring: Keyring, kid: string): Buffer {
  return Buffer.from(hkdfSync('sha256', keyring.key(kid), Buffer.alloc(0), 'cartero/oauth-state/v1', 32));
}

function mac(keyring: Keyring, kid: string, payload: string): Buffer {
  return createHmac('sha256', stateKey(keyring, kid)).update(payload).digest();
}

/** A new PKCE pair (RFC 7636: 43-char verifier, S256 challenge). */
export function newPkce(): { codeVerifier: string; codeChallenge: string } {
  const codeVerifier = b64u(randomBytes(32));
  return { codeVerifier, codeChallenge: b64u(createHash('sha256').update(codeVerifier).digest()) };
}

export function signState(keyring: Keyring, s: Omit<ConsentState, 'sid'>, sid = b64u(randomBytes(18))): { state: string; sid: string } {
  const payload = b64u(
    JSON.stringify({ sid, t: s.tenantId, p: s.provider, exp: s.exp, v: keyring.seal(s.codeVerifier, `oauth-state:${sid}`) }),
  );
  const kid = keyring.activeKeyId;
  return { state: `${payload}.${kid}.${b64u(mac(keyring, kid, payload))}`, sid };
}

/** Checks signature then expiry; ConsentError `invalid_state` / `expired_state` otherwise. */
export function verifyState(keyring: Keyring, state: string, now = Date.now()): ConsentState {
  const parts = state.split('.');
  if (parts.length !== 3) throw new ConsentError('the state parameter is malformed', 'invalid_state');
  const [payload, kid, sig] = parts as [string, string, string];
  let expected: Buffer;
  try {
    expected = mac(keyring, kid, payload);
  } catch {
    throw new ConsentError('the state parameter was not issued by this service', 'invalid_state');
  }
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new ConsentError('the state parameter was not issued by this service (signature mismatch)', 'invalid_state');
  }
  let parsed: z.infer<typeof payloadSchema>;
  try {
    parsed = payloadSchema.parse(JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')));
  } catch {
    throw new ConsentError('the state parameter is malformed', 'invalid_state');
  }
  if (parsed.exp <= now) throw new ConsentError('the consent link expired; start the consent again', 'expired_state');
  return {
    sid: parsed.sid,
    tenantId: parsed.t,
    provider: parsed.p,
    exp: parsed.exp,
    codeVerifier: keyring.open(parsed.v, `oauth-state:${parsed.sid}`),
  };
}
