/**
 * How many SMTP attempts this worker process runs at once, per tenant and as local activities
 * (docs/sending.md, "Tenant isolation"; docs/decisions.md, "One tenant's stalled server").
 *
 * A tenant gets at most min(its maxConnections, `tenantMax`) attempts in flight: its pool has no more
 * connections than that, so an attempt past it would only wait in nodemailer's queue, holding a slot
 * (a workflow-task slot as a local activity, an activity slot otherwise) for as long as the tenant's
 * server stalls. Attempts that do not get in wait outside every slot: a refused local attempt makes
 * the workflow schedule a regular activity, and a refused regular activity fails with a retry delay.
 *
 * Local attempts also share `localMax` across tenants: each holds a send workflow-task slot while it
 * lasts, and many tenants stalled at once must still leave slots for everyone else's workflow tasks.
 */
/** How far ahead retryDelayMs places a refused attempt at most (then it asks again). */
const MAX_LINE_MS = 30_000;
/** A tenant one of whose attempts ended this recently is moving (busy), not stalled. */
const MOVING_MS = 2_000;

export class SendGate {
  private readonly perTenant = new Map<string, number>();
  private local = 0;
  /** Regular attempts waiting here for one of their tenant's slots, oldest first. */
  private readonly waiting = new Map<string, Array<{ cap: number; local: boolean; wake: (release: (() => void) | null) => void }>>();
  private waiters = 0;
  /** Per tenant: how long its attempts hold a slot (moving average), when its virtual line is next free, when one last ended. */
  private readonly pace = new Map<string, { avgMs: number; nextAt: number; endedAt?: number }>();

  /**
   * `maxWaiters`: regular attempts that may wait in this process for a slot, all tenants together, each
   * for at most `waitMs` (SEND_GATE_WAIT_MS). A busy tenant's next attempt then starts the moment a
   * slot frees instead of after a retry delay; the bound keeps a stalled tenant's waiters from taking
   * more than that many activity slots (the rest are refused and retried later, as before).
   */
  constructor(
    private readonly tenantMax: number,
    private readonly localMax: number,
    private readonly maxWaiters = 0,
    private readonly waitMs = 0,
    /**
     * Waiters allowed, all tenants together, while the tenant they wait for is moving (an attempt of
     * its ended in the last 2 s) and their turn should come within `waitMs`: a one-tenant burst then
     * waits here once instead of being refused and retried again and again. A stalled tenant moves
     * no more, so its attempts get only `maxWaiters`; those admitted while it still moved give up
     * after `waitMs`. Default 3 × maxWaiters (three quarters of the activity slots by default).
     */
    private readonly movingWaitersMax = maxWaiters * 3,
  ) {}

  /** A release function, or null when the tenant (or, for a local attempt, the process) is at its cap. */
  tryEnter(tenantId: string, maxConnections: number, local: boolean): (() => void) | null {
    const cap = Math.max(1, Math.min(maxConnections, this.tenantMax));
    const n = this.perTenant.get(tenantId) ?? 0;
    if (n >= cap || (local && this.local >= this.localMax)) return null;
    return this.take(tenantId, local);
  }

  /**
   * A slot now, or after waiting for one (FIFO per tenant, at most `waitMs`, or `localWaitMs` for a
   * local attempt; `beat` called every few seconds meanwhile); null when none freed in time or too many
   * wait already. A local attempt waits only for its tenant's slot, briefly: it holds a workflow-task
   * slot meanwhile, so a stalled tenant's local attempts soon go to regular activities instead.
   */
  async enter(tenantId: string, maxConnections: number, beat: () => void, local = false, localWaitMs = 0): Promise<(() => void) | null> {
    const now = this.tryEnter(tenantId, maxConnections, local);
    const waitMs = local ? localWaitMs : this.waitMs;
    // A local attempt refused by the process-wide local cap does not wait: a regular activity takes it.
    const tenantFull = (this.perTenant.get(tenantId) ?? 0) >= Math.max(1, Math.min(maxConnections, this.tenantMax));
    if (now || waitMs <= 0 || (local && !tenantFull) || !this.mayWait(tenantId, maxConnections, local, waitMs)) return now;
    const cap = Math.max(1, Math.min(maxConnections, this.tenantMax));
    const queue = this.waiting.get(tenantId) ?? [];
    this.waiting.set(tenantId, queue);
    this.waiters++;
    return new Promise((resolve) => {
      const entry = {
        cap,
        local,
        wake: (release: (() => void) | null) => {
          clearTimeout(timer);
          clearInterval(beats);
          this.waiters--;
          resolve(release);
        },
      };
      const beats = setInterval(beat, 5_000);
      const timer = setTimeout(() => {
        const i = queue.indexOf(entry);
        if (i >= 0) queue.splice(i, 1);
        if (queue.length === 0 && this.waiting.get(tenantId) === queue) this.waiting.delete(tenantId);
        entry.wake(null);
      }, waitMs);
      queue.push(entry);
    });
  }

