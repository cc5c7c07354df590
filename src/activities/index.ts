import { withFailureMapping } from './failures';
import { createTenantActivities, type TenantActivityDeps } from './tenants';

export type ActivityDeps = TenantActivityDeps;

export function createActivities(deps: ActivityDeps) {
  return withFailureMapping({
    ...createTenantActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
