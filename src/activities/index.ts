import { createCaseActivities, type CaseActivityDeps } from './cases';
import { withFailureMapping } from './failures';
import { createMessageActivities, type MessageActivityDeps } from './messages';
import { createTenantActivities, type TenantActivityDeps } from './tenants';

export type ActivityDeps = TenantActivityDeps & MessageActivityDeps & CaseActivityDeps;

export function createActivities(deps: ActivityDeps) {
  return withFailureMapping({
    ...createTenantActivities(deps),
    ...createMessageActivities(deps),
    ...createCaseActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
