import { withFailureMapping } from './failures';
import { createMessageActivities, type MessageActivityDeps } from './messages';
import { createTenantActivities, type TenantActivityDeps } from './tenants';
import { createWebhookActivities, type WebhookActivityDeps } from './webhooks';

export type ActivityDeps = TenantActivityDeps & MessageActivityDeps & WebhookActivityDeps;

export function createActivities(deps: ActivityDeps) {
  return withFailureMapping({
    ...createTenantActivities(deps),
    ...createMessageActivities(deps),
    ...createWebhookActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
