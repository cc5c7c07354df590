import type { ProviderEventBatch } from '../../domain/provider-events';
import type { OpenInboundSettings } from '../../store/inbound';
import type { SnsVerifier } from '../sns';

export interface ProviderEventContext {
  tenantId: string;
  settings: OpenInboundSettings;
  now: Date;
  sns: SnsVerifier;
  snsConfirm: (subscribeUrl: string) => Promise<void>;
  /** How far a signed timestamp (Mailgun, SendGrid) may be from now. */
  signatureMaxAgeMs: number;
}

/** `ack`: a protocol message with no events (SNS subscription confirmations). `replayToken`: Mailgun's, claimed once. */
export type ProviderEventResult = { kind: 'events'; batch: ProviderEventBatch; replayToken?: string } | { kind: 'ack'; detail: string };

/** Most events one request may carry (SendGrid batches; the others post one at a time). */
export const MAX_EVENTS_PER_REQUEST = 1000;
/** Longest diagnostic kept from a provider (the reason rules read at most this much). */
export const MAX_DIAGNOSTIC_CHARS = 2000;

export const clip = (s: unknown): string | null =>
  typeof s === 'string' && s.trim() !== '' ? s.trim().slice(0, MAX_DIAGNOSTIC_CHARS) : null;
