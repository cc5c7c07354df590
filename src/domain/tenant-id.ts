/**
 * What a tenant id may be: 3-40 characters of a-z, 0-9 and `-`, not starting or ending with `-`.
 * Dependency-free (no zod) because workflow ids are built from it inside workflow code, and no other
 * character may appear: Temporal workflow ids rely on `:` never being part of a tenant id.
 */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$/;

export const isTenantId = (s: string): boolean => TENANT_ID_PATTERN.test(s);
