import type { Request } from 'express';
import { NotFoundError, ValidationError } from '../errors';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import { principalOf } from './auth';

/**
 * The tenant a request acts for: a tenant key's own tenant (naming another one is a 404, so keys
 * cannot probe ids), or, for the admin key, the `tenantId` it must name.
 */
export async function tenantFor(tenants: TenantRepository, req: Request, named: string | undefined): Promise<TenantDoc> {
  const p = principalOf(req);
  if (p.kind === 'tenant') {
    if (named !== undefined && named !== p.tenantId) throw new NotFoundError('tenant', named);
    return p.tenant;
  }
  if (!named)
    throw new ValidationError('the admin key must name tenantId', [{ field: 'tenantId', message: 'required with the admin key' }]);
  return tenants.get(named).catch((err: unknown) => {
    if (err instanceof NotFoundError)
      throw new ValidationError(`unknown tenantId ${named}`, [{ field: 'tenantId', message: 'no such tenant' }]);
    throw err;
  });
}
