import type { NextFunction, Request, Response } from 'express';
import { AuthenticationError, ForbiddenError, NotFoundError } from '../errors';
import { constantTimeEqual } from '../security/crypto';

import type { TenantDoc, TenantRepository } from '../store/tenants';

/** For a tenant key, the tenant document read while authenticating (no second read per request). */
export type Principal = { kind: 'admin' } | { kind: 'tenant'; tenantId: string; tenant: TenantDoc };

declare module 'express-serve-static-core' {
  interface Request {
    principal?: Principal;
  }
}

export function bearerToken(req: Request): string | null {
  const h = req.headers.authorization;
  if (!h) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(h);
  return m ? (m[1] ?? null) : null;
}

/** Resolves `Authorization: Bearer` to the admin or a tenant; 401 otherwise. */
export function authenticate(adminKey: string, tenants: TenantRepository) {
  return async (req: Request, _res: Response, next: NextFunction): Promise<void> => {
    try {
      const token = bearerToken(req);
      if (!token) throw new AuthenticationError('missing Authorization: Bearer <key>');
      if (constantTimeEqual(token, adminKey)) {
        req.principal = { kind: 'admin' };
      } else {
        const tenant = token.startsWith('ck_') ? await tenants.findByApiKey(token) : null;
        if (!tenant) throw new AuthenticationError('invalid API key');
        req.principal = { kind: 'tenant', tenantId: tenant._id, tenant };
      }
      next();
    } catch (err) {
      next(err);
    }
  };
}

export function principalOf(req: Request): Principal {
  if (!req.principal) throw new AuthenticationError('not authenticated');
  return req.principal;
}

export function requireAdmin(req: Request): void {
  if (principalOf(req).kind !== 'admin') throw new ForbiddenError('this operation needs the admin key');
}

/** A tenant key sees only its own tenant; anything else is reported as not found (no existence oracle). */
export function requireTenantAccess(req: Request, tenantId: string): void {
  const p = principalOf(req);
  if (p.kind === 'tenant' && p.tenantId !== tenantId) throw new NotFoundError('tenant', tenantId);
}
