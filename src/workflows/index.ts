// Every workflow the worker runs. Deterministic code only: no I/O, no Node built-ins.
export { verifyTenantConnection } from './verify-connection';
export { sendMessage } from './send-message';
export { rateLimiter } from './rate-limiter';
export { caseWorkflow } from './case';
