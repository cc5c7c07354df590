import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import { earliestGrantTime, pruneGrants, type Grant, type WindowRule } from '../domain/rate-limit';
import {
  limiterStatsQuery,
  requestPermitSignal,
  throttleSignal,
  type LimiterInput,
  type LimiterStats,
  type PermitRequest,
} from '../temporal/handoffs/rate-limiter';
import { permitGrantedSignal } from '../temporal/handoffs/send-message';

/**
 * One limiter per tenant (`ratelimit-<tenant>`, src/temporal/handoffs/rate-limiter.ts), holding the tenant's queue of permit requests and
 * the log of recent grants. Send workflows ask once (signal) and are told once (signal) when their
 * slot comes: the work for N queued messages is N requests + N grants + at most N timer wake-ups,
 * with no polling and no herd waking on every free slot. FIFO by request order.
 */

export async function rateLimiter(input: LimiterInput): Promise<void> {
  const queue: PermitRequest[] = input.state?.queue ?? [];
  let grants: Grant[] = input.state?.grants ?? [];
  let rules: WindowRule[] = input.state?.rules ?? [];
  let pausedUntil = input.state?.pausedUntil ?? 0;
  const stats: LimiterStats = input.state?.stats ?? { queued: 0, requests: 0, grants: 0, wakeups: 0, pausedUntil: 0 };
  const queuedIds = new Set(queue.map((q) => q.workflowId));

  setHandler(requestPermitSignal, (req) => {
    // Another tenant's request (a misaddressed caller) must neither queue nor change the rules.
    if (req.tenantId !== undefined && req.tenantId !== input.tenantId) return;
    stats.requests++;
    rules = req.rules;
    // A sender re-asking (after a long wait) keeps its place instead of queueing twice.
    if (queuedIds.has(req.workflowId)) return;
    queuedIds.add(req.workflowId);
    // Requests nearly always arrive in order: scan from the tail, so this is O(1) in practice.
    let i = queue.length;
    while (i > 0 && queue[i - 1]!.acceptedAt > req.acceptedAt) i--;
    queue.splice(i, 0, req);
  });
  setHandler(throttleSignal, ({ untilMs, tenantId }) => {
    if (tenantId !== undefined && tenantId !== input.tenantId) return;
    pausedUntil = Math.max(pausedUntil, untilMs);
  });
  setHandler(limiterStatsQuery, () => ({ ...stats, queued: queue.length, pausedUntil }));

  for (;;) {
    // An idle limiter ends once no window can see its grants any more (a day for a per-day
    // limit); the next request starts a fresh one through signal-with-start.
    const gotWork = await condition(() => queue.length > 0, '1 hour');
    if (!gotWork) {
      grants = pruneGrants(grants, rules, Date.now(), input.marginMs);
      await condition(allHandlersFinished);
      if (queue.length === 0 && grants.length === 0) return;
      continue;
    }
    const head = queue[0]!;
    const now = Date.now();
    grants = pruneGrants(grants, rules, now, input.marginMs);
    const at = Math.max(earliestGrantTime(grants, rules, { recipients: head.recipients }, now, input.marginMs), pausedUntil);
    if (at > now) {
      stats.wakeups++;
      await sleep(at - now);
      continue;
    }
    queue.shift();
    queuedIds.delete(head.workflowId);
    grants.push({ at: now, recipients: head.recipients });
    stats.grants++;
    try {
      await getExternalWorkflowHandle(head.workflowId).signal(permitGrantedSignal, { grantedAt: now });
    } catch {
      // The sender is gone (cancelled, terminated): its slot stays counted, which only errs on the safe side.
    }
    if (workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > 8000) {
      await condition(allHandlersFinished);
      await continueAsNew<typeof rateLimiter>({
        tenantId: input.tenantId,
        marginMs: input.marginMs,
        state: { queue, grants, rules, pausedUntil, stats },
      });
    }
  }
}
