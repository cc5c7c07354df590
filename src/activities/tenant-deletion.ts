import { heartbeat } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ConflictError, orNullIfNotFound } from '../errors';
import type { Store } from '../store/mongo';
import { purgeTenantData } from '../store/tenant-purge';
import type { TenantRepository } from '../store/tenants';
import { terminateTenantWorkflows } from '../temporal/handoffs/tenant-deletion';
import { deleteTenantHealthSchedule } from '../temporal/handoffs/verify-connection';

export interface TenantDeletionDeps {
  tenants: TenantRepository;
  store: Store;
  temporal: Client;
  taskQueue: string;
}

/**
 * The steps of the tenantDeletion workflow. Each refuses to act on a live tenant: only a tombstone
 * (DELETE accepted) or a tenant already gone may be stopped and purged, so a deletion workflow
 * started by mistake, or still retrying after the id was somehow taken again, destroys nothing.
 */
export function createTenantDeletionActivities(deps: TenantDeletionDeps) {
  async function requireNotLive(tenantId: string): Promise<void> {
    if (await orNullIfNotFound(deps.tenants.get(tenantId))) {
      throw new ConflictError(`tenant ${tenantId} is live (not being deleted): its workflows and data are left alone`);
    }
  }

  return {
    /** Terminates the tenant's running workflows (its deletion aside); returns how many. */
    async stopTenantWorkflows(tenantId: string): Promise<number> {
      await requireNotLive(tenantId);
      // First the schedule, so it starts nothing new while its runs are stopped.
      await deleteTenantHealthSchedule(deps.temporal, deps.taskQueue, tenantId);
      return terminateTenantWorkflows(deps.temporal, tenantId, () => heartbeat());
    },

    /** Removes the tenant's documents and files from every collection and bucket; counts by collection. */
    async purgeTenantData(tenantId: string): Promise<Record<string, number>> {
      await requireNotLive(tenantId);
      return purgeTenantData(deps.store.db, tenantId, (collection, deleted) => heartbeat({ collection, deleted }));
    },

    /** Frees the id: a new tenant may be created under it from now on. */
    async removeTenantTombstone(tenantId: string): Promise<void> {
      await deps.tenants.removeTombstone(tenantId);
    },
  };
}
