import {
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Lanes, MAX_PARALLEL_LANES, type QueuedEvent } from '../domain/webhooks';
import { eventsReadySignal, webhookStateQuery, type WebhookDeliveryInput } from '../temporal/handoffs/webhook-delivery';

/**
 * One workflow per tenant (`webhooks-<tenant>`, src/temporal/handoffs/webhook-delivery.ts) delivering its events to the product's webhook.
 * The queue is in the store (`webhook_queue`, src/store/events.ts): a handover queues the events
 * there and signals a wake-up. The workflow works on at most MAX_PARALLEL_LANES lanes (a case, else
 * a message, else the event alone) at once, oldest head first, each strictly in order: its next
 * event waits until the head is delivered or has failed for good. It holds, per lane it works on,
 * a short window of the lane's next event ids and the time of the next attempt, and asks an
 * activity for more. Retries are workflow timers, not activity retries, so nothing is in flight for
 * long and the workflow can continue-as-new at any time, carrying only each lane's next-attempt time.
 */

/**
 * Patch ids (docs/decisions.md, "Changing workflow code"). `webhooks-queue-in-store`: the queue
 * moved from the workflow (ids in signals and in the continue-as-new input) to the store.
 */
export const WEBHOOKS_QUEUE_IN_STORE = 'webhooks-queue-in-store';

// The activity's own retries only cover infrastructure trouble (store down); HTTP failures are
// results that drive the workflow's backoff.
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '3 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2, nonRetryableErrorTypes: ['ValidationError'] },
});

const IDLE_END = '10 minutes';
const DEFAULT_HISTORY_LIMIT = 5_000;
/** Event ids of one lane held at once; the next ones are read from the store when these are done. */
export const LANE_WINDOW = 50;
/** Ids handed over by signals of the old shape (processes not yet deployed) queued per activity. */
const LEGACY_BATCH = 500;

export async function webhookDelivery(input: WebhookDeliveryInput): Promise<void> {
  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  const historyIsLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > historyLimit;
  // Signals and the query are registered before the first await, for both paths.
  const lanes = new Lanes(input.lanes);
  const legacy: QueuedEvent[] = [];
  const working = new Map<string, { ids: string[]; notBefore: number }>();
  const running = new Set<string>();
  let wake = true;
  // Decided before the handlers exist: signals buffered before the start are delivered as they are set.
  const storeQueue = patched(WEBHOOKS_QUEUE_IN_STORE);
  setHandler(eventsReadySignal, ({ events, tenantId }) => {
    // Events handed over for another tenant are not this tenant's to deliver.
    if (tenantId !== undefined && tenantId !== input.tenantId) return;
    if (storeQueue) {
      // Ids come only from processes still on the old code: queue them in the store.
      if (events) legacy.push(...events);
      wake = true;
    } else for (const e of events ?? []) lanes.add(e);
  });
  setHandler(webhookStateQuery, () =>
    storeQueue
      ? { queued: [...working.values()].reduce((n, w) => n + w.ids.length, 0), lanes: working.size, running: [...running] }
      : { queued: lanes.size, lanes: lanes.lanes.size, running: [...running] },
  );
  if (!storeQueue) return legacyLoop(input, lanes, running, historyIsLong, historyLimit);

  // A run continued from the old shape carries its queue: it goes to the store first.
  for (const [lane, l] of Object.entries(input.lanes ?? {})) {
    legacy.push(...l.queue);
    if (l.notBefore > 0 && working.size < MAX_PARALLEL_LANES) working.set(lane, { ids: [], notBefore: l.notBefore });
  }
  for (const [lane, notBefore] of Object.entries(input.retryAt ?? {})) {
    if (working.size < MAX_PARALLEL_LANES) working.set(lane, { ids: [], notBefore });
  }
  let draining = false;

  const runLane = async (key: string): Promise<void> => {
    running.add(key);
    try {
      for (;;) {
        const lane = working.get(key);
        const head = lane?.ids[0];
        if (!lane || !head || draining) return;
        const wait = lane.notBefore - Date.now();
        // Woken early only to continue-as-new; the wait is carried over in `retryAt`.
        if (wait > 0 && (await condition(() => draining, wait))) return;
        let step: Awaited<ReturnType<typeof acts.attemptWebhook>>;
        try {
          step = await acts.attemptWebhook({ tenantId: input.tenantId, eventId: head });
        } catch (err) {
          // Only a non-retryable activity failure gets here (infrastructure errors retry inside
          // the activity's policy): keep the event and look again later rather than fail the run.
          log.warn('webhook attempt failed outside the HTTP exchange', { eventId: head, err: (err as Error).message });
          step = { kind: 'retry', delayMs: 60_000 };
        }
        if (step.kind === 'retry') lane.notBefore = Date.now() + step.delayMs;
        else {
          lane.ids.shift();
          lane.notBefore = 0;
        }
      }
    } finally {
      running.delete(key);
    }
  };

  const needsEvents = () => [...working.entries()].filter(([k, w]) => w.ids.length === 0 && !running.has(k)).map(([k]) => k);
  const canStart = () => [...working.entries()].some(([k, w]) => w.ids.length > 0 && !running.has(k));
  const wantsLanes = () => wake && working.size < MAX_PARALLEL_LANES;

  for (;;) {
    // Checked on every pass, whatever else is going on.
    if (historyIsLong()) {
      draining = true;
      await condition(() => running.size === 0);
      await condition(allHandlersFinished);
      if (legacy.length === 0) {
        const retryAt: Record<string, number> = {};
        for (const [k, w] of working) if (w.notBefore > 0) retryAt[k] = w.notBefore;
        await continueAsNew<typeof webhookDelivery>({
          tenantId: input.tenantId,
          ...(Object.keys(retryAt).length > 0 ? { retryAt } : {}),
          ...(input.historyLimit ? { historyLimit } : {}),
        });
      }
    }
    if (legacy.length > 0) {
      await acts.enqueueWebhookEvents({ tenantId: input.tenantId, events: legacy.splice(0, LEGACY_BATCH) });
      wake = true;
      continue;
    }
    if (draining) {
      draining = false;
      continue;
    }
    const refill = needsEvents();
    if (refill.length > 0 || wantsLanes()) {
      const newLanes = wantsLanes() ? MAX_PARALLEL_LANES - working.size : 0;
      wake = false;
      const next = await acts.nextWebhookEvents({
        tenantId: input.tenantId,
        refill,
        busy: [...working.keys()],
        newLanes,
        perLane: LANE_WINDOW,
      });
      for (const { lane, ids } of next.lanes) {
        const w = working.get(lane);
        if (w && (w.ids.length > 0 || running.has(lane))) continue;
        if (ids.length === 0) {
          // The lane is empty: its place goes to the next lane waiting in the store.
          if (w) {
            working.delete(lane);
            wake = true;
          }
        } else if (w) w.ids = ids;
        else if (working.size < MAX_PARALLEL_LANES) working.set(lane, { ids, notBefore: 0 });
      }
      // A scan that stopped at its limit does not repeat until a lane frees up or a wake-up comes.
      continue;
    }
    for (const key of working.keys()) if (!running.has(key) && working.get(key)!.ids.length > 0) void runLane(key);
    if (working.size === 0 && running.size === 0) {
      // Idle: end after a while; the next handover starts a fresh run (signal-with-start).
      if (!(await condition(() => wake || legacy.length > 0 || historyIsLong(), IDLE_END))) {
        await condition(allHandlersFinished);
        if (!wake && legacy.length === 0) return;
      }
      continue;
    }
    await condition(() => historyIsLong() || legacy.length > 0 || wantsLanes() || needsEvents().length > 0 || canStart());
  }
}

