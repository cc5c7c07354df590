import { allHandlersFinished, condition, continueAsNew, log, proxyActivities, setHandler, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { Lanes, MAX_PARALLEL_LANES } from '../domain/webhooks';
import { eventsReadySignal, webhookStateQuery, type WebhookDeliveryInput } from '../temporal/handoffs/webhook-delivery';

/**
 * One workflow per tenant (`webhooks-<tenant>`, src/temporal/handoffs/webhook-delivery.ts) delivering its events to the product's webhook.
 * Events arrive by signal (ids and ordering only; the activity reads the event from the store).
 * Each lane (a case, else a message, else the event alone) is delivered strictly in order: its
 * next event waits until the head is delivered or has failed for good. Different lanes run in
 * parallel, at most MAX_PARALLEL_LANES at once. Retries are workflow timers, not activity retries,
 * so nothing is in flight for long and the workflow can continue-as-new at any time, carrying its
 * queues and each lane's next-attempt time.
 */

// The activity's own retries only cover infrastructure trouble (store down); HTTP failures are
// results that drive the workflow's backoff.
const acts = proxyActivities<Activities>({
  startToCloseTimeout: '3 minutes',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2, nonRetryableErrorTypes: ['ValidationError'] },
});

const IDLE_END = '10 minutes';
const DEFAULT_HISTORY_LIMIT = 5_000;

export async function webhookDelivery(input: WebhookDeliveryInput): Promise<void> {
  const lanes = new Lanes(input.lanes);
  const running = new Set<string>();
  let draining = false;
  setHandler(eventsReadySignal, ({ events, tenantId }) => {
    // Events handed over for another tenant are not this tenant's to deliver.
    if (tenantId !== undefined && tenantId !== input.tenantId) return;
    for (const e of events) lanes.add(e);
  });
  setHandler(webhookStateQuery, () => ({ queued: lanes.size, lanes: lanes.lanes.size, running: [...running] }));

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

  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  const historyIsLong = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength > historyLimit;
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
