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
export class SendGate {
  private readonly perTenant = new Map<string, number>();
  private local = 0;
  /** Regular attempts waiting here for one of their tenant's slots, oldest first. */
  private readonly waiting = new Map<string, Array<{ cap: number; local: boolean; wake: (release: (() => void) | null) => void }>>();
  private waiters = 0;

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
    if (now || this.waiters >= this.maxWaiters || waitMs <= 0 || (local && !tenantFull)) return now;
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

  private take(tenantId: string, local: boolean): () => void {
    this.perTenant.set(tenantId, (this.perTenant.get(tenantId) ?? 0) + 1);
    if (local) this.local++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
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
