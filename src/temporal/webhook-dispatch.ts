import type { Client } from '@temporalio/client';
import { laneOf } from '../domain/webhooks';
import { NotFoundError } from '../errors';
import type { EventRepository, QueueEntry } from '../store/events';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import { wakeWebhookDelivery } from './handoffs/webhook-delivery';

/**
 * Hands events from the outbox to each tenant's delivery workflow (`webhooks-<tenant>`): queues
 * them in the store (`webhook_queue`), wakes the workflow by signal-with-start, then deletes their
 * "undispatched" markers. Called on every append (through the repository's listener, coalesced per
 * tenant) and by the sweeper workflow for whatever an outage left behind. Handing over twice is
 * harmless: an event queued already keeps its place, the delivery activity skips events already
 * delivered. The queue is ordered by event time, so after an outage older events of a case still
 * go before newer ones.
 */
/** A marker whose event never appeared this long after it (its producer died in between). */
const ORPHAN_AFTER_MS = 60_000;
/** Markers handed over per store read. */
const MARKER_BATCH = 500;

export interface DispatcherDeps {
  events: EventRepository;
  tenants: TenantRepository;
  client: Client;
  taskQueue: string;
  warn?: (msg: string, fields: Record<string, unknown>) => void;
}

/**
 * How long "this tenant has (no) webhook" is believed. Events of a tenant without a webhook are
 * only recorded (no handover marker, no handover), which saves three store round trips per event;
 * the price is that a webhook configured in another process starts receiving events up to this
 * long later (docs/webhooks.md); `POST /v1/webhooks/test` is handed over at once regardless.
 */
export const WEBHOOK_PRESENCE_TTL_MS = 2_000;

export class WebhookDispatcher {
  private readonly inFlight = new Map<string, { again: boolean; done: Promise<void> }>();
  private readonly presence = new Map<string, { has: Promise<boolean>; until: number }>();

  constructor(private readonly deps: DispatcherDeps) {}

  /** The events outbox's handover filter: does the tenant have a webhook (a missing tenant: no)? */
  wantsHandover(tenantId: string): Promise<boolean> {
    const now = Date.now();
    const known = this.presence.get(tenantId);
    if (known && known.until > now) return known.has;
    const has = this.deps.tenants.get(tenantId).then(
      (t) => Boolean(t.settings.webhook),
      (err: unknown) => {
        this.presence.delete(tenantId);
        // Unsure (store trouble): hand over; the dispatcher decides again with the tenant in hand.
        return !(err instanceof NotFoundError);
      },
    );
    this.presence.set(tenantId, { has, until: now + WEBHOOK_PRESENCE_TTL_MS });
    if (this.presence.size > 10_000) this.presence.clear();
    return has;
  }

  /** Fire and forget (the append already succeeded); a failure is left to the sweeper. */
  notify(tenantId: string): void {
    const running = this.inFlight.get(tenantId);
    if (running) {
      running.again = true;
      return;
    }
    const state = { again: false, done: Promise.resolve() };
    state.done = (async () => {
      try {
        do {
          state.again = false;
          await this.dispatchTenant(tenantId);
        } while (state.again);
      } catch (err) {
        this.deps.warn?.('webhook handover failed; the sweeper will retry', { tenantId, err: (err as Error).message });
      } finally {
        this.inFlight.delete(tenantId);
      }
    })();
    this.inFlight.set(tenantId, state);
  }

  /** Resolves when every handover started so far has finished (shutdown, tests). */
  async idle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight.values()].map((s) => s.done));
  }

  /** Hands over every waiting event of a tenant; returns how many were queued for delivery. */
  async dispatchTenant(tenantId: string): Promise<number> {
    let total = 0;
    // Batches of markers, until fewer than a batch are left (an outage can leave thousands).
    for (;;) {
      const { queued, markers } = await this.dispatchBatch(tenantId);
      total += queued;
      if (markers < MARKER_BATCH) return total;
    }
  }

  private async dispatchBatch(tenantId: string): Promise<{ queued: number; markers: number }> {
    const { events } = this.deps;
    const markers = await events.undispatchedForTenant(tenantId, MARKER_BATCH);
    if (markers.length === 0) return { queued: 0, markers: 0 };
    let tenant: TenantDoc | null = null;
    try {
      tenant = await this.deps.tenants.get(tenantId);
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err;
    }
    const queued: QueueEntry[] = [];
    const handled: string[] = [];
    const now = Date.now();
    // Independent `_id` reads: in parallel (the handover is on the path of every event of the tenant).
    const found = await Promise.all(markers.map((m) => events.get(m._id)));
    for (const [i, m] of markers.entries()) {
      const e = found[i];
      if (!e) {
        if (now - m.createdAt.getTime() > ORPHAN_AFTER_MS) handled.push(m._id);
        continue;
      }
      // No webhook (or no tenant): the event stays recorded in the outbox and nothing is sent.
      if (tenant?.settings.webhook) queued.push({ id: e._id, tenantId, lane: laneOf(e), at: e.createdAt.getTime(), seq: m.seq });
      handled.push(m._id);
    }
    if (queued.length > 0) {
      // Queued before the wake-up, and the markers go only after it: a failure in between leaves
      // the markers for the sweeper, and queueing again is harmless.
      await events.enqueue(queued);
      await wakeWebhookDelivery(this.deps.client, this.deps.taskQueue, tenantId);
    }
    await events.markDispatched(handled);
    return { queued: queued.length, markers: markers.length };
  }

  /**
   * Wakes the workflows of tenants with events queued for a while: a run still on the code before
   * the queue moved to the store does not read it, and ends when idle; this starts the next one.
   */
  async wakeQueued(olderThanMs = 5 * 60_000): Promise<number> {
    const tenants = await this.deps.events.tenantsWithQueued(new Date(Date.now() - olderThanMs));
    for (const tenantId of tenants) {
      try {
        await wakeWebhookDelivery(this.deps.client, this.deps.taskQueue, tenantId);
      } catch (err) {
        this.deps.warn?.('sweep could not wake a delivery workflow', { tenantId, err: (err as Error).message });
      }
    }
    return tenants.length;
  }

  /** The sweeper's pass: every tenant with markers older than `graceMs` (fresh ones are in hand). */
  async sweep(graceMs = 5_000): Promise<number> {
    let n = 0;
    for (const tenantId of await this.deps.events.tenantsWithUndispatched(new Date(Date.now() - graceMs))) {
      try {
        n += await this.dispatchTenant(tenantId);
      } catch (err) {
        this.deps.warn?.("sweep could not hand over a tenant's events", { tenantId, err: (err as Error).message });
      }
    }
    return n;
  }
}
