import { randomBytes } from 'node:crypto';
import { Router, type Request } from 'express';
import type { Client } from '@temporalio/client';
import { WorkflowFailedError } from '@temporalio/client';
import type { ProbeResult } from '../../domain/smtp-probe';
import { addressRefusal, isIpLiteral, type AllowableClass } from '../../domain/network';
import {
  deliverySettingsChanged,
  mergeTenantPatch,
  resolveTenantSettings,
  tenantCreateSchema,
  tenantIdSchema,
  tenantPatchSchema,
  type SettingsProblem,
  type TenantSettings,
} from '../../domain/tenant';
import { DependencyUnavailableError, ForbiddenError, ValidationError } from '../../errors';
import { ensureTenantHealthSchedule, runVerification } from '../../temporal/handoffs/verify-connection';
import { startTenantDeletion, tenantDeletionWorkflowId } from '../../temporal/handoffs/tenant-deletion';
import { toView, type TenantRepository } from '../../store/tenants';
import { principalOf, requireAdmin, requireTenantAccess } from '../auth';
import { parseBody, parseParam } from '../validate';

export interface TenantRouteDeps {
  tenants: TenantRepository;
  temporal: Client;
  taskQueue: string;
  allowPrivateNetworks: readonly AllowableClass[];
  /** Called after a change that may unblock waiting sends (new credentials, new host, reactivation). */
  onDeliverySettingsChanged: (tenantId: string) => Promise<void>;
  /** The deletion workflow's wait between its two passes (TENANT_DELETION_SETTLE_MS). */
  deletionSettleMs: number;
  /** Each tenant's health-check schedule runs verify this often (TENANT_HEALTH_INTERVAL_MS). */
  healthIntervalMs: number;
  warn?: (msg: string, fields: Record<string, unknown>) => void;
}

function newTenantId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(12);
  return 't' + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

function settingsProblems(settings: TenantSettings, problems: SettingsProblem[], allow: readonly AllowableClass[]): void {
  // Literal addresses are checked now; names are checked after DNS, on every connection.
  if (settings.smtp.host && isIpLiteral(settings.smtp.host)) {
    const refusal = addressRefusal(settings.smtp.host, allow);
    if (refusal) problems.push({ field: 'smtp.host', message: refusal });
  }
  if (problems.length > 0) {
    throw new ValidationError(`invalid ${[...new Set(problems.map((p) => p.field))].join(', ')}`, problems);
  }
}

/** How long a tenant create or PATCH waits for its health schedule before answering anyway. */
const SCHEDULE_WAIT_MS = 5_000;

export function tenantRoutes(deps: TenantRouteDeps): Router {
  const r = Router();
  const idOf = (req: Request) => parseParam(req.params.id, 'id', tenantIdSchema);

  /**
   * The tenant's health-check schedule, created (or brought to the current interval) at create and
   * at every PATCH, so a tenant from before it, or whose create met Temporal down, gets it at its
   * next change. The tenant is stored already: a failure here is logged, never the request's answer.
   */
  const ensureHealthSchedule = async (tenantId: string): Promise<void> => {
    const ensured = ensureTenantHealthSchedule(deps.temporal, deps.taskQueue, tenantId, deps.healthIntervalMs).catch((err: unknown) => {
      deps.warn?.('could not create the tenant health-check schedule; the next PATCH tries again', {
        tenantId,
        err: (err as Error).message,
      });
    });
    // Temporal unreachable: the client retries for long; the answer does not wait for it.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([ensured, new Promise<void>((r) => (timer = setTimeout(r, SCHEDULE_WAIT_MS)))]);
    clearTimeout(timer);
  };

  r.post('/v1/tenants', async (req, res) => {
    requireAdmin(req);
    const body = parseBody(req, tenantCreateSchema);
    const { id, auth, ...rest } = body;
    const { settings, problems } = resolveTenantSettings(rest, auth.type);
    settingsProblems(settings, problems, deps.allowPrivateNetworks);
    const created = await deps.tenants.create(id ?? newTenantId(), settings, auth);
    await ensureHealthSchedule(created.tenant.id);
    res.status(201).location(`/v1/tenants/${created.tenant.id}`).json({
      tenant: created.tenant,
      // Shown once; only hashes / ciphertexts are kept.
      apiKey: created.apiKey,
      webhookSecret: created.webhookSecret,
    });
  });

  r.get('/v1/tenants/:id', async (req, res) => {
    const id = idOf(req);
    requireTenantAccess(req, id);
    res.json(toView(await deps.tenants.get(id)));
  });

  r.patch('/v1/tenants/:id', async (req, res) => {
    const id = idOf(req);
    requireTenantAccess(req, id);
    const patch = parseBody(req, tenantPatchSchema);
    if (patch.status !== undefined && principalOf(req).kind !== 'admin') {
      throw new ForbiddenError('only the admin key can change a tenant status');
    }
    const current = await deps.tenants.get(id);
    const merged = mergeTenantPatch(current.settings, patch);
    const { settings, problems } = resolveTenantSettings(merged, patch.auth?.type ?? current.auth.type);
    settingsProblems(settings, problems, deps.allowPrivateNetworks);
    const updated = await deps.tenants.update(id, current.settingsVersion, settings, patch.auth);
    if (deliverySettingsChanged(patch)) await deps.onDeliverySettingsChanged(id);
    await ensureHealthSchedule(id);
    res.json(toView(updated));
  });

  /**
   * Deletion is a durable workflow (`delete-<tenant>`): the tenant becomes a tombstone and its keys
   * stop working now; the workflow stops its workflows, removes its data and then the tombstone.
   * Until then the id is taken (POST answers 409). A repeated DELETE of a tenant being deleted
   * answers 202 again with the same workflow (and starts it if the first attempt could not).
   */
  r.delete('/v1/tenants/:id', async (req, res) => {
    // Another tenant's key learns nothing (404), its own key is told it needs the admin (403).
    requireTenantAccess(req, idOf(req));
    requireAdmin(req);
    const id = idOf(req);
    await deps.tenants.markDeleted(id, tenantDeletionWorkflowId(id));
    let workflowId: string;
    try {
      workflowId = await startTenantDeletion(deps.temporal, deps.taskQueue, { tenantId: id, settleMs: deps.deletionSettleMs });
    } catch (err) {
      throw new DependencyUnavailableError(
        'temporal',
        `tenant ${id} is marked deleted and its keys are revoked, but its deletion could not be started; repeat the DELETE`,
        err,
      );
    }
    res.status(202).json({ id, status: 'deleting', workflowId });
  });

  r.post('/v1/tenants/:id/api-key', async (req, res) => {
    requireTenantAccess(req, idOf(req));
    requireAdmin(req);
    const apiKey = await deps.tenants.rotateApiKey(idOf(req));
    res.status(201).json({ apiKey });
  });

  r.post('/v1/tenants/:id/verify', async (req, res) => {
    const id = idOf(req);
    requireTenantAccess(req, id);
    await deps.tenants.get(id); // 404 before any workflow starts
    let result: ProbeResult;
    try {
      result = await runVerification(deps.temporal, deps.taskQueue, id);
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        throw new DependencyUnavailableError('temporal', `verification did not complete: ${err.cause?.message ?? err.message}`);
      }
      throw new DependencyUnavailableError('temporal', 'cannot run verification now; retry', err);
    }
    res.json(result);
  });

  return r;
}
