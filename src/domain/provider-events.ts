import type { BounceReason } from './mail/reasons';
import type { PresetName } from './presets';

/**
 * Relay events (issue 15): the delivery, bounce, complaint and delay reports a relay (SES, SendGrid,
 * Brevo, Mailgun, Postmark) posts about mail Cartero sent through it. docs/provider-events.md has the
 * set-up per provider and the mapping of each provider's events.
 */
export const RELAY_EVENT_PROVIDERS = ['ses', 'sendgrid', 'brevo', 'mailgun', 'postmark'] as const;
export type RelayEventProvider = (typeof RELAY_EVENT_PROVIDERS)[number];

/** One provider event, normalized. Adapters produce it (src/inbound/provider-events/), apply.ts acts on it. */
export interface ProviderEvent {
  provider: RelayEventProvider;
  /** Unique per event at the provider; makes a delay event's outbox id unique per report. */
  eventId: string;
  kind: 'delivered' | 'bounce' | 'delay' | 'complaint';
  recipient: string;
  /** Cartero's message id echoed back by the provider from the correlation header (below). */
  carteroId: string | null;
  /** The Message-ID the provider reports, with angle brackets. */
  rfcMessageId: string | null;
  /** Enhanced status code (x.y.z) when the provider gives one. */
  status: string | null;
  /** The receiving server's reply or the provider's explanation. */
  diagnostic: string | null;
  /** The provider's own permanent/temporary call on a bounce; null when it makes none. */
  permanent: boolean | null;
  /** What the provider's category says when the reply text and status say nothing. */
  reasonHint: BounceReason | null;
}

/** What a provider's request carried: events, and how many it carried that Cartero does not act on (opens, clicks…). */
export interface ProviderEventBatch {
  events: ProviderEvent[];
  ignored: number;
}

export const isRelayEventProvider = (p: PresetName | null | undefined): p is RelayEventProvider =>
  p !== null && p !== undefined && (RELAY_EVENT_PROVIDERS as readonly string[]).includes(p);

/** The key each relay echoes back in its events (its custom-arguments/metadata/tags field). */
export const CORRELATION_KEY = 'cartero_id';

/**
 * Headers that make a relay echo Cartero's message id in every event about the message, added at
 * accept time for tenants on a relay preset. Each is the relay's documented custom-data header for
 * SMTP submissions; the relay strips it before delivery. Without it, events are matched by the
 * Message-ID they report, which some relays replace with their own.
 */
export function relayCorrelationHeaders(preset: PresetName | null | undefined, carteroId: string): Record<string, string> {
  if (!isRelayEventProvider(preset)) return {};
  switch (preset) {
    case 'sendgrid':
      return { 'X-SMTPAPI': JSON.stringify({ unique_args: { [CORRELATION_KEY]: carteroId } }) };
    case 'ses':
      return { 'X-SES-MESSAGE-TAGS': `${CORRELATION_KEY}=${carteroId}` };
    case 'mailgun':
      return { 'X-Mailgun-Variables': JSON.stringify({ [CORRELATION_KEY]: carteroId }) };
    case 'postmark':
      return { [`X-PM-Metadata-${CORRELATION_KEY}`]: carteroId };
    case 'brevo':
      return { 'X-Mailin-custom': `${CORRELATION_KEY}:${carteroId}` };
  }
}

const CARTERO_ID = /^m_[A-Za-z0-9]{10,40}$/;

/** A Cartero message id as echoed back, or null for anything else (the value is the provider's, hence attacker-shaped). */
export function carteroIdFrom(value: unknown): string | null {
  if (Array.isArray(value)) value = value[0];
  if (typeof value !== 'string') return null;
  const v = value.trim().replace(new RegExp(`^${CORRELATION_KEY}[:=]`), '');
  return CARTERO_ID.test(v) ? v : null;
}

/** A Message-ID with angle brackets (Mailgun and some others report it without). */
export function bracketed(messageId: unknown): string | null {
  if (typeof messageId !== 'string') return null;
  const v = messageId.trim();
  if (v === '' || v.length > 998) return null;
  return v.startsWith('<') ? v : `<${v}>`;
}
