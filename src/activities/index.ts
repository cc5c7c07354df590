import { createCaseActivities, type CaseActivityDeps } from './cases';
import { createBounceActivities, type BounceActivityDeps } from './bounces';
import { withFailureMapping } from './failures';
import { createMessageActivities, type MessageActivityDeps } from './messages';
import { createTenantActivities, type TenantActivityDeps } from './tenants';

export type ActivityDeps = TenantActivityDeps & MessageActivityDeps & CaseActivityDeps & BounceActivityDeps;

export function createActivities(deps: ActivityDeps) {
  return withFailureMapping({
    ...createTenantActivities(deps),
    ...createMessageActivities(deps),
    ...createCaseActivities(deps),
    ...createBounceActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
