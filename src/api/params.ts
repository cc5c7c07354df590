import { z } from 'zod';
import { CASE_ID_PATTERN } from '../domain/cases';
import { tenantIdSchema } from '../domain/tenant';

/**
 * Path and query parameters as the routes validate them; the OpenAPI document is generated from the
 * same schemas, so a schema-driven client (or fuzzer) generates what the API accepts.
 */
export { tenantIdSchema };
export const messageIdSchema = z.string().regex(/^m_[A-Za-z0-9]{10,40}$/, 'must be a message id (m_…)');
export const caseIdSchema = z.string().regex(CASE_ID_PATTERN, 'must be 1-64 characters of A-Z, a-z, 0-9, _ and -');
export const inboundMessageIdSchema = z.string().regex(/^i_[a-f0-9]{32}$/, 'must be an inbound message id (i_…)');
export const deliveryIdSchema = z.string().regex(/^msg_[0-9a-f]{32}$/, 'not a delivery id');
export const inboundKeySchema = z.string().regex(/^[\w-]{8,100}$/, 'not an inbound key');
/** `?tenantId=`: required with the admin key, ignored (must match) with a tenant key. */
export const tenantQuerySchema = tenantIdSchema.optional();
