import type { ErrorRequestHandler, Response } from 'express';
import { isTransientStoreError } from '../store/mongo';
import { loggablePath } from '../logging';
import type { Logger } from 'pino';
import {
  AuthenticationError,
  BusyError,
  CarteroError,
  ConflictError,
  ConsentError,
  DependencyUnavailableError,
  IdentityProviderUnavailableError,
  OAuthCredentialsError,
  ForbiddenError,
  IdempotencyKeyReusedError,
  NotFoundError,
  PayloadTooLargeError,
  SealedCredentialsError,
  UnsupportedMediaTypeError,
  ValidationError,
  type FieldProblem,
} from '../errors';

/** RFC 9457 problem details. `errors` lists each offending field by its dotted path. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  errors?: FieldProblem[];
  /** Machine-readable cause for OAuth problems (e.g. `replayed_state`, `invalid_grant`). */
  code?: string;
}

const TYPE_BASE = 'https://cartero.dev/problems/';

/** The one mapping from error class to HTTP status. */
export function problemFor(err: CarteroError): Problem {
  const base = (status: number, slug: string, title: string): Problem => ({
    type: TYPE_BASE + slug,
    title,
    status,
    detail: err.message,
  });
  if (err instanceof ValidationError) return { ...base(400, 'validation', 'Invalid request'), errors: err.fields };
  if (err instanceof AuthenticationError) return base(401, 'unauthenticated', 'Authentication required');
  if (err instanceof ForbiddenError) return base(403, 'forbidden', 'Forbidden');
  if (err instanceof NotFoundError) return base(404, 'not-found', 'Not found');
  if (err instanceof ConflictError) return base(409, 'conflict', 'Conflict');
  if (err instanceof IdempotencyKeyReusedError)
    return {
      ...base(422, 'idempotency-key-reused', 'Idempotency key reused'),
      errors: [{ field: 'idempotencyKey', message: `already used with a different request: ${err.key}` }],
    };
  if (err instanceof SealedCredentialsError) return base(409, 'sealed-credentials', 'Stored credentials do not match the settings');
  if (err instanceof PayloadTooLargeError) return base(413, 'payload-too-large', 'Payload too large');
  if (err instanceof UnsupportedMediaTypeError) return base(415, 'unsupported-media-type', 'Unsupported media type');
  if (err instanceof DependencyUnavailableError) return base(503, 'dependency-unavailable', 'Service unavailable');
  if (err instanceof BusyError) return base(503, 'busy', 'Busy, retry later');
  if (err instanceof ConsentError)
    return { ...base(400, `oauth-consent/${err.code.replace(/_/g, '-')}`, 'OAuth consent refused'), code: err.code };
  if (err instanceof OAuthCredentialsError) return { ...base(400, 'oauth-credentials', 'OAuth credentials rejected'), code: err.code };
  if (err instanceof IdentityProviderUnavailableError) return base(502, 'identity-provider-unavailable', 'Identity provider unavailable');
  return base(500, 'internal', 'Internal error');
}

export function sendProblem(res: Response, problem: Problem): void {
  if (problem.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="cartero"');
  if (problem.status === 503) res.setHeader('Retry-After', '5');
  res.status(problem.status).type('application/problem+json').send(JSON.stringify(problem));
}

interface BodyParserError extends Error {
  type?: string;
  status?: number;
  limit?: number;
  charset?: string;
}

/** Last middleware: body-parser failures, Cartero errors, and anything unexpected (500, logged). */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    let carteroErr: CarteroError;
    const bp = err as BodyParserError;
    if (err instanceof CarteroError) {
      carteroErr = err;
      if (err instanceof DependencyUnavailableError && err.underlying !== undefined) {
        const underlying = err.underlying instanceof Error ? err.underlying.message : JSON.stringify(err.underlying);
        logger.warn({ err: underlying.slice(0, 500), dependency: err.dependency, path: loggablePath(req.path) }, 'dependency unavailable');
      }
    } else if (bp?.type === 'entity.parse.failed') {
      carteroErr = new ValidationError(`malformed JSON body: ${bp.message}`, [{ field: '(body)', message: 'malformed JSON' }]);
    } else if (bp?.type === 'entity.too.large') {
      carteroErr = new PayloadTooLargeError(`body exceeds the ${bp.limit} byte limit`);
    } else if (bp?.type === 'charset.unsupported' || bp?.type === 'encoding.unsupported') {
      carteroErr = new UnsupportedMediaTypeError(bp.message);
    } else if (bp?.type === 'request.aborted') {
      return;
    } else if (err instanceof URIError && bp.status === 400) {
      // Express could not decode a path parameter (`/v1/suppressions/100%`): the client's fault.
      carteroErr = new ValidationError('malformed percent-encoding in the path', [
        { field: '(path)', message: 'not valid percent-encoding' },
      ]);
    } else if (isTransientStoreError(err)) {
      // The driver's text names the store's host and port; it is for the log, not for whoever sent
      // the request (authentication itself reads the store, so that may be anyone).
      logger.warn({ err: (err as Error).message.slice(0, 500), path: loggablePath(req.path) }, 'store unavailable');
      carteroErr = new DependencyUnavailableError('store', 'the store is busy or unreachable; retry');
    } else {
      logger.error({ err, method: req.method, path: loggablePath(req.path) }, 'unhandled error');
      const problem: Problem = {
        type: TYPE_BASE + 'internal',
        title: 'Internal error',
        status: 500,
        detail: 'an internal error occurred; it has been logged',
      };
      if (!res.headersSent) sendProblem(res, problem);
      return;
    }
    if (res.headersSent) return;
    const problem = problemFor(carteroErr);
    if (problem.status >= 500) logger.warn({ err: carteroErr, path: loggablePath(req.path) }, 'dependency failure');
    sendProblem(res, { ...problem, instance: req.originalUrl });
  };
}
