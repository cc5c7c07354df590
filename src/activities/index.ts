import { withFailureMapping } from './failures';
import { createMessageActivities, type MessageActivityDeps } from './messages';
import { createOAuthActivities, type OAuthActivityDeps } from './oauth';
import { createTenantActivities, type TenantActivityDeps } from './tenants';

export type ActivityDeps = TenantActivityDeps & MessageActivityDeps & OAuthActivityDeps;

export function createActivities(deps: ActivityDeps) {
  return withFailureMapping({
    ...createTenantActivities(deps),
    ...createMessageActivities(deps),
    ...createOAuthActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
