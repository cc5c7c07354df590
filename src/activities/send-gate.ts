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

  constructor(
    private readonly tenantMax: number,
    private readonly localMax: number,
  ) {}

  /** A release function, or null when the tenant (or, for a local attempt, the process) is at its cap. */
  tryEnter(tenantId: string, maxConnections: number, local: boolean): (() => void) | null {
    const cap = Math.max(1, Math.min(maxConnections, this.tenantMax));
    const n = this.perTenant.get(tenantId) ?? 0;
    if (n >= cap || (local && this.local >= this.localMax)) return null;
    this.perTenant.set(tenantId, n + 1);
    if (local) this.local++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.perTenant.get(tenantId) ?? 1) - 1;
      if (left > 0) this.perTenant.set(tenantId, left);
      else this.perTenant.delete(tenantId);
      if (local) this.local--;
    };
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