/** Runs started before `webhooks-queue-in-store`: the queue in the workflow (kept verbatim). */
async function legacyLoop(
  input: WebhookDeliveryInput,
  lanes: Lanes,
  running: Set<string>,
  historyIsLong: () => boolean,
  historyLimit: number,
): Promise<void> {
  let draining = false;
  const runLane = async (key: string): Promise<void> => {
    running.add(key);
    try {
      for (;;) {
        const lane = lanes.lanes.get(key);
        const head = lane?.queue[0];
        if (!lane || !head || draining) return;
        const wait = lane.notBefore - Date.now();
        // Woken early only to continue-as-new; the wait is carried over in `notBefore`.
        if (wait > 0 && (await condition(() => draining, wait))) return;
        let step: Awaited<ReturnType<typeof acts.attemptWebhook>>;
        try {
          step = await acts.attemptWebhook({ tenantId: input.tenantId, eventId: head.id });
        } catch (err) {
          // Only a non-retryable activity failure gets here (infrastructure errors retry inside
          // the activity's policy): keep the event and look again later rather than fail the run.
          log.warn('webhook attempt failed outside the HTTP exchange', { eventId: head.id, err: (err as Error).message });
          step = { kind: 'retry', delayMs: 60_000 };
        }
        if (step.kind === 'retry') lane.notBefore = Date.now() + step.delayMs;
        else lanes.shift(key);
      }
    } finally {
      running.delete(key);
    }
  };

  const canStart = () => running.size < MAX_PARALLEL_LANES && lanes.hasReady(running);

  for (;;) {
    if (historyIsLong()) {
      draining = true;
      await condition(() => running.size === 0);
      await condition(allHandlersFinished);
      await continueAsNew<typeof webhookDelivery>({
        tenantId: input.tenantId,
        lanes: lanes.snapshot(),
        ...(input.historyLimit ? { historyLimit } : {}),
      });
    }
    for (const key of lanes.ready(running)) {
      if (running.size >= MAX_PARALLEL_LANES) break;
      void runLane(key);
    }
    if (lanes.size === 0 && running.size === 0) {
      // Idle: end after a while; the next handover starts a fresh run (signal-with-start).
      if (!(await condition(() => lanes.size > 0, IDLE_END))) {
        await condition(allHandlersFinished);
        if (lanes.size === 0) return;
      }
      continue;
    }
    await condition(() => canStart() || historyIsLong() || (lanes.size === 0 && running.size === 0));
  }
}
