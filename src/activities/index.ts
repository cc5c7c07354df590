import { createCaseActivities, type CaseActivityDeps } from './cases';
import { createBounceMailboxActivities, type BounceMailboxWatchDeps } from './bounce-mailbox-watch';
import { withFailureMapping } from './failures';
import { createMessageActivities, type MessageActivityDeps } from './messages';
import { createOAuthActivities, type OAuthActivityDeps } from './oauth';
import { createLimiterActivities, type LimiterActivityDeps } from './rate-limiter';
import { createSentCopyActivities, type SentCopyDeps } from './sent-copy';
import { createReconcileActivities, type ReconcileActivityDeps } from './reconcile';
import { createTenantActivities, type TenantActivityDeps } from './tenants';
import { createTenantDeletionActivities, type TenantDeletionDeps } from './tenant-deletion';
import { createWebhookActivities, type WebhookActivityDeps } from './webhooks';

export type ActivityDeps = TenantActivityDeps &
  MessageActivityDeps &
  LimiterActivityDeps &
  CaseActivityDeps &
  WebhookActivityDeps &
  OAuthActivityDeps &
  BounceMailboxWatchDeps &
  ReconcileActivityDeps &
  SentCopyDeps &
  TenantDeletionDeps;

export function createActivities(deps: ActivityDeps) {
  return withFailureMapping({
    ...createTenantActivities(deps),
    ...createMessageActivities(deps),
    ...createLimiterActivities(deps),
    ...createCaseActivities(deps),
    ...createWebhookActivities(deps),
    ...createOAuthActivities(deps),
    ...createBounceMailboxActivities(deps),
    ...createReconcileActivities(deps),
    ...createSentCopyActivities(deps),
    ...createTenantDeletionActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
