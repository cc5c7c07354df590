/**
 * Gmail's forwarding-confirmation mail (issue 15): when a tenant adds Cartero's inbound address as a
 * forwarding address in Gmail, Google mails that address a link to approve it, and forwarding — on
 * which inbound replies depend — starts only after someone opens it. Threaded as a reply it would
 * become a customer case; instead it is stored unthreaded and the tenant is told, with the link.
 *
 * Anyone can write that From header, so only what cannot mislead is taken from the mail: links on
 * Google's own mail hosts and a numeric code (docs/inbound.md "Forwarding confirmation").
 */
const SENDER = 'forwarding-noreply@google.com';
const LINK = /https:\/\/(?:mail-settings|mail|isolated\.mail)\.google\.com\/mail\/[\w\-./?=&%~+]{1,500}/;
const CODE = /(?:confirmation code|c[óo]digo de confirmaci[óo]n|code de confirmation|best[äa]tigungscode)\s*:\s*(\d{6,12})/i;
/** The part of the text looked at: the link and the code sit in the first lines. */
const WINDOW = 8 * 1024;

export interface ForwardingConfirmation {
  /** The approval link, on a Google mail host; null when the mail has none. */
  confirmationUrl: string | null;
  code: string | null;
  /** The address Gmail asks to forward to (ours), when the subject names the requesting account. */
  subject: string;
}

export function forwardingConfirmation(mail: {
  from: { address: string } | null;
  subject: string;
  text: string;
}): ForwardingConfirmation | null {
  if (mail.from?.address.toLowerCase() !== SENDER) return null;
  const text = mail.text.slice(0, WINDOW);
  return {
    confirmationUrl: LINK.exec(text)?.[0] ?? null,
    code: CODE.exec(text)?.[1] ?? null,
    subject: mail.subject.slice(0, 300),
  };
}
