import type { RelayEventProvider } from '../../domain/provider-events';
import { AuthenticationError } from '../../errors';
import type { OpenInboundSettings } from '../../store/inbound';
import { brevoGate } from '../providers/brevo';
import { mailgunGate } from '../providers/mailgun';
import { postmarkGate } from '../providers/postmark';
import { sesGate } from '../providers/ses';
import { header, type ProviderGate } from '../request';

/**
 * Who may post relay events, decided from the URL and headers before the body is read. The tenant's
 * inbound settings for the provider carry the credentials (one provider account sends both its
 * inbound mail and its events): SES by its SNS topics (then the SNS signature), Mailgun by its
 * signing key (HMAC in the body), Brevo by basic auth or bearer, Postmark by basic auth, SendGrid by
 * its Event Webhook's ECDSA signature over the timestamp and the body (its verification key).
 */
export const sendgridEventsGate: ProviderGate = {
  enabled: (s) => s.eventVerificationKey !== undefined,
  checkHead: (head) => {
    if (!header(head, 'x-twilio-email-event-webhook-signature') || !header(head, 'x-twilio-email-event-webhook-timestamp'))
      throw new AuthenticationError('missing the X-Twilio-Email-Event-Webhook-Signature and -Timestamp headers of a signed Event Webhook');
  },
};

export const PROVIDER_EVENT_GATES: Record<RelayEventProvider, ProviderGate> = {
  ses: sesGate,
  sendgrid: sendgridEventsGate,
  brevo: brevoGate,
  mailgun: mailgunGate,
  postmark: postmarkGate,
};

/** Whether these settings let the provider post relay events (the inbound settings route accepts settings that enable either). */
export function providerEventsEnabled(provider: string, settings: OpenInboundSettings): boolean {
  const gate = (PROVIDER_EVENT_GATES as Record<string, ProviderGate | undefined>)[provider];
  return gate?.enabled(settings) ?? false;
}