  /** Whether one more attempt may wait here for the tenant (see maxWaiters and movingWaitersMax). */
  private mayWait(tenantId: string, maxConnections: number, local: boolean, waitMs: number, now = Date.now()): boolean {
    if (this.waiters < this.maxWaiters) return true;
    if (local || this.waiters >= this.movingWaitersMax) return false;
    const p = this.pace.get(tenantId);
    if (!p?.endedAt || now - p.endedAt > MOVING_MS) return false;
    // Its turn: behind the tenant's waiters, one slot-time each (average attempt over its slots).
    const cap = Math.max(1, Math.min(maxConnections, this.tenantMax));
    const ahead = (this.waiting.get(tenantId)?.length ?? 0) + 1;
    return (ahead * p.avgMs) / cap <= waitMs;
  }

  /**
   * Whether a regular attempt would be refused at once (the tenant's slots taken and no room to
   * wait): the activity can then be refused before it reads anything.
   */
  wouldRefuse(tenantId: string, maxConnections: number): boolean {
    const cap = Math.max(1, Math.min(maxConnections, this.tenantMax));
    if ((this.perTenant.get(tenantId) ?? 0) < cap) return false;
    return this.waitMs <= 0 || !this.mayWait(tenantId, maxConnections, false, this.waitMs);
  }

  /**
   * The wait before a refused regular attempt tries again: its place in the tenant's line. Each refusal
   * takes the next free moment of a virtual line that advances by one slot-time (the tenant's average
   * attempt over its K slots) and starts behind the attempts in flight and waiting here, so a burst of
   * one tenant's messages comes back spread at the rate its server takes them, instead of all retrying
   * together. Never shorter than a quarter of busyRetryDelayMs for the activity's attempt number (a
   * stalled tenant, whose attempts end rarely, still backs off), and looking at most MAX_LINE_MS ahead.
   */
  retryDelayMs(tenantId: string, maxConnections: number, activityAttempt: number, random: () => number, now = Date.now()): number {
    const cap = Math.max(1, Math.min(maxConnections, this.tenantMax));
    const p = this.pace.get(tenantId) ?? { avgMs: 200, nextAt: 0 };
    this.pace.set(tenantId, p);
    const slotMs = p.avgMs / cap;
    const ahead = (this.perTenant.get(tenantId) ?? 0) + (this.waiting.get(tenantId)?.length ?? 0);
    // The line looks at most MAX_LINE_MS ahead: a position given on an old pace must not idle the slots later.
    const at = Math.min(now + MAX_LINE_MS, Math.max(p.nextAt, now + ahead * slotMs));
    p.nextAt = at + slotMs;
    const line = Math.round((at - now) * (0.9 + random() * 0.2));
    return Math.max(busyRetryDelayMs(activityAttempt, random) / 4, line);
  }

  /** How long one of the tenant's attempts held its slot (a moving average feeds retryDelayMs). */
  noteAttempt(tenantId: string, ms: number, now = Date.now()): void {
    const p = this.pace.get(tenantId);
    if (p) {
      p.avgMs = 0.8 * p.avgMs + 0.2 * ms;
      p.endedAt = now;
    } else this.pace.set(tenantId, { avgMs: ms, nextAt: 0, endedAt: now });
  }

  private take(tenantId: string, local: boolean): () => void {
    this.perTenant.set(tenantId, (this.perTenant.get(tenantId) ?? 0) + 1);
    if (local) this.local++;
    const started = Date.now();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.noteAttempt(tenantId, Date.now() - started);
      const left = (this.perTenant.get(tenantId) ?? 1) - 1;
      if (left > 0) this.perTenant.set(tenantId, left);
      else this.perTenant.delete(tenantId);
      if (local) this.local--;
      this.handOn(tenantId);
    };
  }

  /** A freed slot goes to the tenant's oldest waiter, if its cap allows. */
  private handOn(tenantId: string): void {
    const queue = this.waiting.get(tenantId);
    const next = queue?.[0];
    if (!queue || !next || (this.perTenant.get(tenantId) ?? 0) >= next.cap) return;
    queue.shift();
    if (queue.length === 0) this.waiting.delete(tenantId);
    // A local waiter already holds its workflow-task slot: granting it adds no slot, even past `localMax`.
    next.wake(this.take(tenantId, next.local));
  }

  /** Attempts of the tenant in flight here (tests, diagnostics). */
  inFlight(tenantId: string): number {
    return this.perTenant.get(tenantId) ?? 0;
  }
}

/**
 * The wait before a refused regular attempt tries again: 1 s, doubling to 30 s (an activity task per
 * try is Temporal work, and a stalled server stays stalled for minutes), with ±25 % jitter so the
 * tenant's waiting messages do not come back together.
 */
export function busyRetryDelayMs(activityAttempt: number, random: () => number): number {
  const base = Math.min(30_000, 1_000 * 2 ** Math.min(Math.max(activityAttempt - 1, 0), 5));
  return Math.round(base * (0.75 + random() * 0.5));
}
