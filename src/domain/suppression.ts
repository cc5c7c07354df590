import { z } from 'zod';
import { addressSchema } from './message';

/** `POST /v1/suppressions`: a manual entry. Addresses are stored lowercased. */
export const suppressionCreateSchema = z.strictObject({
  tenantId: z.string().min(1).max(40).optional(),
  address: addressSchema,
  reason: z
    .string()
    .trim()
    .min(1)
    .max(500)
    .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must not contain control characters'),
});

export const suppressionListQuerySchema = z.strictObject({
  tenantId: z.string().min(1).max(40).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().max(300).optional(),
});

/** Path addresses for GET/DELETE: looser than a new address (bounces may name odd ones), still bounded. */
export const suppressedAddressParam = z
  .string()
  .min(3)
  .max(254)
  .regex(/^[^\s@\u0000-\u001f]+@[^\s@\u0000-\u001f]+$/, 'must be an e-mail address');
