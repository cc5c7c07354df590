import { createCaseActivities, type CaseActivityDeps } from './cases';
import { createBounceMailboxActivities, type BounceMailboxWatchDeps } from './bounce-mailbox-watch';
import { withFailureMapping } from './failures';
import { createMessageActivities, type MessageActivityDeps } from './messages';
import { createOAuthActivities, type OAuthActivityDeps } from './oauth';
import { createTenantActivities, type TenantActivityDeps } from './tenants';
import { createTenantDeletionActivities, type TenantDeletionDeps } from './tenant-deletion';
import { createWebhookActivities, type WebhookActivityDeps } from './webhooks';

export type ActivityDeps = TenantActivityDeps &
  MessageActivityDeps &
  CaseActivityDeps &
  WebhookActivityDeps &
  OAuthActivityDeps &
  BounceMailboxWatchDeps &
  TenantDeletionDeps;

export function createActivities(deps: ActivityDeps) {
  return withFailureMapping({
    ...createTenantActivities(deps),
    ...createMessageActivities(deps),
    ...createCaseActivities(deps),
    ...createWebhookActivities(deps),
    ...createOAuthActivities(deps),
    ...createBounceMailboxActivities(deps),
    ...createTenantDeletionActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
