import { Router, type Request } from 'express';
import type { Client } from '@temporalio/client';
import { bounceMailboxPutSchema, bounceMailboxSettings } from '../../domain/bounce-mailbox';
import { addressRefusal, isIpLiteral, type AllowableClass } from '../../domain/network';
import { tenantIdSchema } from '../../domain/tenant';
import { DependencyUnavailableError, NotFoundError, ValidationError } from '../../errors';
import type { BounceMailboxDoc, BounceMailboxRepository } from '../../store/bounce-mailboxes';
import { sealScopeOf } from '../../store/tenant-seal';
import type { TenantDoc, TenantRepository } from '../../store/tenants';
import { bounceWatchWorkflowId, startOrWakeWatch, wakeWatchIfRunning } from '../../temporal/handoffs/bounce-mailbox-watch';
import { requireTenantAccess } from '../auth';
import { parseBody, parseParam } from '../validate';

export interface BounceMailboxRouteDeps {
  tenants: TenantRepository;
  bounceMailboxes: BounceMailboxRepository;
  temporal: Client;
  taskQueue: string;
  allowPrivateNetworks: readonly AllowableClass[];
}

/**
 * `/v1/tenants/:id/bounce-mailbox`: the optional IMAP watch of the tenant's bounce address
 * (docs/bounces.md, "IMAP watch"). PUT starts or restarts the watch workflow, DELETE stops it.
 */
export function bounceMailboxRoutes(deps: BounceMailboxRouteDeps): Router {
  const r = Router();
  const path = '/v1/tenants/:id/bounce-mailbox';
  const tenantDocOf = async (req: Request): Promise<TenantDoc> => {
    const id = parseParam(req.params.id, 'id', tenantIdSchema);
    requireTenantAccess(req, id);
    return deps.tenants.get(id); // 404 for an unknown tenant
  };
  const tenantOf = async (req: Request): Promise<string> => (await tenantDocOf(req))._id;

  r.put(path, async (req, res) => {
    const tenant = await tenantDocOf(req);
    const tenantId = tenant._id;
    const body = parseBody(req, bounceMailboxPutSchema);
    // Literal addresses are checked now; names after DNS, on every connection.
    if (isIpLiteral(body.host)) {
      const refusal = addressRefusal(body.host, deps.allowPrivateNetworks);
      if (refusal) throw new ValidationError('invalid host', [{ field: 'host', message: refusal }]);
    }
    if (body.auth.kind === 'oauth2' && tenant.auth.type !== 'oauth2')
      throw new ValidationError('invalid auth', [
        { field: 'auth.kind', message: 'oauth2 needs a tenant whose auth is oauth2 (its access token is used for IMAP too)' },
      ]);
    // Without a password the stored one is kept, only for the host, port and TLS trust it was given
    // with: a moved endpoint is a 400 naming the fields (the store refuses it).
    const doc = await deps.bounceMailboxes.put(sealScopeOf(tenant), bounceMailboxSettings(body), body.password);
    if (!doc)
      throw new ValidationError('invalid password', [{ field: 'password', message: 'required: no bounce mailbox is configured yet' }]);
    await wakeWatch(deps, tenantId, true);
    res.status(doc.generation === 1 ? 201 : 200).json(view(doc));
  });

  r.get(path, async (req, res) => {
    const tenantId = await tenantOf(req);
    const doc = await deps.bounceMailboxes.get(tenantId);
    if (!doc) throw new NotFoundError('bounce mailbox', tenantId);
    res.json(view(doc));
  });

  r.delete(path, async (req, res) => {
    const tenantId = await tenantOf(req);
    if (!(await deps.bounceMailboxes.delete(tenantId))) throw new NotFoundError('bounce mailbox', tenantId);
    // The watch finds its settings gone and ends. The DELETE is done once the settings are: a wake-up
    // that fails (Temporal unreachable) only delays the end until the watch's own check, within
    // WATCH_CHECK_MS, so its failure is not the caller's.
    await wakeWatch(deps, tenantId, false).catch(() => undefined);
    res.status(204).end();
  });

  return r;
}

/** Tells the watch its settings changed, starting it first when `start` (PUT). */
async function wakeWatch(deps: BounceMailboxRouteDeps, tenantId: string, start: boolean): Promise<void> {
  try {
    if (start) await startOrWakeWatch(deps.temporal, deps.taskQueue, tenantId);
    else await wakeWatchIfRunning(deps.temporal, tenantId);
  } catch (err) {
    // The settings are stored; a later PUT (or the running watch's own check) picks them up.
    throw new DependencyUnavailableError('temporal', 'bounce mailbox saved, but the watch could not be started; PUT again', err);
  }
}

function view(d: BounceMailboxDoc) {
  const s = d.settings;
  return {
    tenantId: d._id,
    host: s.host,
    port: s.port,
    security: s.security,
    tls: s.tls,
    user: s.user,
    auth: s.auth ?? { kind: 'password' },
    passwordSet: d.passwordSealed !== undefined,
    mailbox: s.mailbox,
    processedFolder: s.processedFolder,
    workflowId: bounceWatchWorkflowId(d._id),
    status: { ...d.status, since: d.status.since.toISOString(), lastConnectedAt: d.status.lastConnectedAt?.toISOString() ?? null },
    stats: { ...d.stats, lastProcessedAt: d.stats.lastProcessedAt?.toISOString() ?? null },
    createdAt: d.createdAt.toISOString(),
    updatedAt: d.updatedAt.toISOString(),
  };
}
