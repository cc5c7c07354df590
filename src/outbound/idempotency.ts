import { createHash, randomBytes } from 'node:crypto';
import type { MessageCreateInput } from '../domain/message';
import { ConflictError, IdempotencyKeyReusedError } from '../errors';
import type { MessageDoc, MessageRepository } from '../store/messages';

/**
 * Idempotency keys as Stripe has them (docs/sending.md, "Idempotency"): a key names one request.
 * - The key is bound to a hash of the request — the canonical JSON of the validated body and the
 *   tenant — so the same key with another payload is refused (422 `idempotency-key-reused`).
 * - Exactly one request composes and stores the message: the claimer holds a lease on the key;
 *   the others with the same payload wait for its message and answer with it. If the claimer
 *   dies before storing it, its lease runs out and one waiting (or later) request takes over
 *   under the same message id; if it fails (a 400 from composing), it gives the key up.
 */
const IDEMPOTENCY_LEASE_MS = 30_000;
/** How long a request waits for a concurrent one with its key before answering 409 (retry). */
const WAIT_MS = 15_000;

/** `{"b":1,"a":[2]}` and `{"a":[2],"b":1}` are one request: keys sorted at every level. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

export function requestHash(tenantId: string, body: MessageCreateInput): string {
  return createHash('sha256').update(canonicalJson({ tenantId, body })).digest('base64url');
}

/** Ours to compose under `id` (we hold the key's lease), or the first request's stored message. */
export type KeyOutcome = { own: true; id: string; owner: string } | { own: false; existing: MessageDoc };

/**
 * Claims `key` for a request with `hash`, proposing `id` for its message. Throws
 * IdempotencyKeyReusedError when the key belongs to another payload, and ConflictError when a
 * request with this key is still composing after WAIT_MS (the client retries later).
 */
export async function claimKey(messages: MessageRepository, tenantId: string, key: string, hash: string, id: string): Promise<KeyOutcome> {
  const owner = randomBytes(12).toString('base64url');
  const deadline = Date.now() + WAIT_MS;
  let pause = 20;
  for (;;) {
    const claim = await messages.claimIdempotencyKey(tenantId, key, {
      messageId: id,
      requestHash: hash,
      owner,
      leaseMs: IDEMPOTENCY_LEASE_MS,
    });
    if (claim === null) continue; // given up between our insert and our read: claim it afresh
    if (claim.won) return { own: true, id, owner };
    // Keys claimed before requests were hashed carry none: they keep answering with their message.
    if (claim.requestHash !== null && claim.requestHash !== hash) throw new IdempotencyKeyReusedError(key);
    const existing = await messages.find(tenantId, claim.messageId);
    if (existing) return { own: false, existing };
    if (claim.leaseUntil === null || claim.leaseUntil.getTime() < Date.now()) {
      if (await messages.takeOverIdempotencyKey(tenantId, key, claim.leaseUntil, owner, IDEMPOTENCY_LEASE_MS)) {
        // Its first claimer may have stored the message between our read and the take-over.
        const stored = await messages.find(tenantId, claim.messageId);
        return stored ? { own: false, existing: stored } : { own: true, id: claim.messageId, owner };
      }
      continue;
    }
    if (Date.now() > deadline)
      throw new ConflictError(`a request with idempotency key "${key}" is still being processed; retry it in a few seconds`);
    await new Promise((r) => setTimeout(r, pause));
    pause = Math.min(pause * 2, 250);
  }
}
