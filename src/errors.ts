import type { z } from 'zod';

/**
 * One error type per failure class. HTTP mapping lives in src/api/problem.ts, Temporal mapping in
 * src/activities/failures.ts; nothing else decides status codes or retryability.
 */
export interface FieldProblem {
  /** JSON-pointer-like dotted path of the offending field, e.g. `smtp.port`. */
  field: string;
  message: string;
}

export abstract class CarteroError extends Error {
  abstract readonly kind: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** Input that can never succeed as sent (400). */
export class ValidationError extends CarteroError {
  readonly kind = 'validation';
  constructor(
    message: string,
    readonly fields: FieldProblem[] = [],
  ) {
    super(message);
  }
}

/** zod issues → field problems with dotted paths; unknown keys are named one by one. */
export function zodToValidationError(error: z.ZodError, prefix = ''): ValidationError {
  const fields: FieldProblem[] = [];
  const join = (path: PropertyKey[]) => [prefix, ...path.map(String)].filter(Boolean).join('.') || '(body)';
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) fields.push({ field: join([...issue.path, key]), message: 'unknown field' });
    } else {
      fields.push({ field: join(issue.path), message: issue.message });
    }
  }
  const names = [...new Set(fields.map((f) => f.field))];
  return new ValidationError(`invalid ${names.join(', ')}`, fields);
}

/** Missing or wrong credentials for the API (401). */
export class AuthenticationError extends CarteroError {
  readonly kind = 'authentication';
}

/** Authenticated, but the caller may not do this (403). Used sparingly: other tenants' things are 404. */
export class ForbiddenError extends CarteroError {
  readonly kind = 'forbidden';
}

/** The resource does not exist, or is not visible to the caller (404). */
export class NotFoundError extends CarteroError {
  readonly kind = 'not_found';
  constructor(
    readonly resource: string,
    readonly id: string,
  ) {
    super(`${resource} ${id} not found`);
  }
}

/**
 * What `lookup` finds, or null when it does not exist (NotFoundError). Every other failure, a store
 * outage above all, is rethrown: it must not read as "no such thing".
 */
export async function orNullIfNotFound<T>(lookup: Promise<T>): Promise<T | null> {
  try {
    return await lookup;
  } catch (err) {
    if (err instanceof NotFoundError) return null;
    throw err;
  }
}

/** A uniqueness or state conflict (409). */
export class ConflictError extends CarteroError {
  readonly kind = 'conflict';
}

/**
 * An idempotency key used again with a different request (422): Stripe's rule — a key names one
 * request, so a different payload under it is a client bug, never silently answered with the
 * first request's result.
 */
export class IdempotencyKeyReusedError extends CarteroError {
  readonly kind = 'idempotency_key_reused';
  constructor(readonly key: string) {
    super(`idempotency key "${key}" was already used with a different request; use a new key for a new request`);
  }
}

/** Body over the configured limit (413). */
export class PayloadTooLargeError extends CarteroError {
  readonly kind = 'payload_too_large';
}

/** Body in a media type the route does not accept (415). */
export class UnsupportedMediaTypeError extends CarteroError {
  readonly kind = 'unsupported_media_type';
}

/** A dependency (store, Temporal, the mail parser threads) is down, busy or timed out: safe to retry (503). */
export class DependencyUnavailableError extends CarteroError {
  readonly kind = 'dependency_unavailable';
  constructor(
    readonly dependency: 'store' | 'temporal' | 'parser',
    message: string,
    /**
     * The client library's error, for the log only: its text names hosts and ports (a gRPC or driver
     * error), which are not for whoever sent the request.
     */
    readonly underlying?: unknown,
  ) {
    super(message);
  }
}

/**
 * This process already does as much of some work at once as it is configured to (inbound webhook
 * bodies in memory, a tenant's SMTP attempts): nothing is wrong with the request, retry later (503
 * with Retry-After; an activity is retried after `retryAfterMs` when given).
 */
export class BusyError extends CarteroError {
  readonly kind = 'busy';
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** An identity provider (OAuth2 token endpoint) is down, slow or answered 5xx/429: retry (502). */
export class IdentityProviderUnavailableError extends CarteroError {
  readonly kind = 'identity_provider_unavailable';
}

/**
 * The tenant's OAuth2 credentials cannot produce a token until a person acts: consent revoked or
 * expired (`invalid_grant`), wrong client secret, missing refresh token, a refused endpoint.
 * `code` is the provider's OAuth error code when there is one. The tenant goes to needs_reauth.
 */
export class OAuthCredentialsError extends CarteroError {
  readonly kind = 'oauth_credentials';
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/**
 * A stored secret (SMTP or IMAP password, OAuth2 client secret, refresh token, service-account key)
 * that does not open for the tenant's current settings: the endpoint it was given for (host, port,
 * TLS trust, token URL) has moved since, or the record belongs to an earlier tenant of the same id.
 * Nothing was sent anywhere; a person must supply the secret again (409 from the API; sends wait
 * for credentials).
 */
export class SealedCredentialsError extends CarteroError {
  readonly kind = 'sealed_credentials';
}

/** The consent callback cannot be accepted: denied, forged/expired/replayed state, failed code exchange (400). */
export class ConsentError extends CarteroError {
  readonly kind = 'consent';
  constructor(
    message: string,
    readonly code: 'access_denied' | 'invalid_state' | 'expired_state' | 'replayed_state' | 'provider_error' | 'exchange_failed',
  ) {
    super(message);
  }
}
