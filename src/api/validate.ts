import type { Request } from 'express';
import type { z } from 'zod';
import { UnsupportedMediaTypeError, ValidationError, zodToValidationError } from '../errors';

/** Parses a JSON body with a schema; anything else is a 415 or a 400 naming the field. */
export function parseBody<S extends z.ZodType>(req: Request, schema: S): z.infer<S> {
  if (!req.is('application/json')) {
    throw new UnsupportedMediaTypeError('send the body as application/json');
  }
  if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
    throw new ValidationError('the body must be a JSON object', [{ field: '(body)', message: 'must be a JSON object' }]);
  }
  const r = schema.safeParse(req.body);
  if (!r.success) throw zodToValidationError(r.error);
  return r.data;
}

export function parseParam<S extends z.ZodType>(value: unknown, name: string, schema: S): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodToValidationError(r.error, name);
  return r.data;
}
