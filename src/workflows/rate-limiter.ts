import {
  allHandlersFinished,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  patched,
  proxyLocalActivities,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { earliestGrantTime, pruneGrants, type Grant, type WindowRule } from '../domain/rate-limit';
import {
  limiterStatsQuery,
  requestPermitSignal,
  throttleSignal,
  wakeLimiterSignal,
  type LimiterInput,
  type LimiterStats,
  type PermitRequest,
} from '../temporal/handoffs/rate-limiter';
import { permitGrantedSignal } from '../temporal/handoffs/send-message';

/**
 * One limiter per tenant (`ratelimit-<tenant>`, src/temporal/handoffs/rate-limiter.ts). The queue of
 * permit requests and the log of recent grants live in the store (src/store/permits.ts); this
 * workflow holds the tenant id, the throttle pause and counters, and runs one tick
 * (src/activities/rate-limiter.ts) per turn: grant every request at the head that fits, tell their
 * senders in parallel, and learn when the next grant (or give-up) can be. Between ticks it sleeps
 * until then, or until a wake signal says the queue changed. Its history per run and what it
 * carries across continue-as-new stay bounded whatever the queue's length (docs/sending.md).
 */

/**
 * Command-sequence changes of this workflow, each guarded by patched() (docs/decisions.md, "Changing
 * workflow code"); runs recorded before a change replay down its old path.
 */
const QUEUE_IN_STORE = 'limiter-queue-in-store';

/** Continue as new past this many history events unless Temporal suggests it first. */
const HISTORY_LIMIT = 8000;

const acts = proxyLocalActivities<Activities>({
  // A tick signals up to 500 senders; the store and Temporal answer in well under this.
  startToCloseTimeout: '2 minutes',
  localRetryThreshold: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2 },
});

export async function rateLimiter(input: LimiterInput): Promise<void> {
  if (patched(QUEUE_IN_STORE)) return storeBacked(input, input.state);
  // Runs started before the queue moved to the store (and their recorded histories) go on here until
  // their next turn, then hand what they hold to the store and go on as a store-backed run.
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
    if (patched(QUEUE_IN_STORE)) return storeBacked(input, { queue, grants, rules, pausedUntil, stats });
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

/** The limiter over the store's queue; `legacy`: what a run from before holds, moved to the store first. */
async function storeBacked(input: LimiterInput, legacy: LimiterInput['state']): Promise<void> {
  const { tenantId, marginMs } = input;
  const historyLimit = input.historyLimit ?? HISTORY_LIMIT;
  let pausedUntil = legacy?.pausedUntil ?? input.carried?.pausedUntil ?? 0;
  let giveUpCheckAt = input.carried?.giveUpCheckAt ?? 0;
  const stats: LimiterStats = {
    ...(legacy?.stats ?? input.carried?.stats ?? { queued: 0, requests: 0, grants: 0, wakeups: 0, pausedUntil: 0 }),
  };
  stats.refused ??= 0;
  // Requests signalled the old way, until the next turn stores them: bounded by what arrives in one turn.
  const inbox: PermitRequest[] = [...(legacy?.queue ?? [])];
  let carriedGrants: Grant[] = legacy?.grants ?? [];
  let requested = false;
  let released = false;

  setHandler(wakeLimiterSignal, (w) => {
    if (w.tenantId !== tenantId) return;
    if (w.reason === 'release') {
      released = true;
      // A request back in line keeps its old wait: the give-up policy looks again.
      giveUpCheckAt = 0;
    } else {
      requested = true;
      stats.requests++;
    }
  });
  setHandler(requestPermitSignal, (req) => {
    if (req.tenantId !== undefined && req.tenantId !== tenantId) return;
    stats.requests++;
    inbox.push(req);
  });
  setHandler(throttleSignal, ({ untilMs, tenantId: to }) => {
    if (to !== undefined && to !== tenantId) return;
    pausedUntil = Math.max(pausedUntil, untilMs);
  });
  setHandler(limiterStatsQuery, () => ({ ...stats, pausedUntil }));

  // Checked on every path through the loop, waits included: wake signals alone grow the history.
  const handOverDue = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > historyLimit;

  for (;;) {
    if (inbox.length > 0 || carriedGrants.length > 0) {
      await acts.storeLegacyPermits(tenantId, inbox.splice(0), carriedGrants);
      carriedGrants = [];
    }
    requested = false;
    released = false;
    const tick = await acts.limiterTick({ tenantId, marginMs, pausedUntil, giveUpCheckAt });
    stats.grants += tick.granted;
    stats.refused += tick.refused;
    if (tick.queued !== null) stats.queued = tick.queued;
    if (!released) giveUpCheckAt = tick.giveUpCheckAt;

    if (handOverDue()) {
      await condition(allHandlersFinished);
      // A request signalled meanwhile is stored first: the next run carries nothing of the queue.
      if (inbox.length > 0) continue;
      await continueAsNew<typeof rateLimiter>({
        tenantId,
        marginMs,
        carried: { pausedUntil, giveUpCheckAt, stats: { ...stats, pausedUntil } },
        ...(input.historyLimit !== undefined ? { historyLimit: input.historyLimit } : {}),
      });
    }

    if (tick.nextAt === null) {
      // Idle. The grant log is in the store, so an idle limiter may end: the next request starts a
      // fresh run (signal-with-start) that reads the log. An hour of quiet first saves the restarts.
      const woken = await condition(() => requested || released || inbox.length > 0 || handOverDue(), '1 hour');
      if (!woken) {
        await condition(allHandlersFinished);
        if (!requested && !released && inbox.length === 0) return;
      }
      continue;
    }
    const wait = tick.nextAt - Date.now();
    if (wait > 0) {
      stats.wakeups++;
      // A new request queues behind a head that waits for the same windows: only a released slot
      // (or an old-style request, to be stored) is worth a turn before the timer.
      await condition(() => released || inbox.length > 0 || handOverDue(), wait);
    }
  }
}
