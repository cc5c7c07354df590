/** What tracking was applied to a message at compose time (stored on the message). */
export interface MessageTracking {
  opens: boolean;
  clicks: boolean;
  /** Tracked URLs; the index is the link number in click tokens. */
  links: string[];
  /** Tokens name recipient 0 (single-recipient message, tenant not aggregate-only). */
  personalised: boolean;
  /** Tenant's aggregate-only level: no per-hit events, no recipient in tokens. */
  aggregateOnly: boolean;
  unsubscribe: boolean;
}
