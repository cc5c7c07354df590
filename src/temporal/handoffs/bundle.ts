/**
 * Modules the workflow bundle replaces by an empty module. The hand-off modules in this folder hold
 * both what workflows need (names, ids, signal definitions) and the client calls that use them, so
 * a workflow importing its definitions also imports `@temporalio/client`, whose gRPC code cannot run
 * (and must not be evaluated) in the workflow sandbox; no workflow ever calls a client function.
 */
export const WORKFLOW_BUNDLE_IGNORED_MODULES = ['@temporalio/client'];
