import { Router } from 'express';
import { z } from 'zod';
import { suppressedAddressParam, suppressionCreateSchema, suppressionListQuerySchema } from '../../domain/suppression';
import { NotFoundError, ValidationError } from '../../errors';
import type { SuppressionDoc, SuppressionRepository } from '../../store/suppressions';
import type { TenantRepository } from '../../store/tenants';
import { decodeCursor, nextCursor } from '../pagination';
import { tenantFor } from '../tenant-scope';
import { parseBody, parseParam } from '../validate';
import { tenantQuerySchema } from '../params';

export interface SuppressionRouteDeps {
  tenants: TenantRepository;
  suppressions: SuppressionRepository;
}

const tenantQuery = z.strictObject({ tenantId: tenantQuerySchema });

function parseQuery<S extends z.ZodType>(query: unknown, schema: S): z.infer<S> {
  const q = schema.safeParse(query);
  if (!q.success)
    throw new ValidationError(
      'invalid query',
      q.error.issues.map((i) => ({ field: i.path.join('.') || 'query', message: i.message })),
    );
  return q.data;
}

/** `/v1/suppressions`: the tenant's do-not-send list (hard bounces, complaints, unsubscribes, manual). */
export function suppressionRoutes(deps: SuppressionRouteDeps): Router {
  const r = Router();

  r.get('/v1/suppressions', async (req, res) => {
    const q = parseQuery(req.query, suppressionListQuerySchema);
    const tenant = await tenantFor(deps.tenants, req, q.tenantId);
    const before = decodeCursor(q.cursor);
    if (before && !before.id.startsWith(`${tenant._id}:`)) {
      throw new ValidationError('invalid cursor', [{ field: 'cursor', message: 'not a cursor returned by this API' }]);
    }
    const docs = await deps.suppressions.list(tenant._id, { limit: q.limit, ...(before ? { before } : {}) });
    res.json({ items: docs.map(view), nextCursor: nextCursor(docs, q.limit) });
  });

  r.post('/v1/suppressions', async (req, res) => {
    const body = parseBody(req, suppressionCreateSchema);
    const tenant = await tenantFor(deps.tenants, req, body.tenantId);
    const created = await deps.suppressions.add(tenant._id, body.address, 'manual', body.reason, null);
    const doc = await deps.suppressions.get(tenant._id, body.address);
    if (!doc) throw new NotFoundError('suppression', body.address);
    // Adding an address that is already suppressed is not an error; the first entry (and its reason) stays.
    res.status(created ? 201 : 200).json(view(doc));
  });

  r.get('/v1/suppressions/:address', async (req, res) => {
    const address = parseParam(req.params.address, 'address', suppressedAddressParam);
    const tenant = await tenantFor(deps.tenants, req, parseQuery(req.query, tenantQuery).tenantId);
    const doc = await deps.suppressions.get(tenant._id, address);
    if (!doc) throw new NotFoundError('suppression', address);
    res.json(view(doc));
  });

  r.delete('/v1/suppressions/:address', async (req, res) => {
    const address = parseParam(req.params.address, 'address', suppressedAddressParam);
    const tenant = await tenantFor(deps.tenants, req, parseQuery(req.query, tenantQuery).tenantId);
    if (!(await deps.suppressions.remove(tenant._id, address))) throw new NotFoundError('suppression', address);
    res.status(204).end();
  });

  return r;
}

function view(d: SuppressionDoc) {
  return {
    address: d.address,
    tenantId: d.tenantId,
    source: d.source,
    reason: d.reason,
    detail: d.detail,
    createdAt: d.createdAt.toISOString(),
  };
}
