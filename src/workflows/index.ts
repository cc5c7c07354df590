// Every workflow the worker runs. Deterministic code only: no I/O, no Node built-ins.
export { verifyTenantConnection } from './verify-connection';
export { sendMessage } from './send-message';
export { rateLimiter } from './rate-limiter';
export { webhookDelivery } from './webhook-delivery';
export { webhookSweeper } from './webhook-sweeper';
export { oauthToken } from './oauth-token';
export { bounceMailboxWatch } from './bounce-mailbox-watch';
export { caseWorkflow } from './case';
export { reconcileOrphans } from './reconciler';
export { tenantDeletion } from './tenant-deletion';
export { sentCopy } from './sent-copy';
