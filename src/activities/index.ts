import { createBounceActivities, type BounceActivityDeps } from './bounces';
import { withFailureMapping } from './failures';
import { createMessageActivities, type MessageActivityDeps } from './messages';
import { createOAuthActivities, type OAuthActivityDeps } from './oauth';
import { createTenantActivities, type TenantActivityDeps } from './tenants';
import { createWebhookActivities, type WebhookActivityDeps } from './webhooks';

export type ActivityDeps = TenantActivityDeps & MessageActivityDeps & BounceActivityDeps & WebhookActivityDeps & OAuthActivityDeps;

export function createActivities(deps: ActivityDeps) {
  return withFailureMapping({
    ...createTenantActivities(deps),
    ...createMessageActivities(deps),
    ...createBounceActivities(deps),
    ...createWebhookActivities(deps),
    ...createOAuthActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
