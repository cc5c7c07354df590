/**
 * Events Cartero tells the product about (issue 6 delivers them as signed webhooks). Producers only
 * append to the `events` outbox (src/store/events.ts) with a deterministic id, so an activity that
 * is retried never emits twice; delivery order per case is the order of `seq` within the tenant.
 */
export const EVENT_TYPES = [
  'message.sent',
  'message.deferred',
  /** A relay reported the recipient's server accepted the message (relay events, docs/provider-events.md). */
  'message.delivered',
  'message.failed',
  'message.bounced',
  'message.complained',
  /** A bounce or complaint recorded without acting on it: nothing corroborates it (docs/bounces.md). */
  'message.bounce_unverified',
  'message.complaint_unverified',
  'message.opened',
  'message.clicked',
  'inbound.received',
  'case.updated',
  'tenant.needs_reauth',
  /** The tenant's health changed (healthy ⇄ degraded); only on change (docs/operations.md, "Tenant health"). */
  'tenant.health',
  /** The tenant's server refused a message for a reason about the sender (relaying, policy, SPF/DMARC…): docs/bounces.md. */
  'tenant.sending_refused',
  /** A quota or rate refusal paused the tenant's sending; its messages wait (docs/bounces.md "Consequences"). */
  'tenant.sending_paused',
  /** Gmail asks to approve forwarding to the tenant's inbound address (docs/inbound.md "Forwarding confirmation"). */
  'tenant.forwarding_confirmation',
  /** Sent on request by `POST /v1/webhooks/test`. */
  'webhook.test',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface EventInput {
  /** Deterministic per occurrence, e.g. `message.sent:<messageId>`; a second append with it is a no-op. */
  id: string;
  tenantId: string;
  type: EventType;
  caseId?: string | null;
  messageId?: string | null;
  /** JSON-safe payload, no secrets (it leaves the system). */
  data: Record<string, unknown>;
}
