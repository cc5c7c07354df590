import { isTenantId } from '../../domain/tenant-id';

/**
 * Every Cartero workflow id, built in one place. Dependency-free: workflow code builds ids too.
 *
 * Shape: `<family>-<tenantId>` for a tenant's singleton workflows and `<family>-<tenantId>:<item>`
 * for one of its items (a message, a case). The encoding is injective for every pair of parts:
 * a tenant id is 3-40 characters of `a-z0-9-` (never `:`), so the first `:` ends it, and no family
 * prefix is a prefix of another. Before this module, pairs were joined with `-`, so tenant `acme`'s
 * case `corp-T1` and tenant `acme-corp`'s case `T1` had the same id (docs/decisions.md).
 */
export const WORKFLOW_ID_FAMILIES = ['send', 'case', 'verify', 'oauth', 'ratelimit', 'webhooks', 'imap', 'delete', 'sentcopy'] as const;
export type WorkflowIdFamily = (typeof WORKFLOW_ID_FAMILIES)[number];

/** Families whose id names a tenant's item as well as the tenant. */
const ITEM_FAMILIES: ReadonlySet<WorkflowIdFamily> = new Set(['send', 'case', 'verify', 'sentcopy']);

const ITEM_PATTERN = /^[\x21-\x39\x3b-\x7e]{1,200}$/;

function checkTenant(tenantId: string): void {
  // A programming error, never user input: routes validate tenant ids long before this.
  if (!isTenantId(tenantId)) throw new TypeError(`not a tenant id: ${JSON.stringify(tenantId)}`);
}

/** `<family>-<tenantId>`: the tenant's one workflow of that family. */
export function tenantWorkflowId(family: Exclude<WorkflowIdFamily, 'send' | 'case' | 'verify' | 'sentcopy'>, tenantId: string): string {
  checkTenant(tenantId);
  return `${family}-${tenantId}`;
}

/** `<family>-<tenantId>:<item>`: the workflow of one of the tenant's items. */
export function tenantItemWorkflowId(family: 'send' | 'case' | 'verify' | 'sentcopy', tenantId: string, item: string): string {
  checkTenant(tenantId);
  if (!ITEM_PATTERN.test(item)) throw new TypeError(`not an item id for a workflow id: ${JSON.stringify(item)}`);
  return `${family}-${tenantId}:${item}`;
}

export interface ParsedWorkflowId {
  family: WorkflowIdFamily;
  tenantId: string;
  item: string | null;
}

/** The parts of an id this module built; null for anything else (legacy ids included). */
export function parseWorkflowId(id: string): ParsedWorkflowId | null {
  for (const family of WORKFLOW_ID_FAMILIES) {
    const prefix = `${family}-`;
    if (!id.startsWith(prefix)) continue;
    const rest = id.slice(prefix.length);
    const colon = rest.indexOf(':');
    if (ITEM_FAMILIES.has(family)) {
      if (colon < 0) return null;
      const tenantId = rest.slice(0, colon);
      const item = rest.slice(colon + 1);
      return isTenantId(tenantId) && ITEM_PATTERN.test(item) ? { family, tenantId, item } : null;
    }
    return colon < 0 && isTenantId(rest) ? { family, tenantId: rest, item: null } : null;
  }
  return null;
}

/** The webhook sweeper is per deployment (task queue), not per tenant. */
export const webhookSweeperWorkflowId = (taskQueue: string): string => `webhook-sweeper-${taskQueue}`;
/** So is the reconciler's schedule (its runs are named by Temporal from it). */
export const reconcileScheduleId = (taskQueue: string): string => `reconcile-${taskQueue}`;
/**
 * A tenant's health-check schedule, per deployment like the reconciler's (a schedule id, not a
 * workflow id: its runs are `verify-<tenant>:health-<time>`).
 */
export const tenantHealthScheduleId = (taskQueue: string, tenantId: string): string => {
  checkTenant(tenantId);
  return `health-${taskQueue}:${tenantId}`;
};

/**
 * Tenant-scoped hand-offs carry the tenant (and item) they were addressed for, and every handler
 * compares it with its own workflow's: a request that reached the wrong workflow is refused, whatever
 * its id. Optional only for signals recorded before this field existed.
 */
export interface AddressedTo {
  tenantId: string;
  item?: string;
}

/** True when a hand-off may be handled by the workflow of `tenantId` (and `item`). */
export function addressedHere(to: AddressedTo | undefined, tenantId: string, item?: string): boolean {
  if (to === undefined) return true;
  return to.tenantId === tenantId && (item === undefined || to.item === item);
}
