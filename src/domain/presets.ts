/**
 * Provider presets: defaults for host, port, TLS mode and limits. Numbers come from the seed
 * (000_b477e34dd623b226.txt, "Proveedores SMTP Comunes" and "Limites de Envio por Proveedor";
 * 002_5e8b5204e89a08e7.txt for relay endpoints) and, where the seed is silent, from the
 * provider's own documentation; docs/presets.md lists each source. Anything a preset sets can be
 * overridden by the tenant body.
 */
export const PRESET_NAMES = [
  'gmail',
  'google-workspace-relay',
  'microsoft365',
  'cpanel',
  'zimbra',
  'exchange',
  'sendgrid',
  'ses',
  'brevo',
  'mailgun',
  'postmark',
] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export type CountBy = 'messages' | 'recipients';
export interface WindowLimit {
  max: number;
  countBy: CountBy;
}

export interface Preset {
  /** Undefined when the host is the tenant's own server (cPanel, Zimbra, Exchange): the body must name it. */
  host?: string | ((opts: PresetOptions) => string);
  port: number;
  security: 'starttls' | 'tls';
  /** Suggested SMTP user when the provider fixes it (SendGrid's literal `apikey`). */
  authUser?: string;
  authTypes: ReadonlyArray<'password' | 'oauth2' | 'none'>;
  limits: {
    perMinute?: WindowLimit;
    perHour?: WindowLimit;
    perDay?: WindowLimit;
    maxMessageBytes: number;
    maxConnections: number;
  };
  requiredOptions?: ReadonlyArray<keyof PresetOptions>;
}

export interface PresetOptions {
  /** AWS region for SES, e.g. `eu-west-1`. */
  region?: string;
}

const MB = 1024 * 1024;

export const PRESETS: Readonly<Record<PresetName, Preset>> = {
  // Seed: smtp.gmail.com 587/465, 2,000/day per user (hard cap), 25 MB.
  gmail: {
    host: 'smtp.gmail.com',
    port: 587,
    security: 'starttls',
    authTypes: ['oauth2', 'password'],
    limits: { perDay: { max: 2000, countBy: 'messages' }, maxMessageBytes: 25 * MB, maxConnections: 3 },
  },
  // Seed: smtp-relay.gmail.com 587/465, up to 10,000/day (admin configurable), IP allowlist or AUTH, 25 MB.
  'google-workspace-relay': {
    host: 'smtp-relay.gmail.com',
    port: 587,
    security: 'starttls',
    authTypes: ['password', 'oauth2', 'none'],
    limits: { perDay: { max: 10000, countBy: 'messages' }, maxMessageBytes: 25 * MB, maxConnections: 5 },
  },
  // Seed: smtp.office365.com 587 STARTTLS, 30 messages/min, 10,000 recipients/day (a message to 10 = 10), 25 MB.
  microsoft365: {
    host: 'smtp.office365.com',
    port: 587,
    security: 'starttls',
    authTypes: ['oauth2', 'password'],
    limits: {
      perMinute: { max: 30, countBy: 'messages' },
      perDay: { max: 10000, countBy: 'recipients' },
      maxMessageBytes: 25 * MB,
      maxConnections: 3,
    },
  },
  // Seed: mail.<domain> 587/465, 100-500/hour varies by host, 10-50 MB: take the low end of each.
  cpanel: {
    port: 587,
    security: 'starttls',
    authTypes: ['password'],
    limits: { perHour: { max: 100, countBy: 'messages' }, maxMessageBytes: 10 * MB, maxConnections: 2 },
  },
  // Seed: own server 587/465/25, limits configurable by the admin, 20 MB.
  zimbra: {
    port: 587,
    security: 'starttls',
    authTypes: ['password'],
    limits: { maxMessageBytes: 20 * MB, maxConnections: 3 },
  },
  // Seed: on-premise, all configurable; 10 MB is Exchange's default MaxSendSize.
  exchange: {
    port: 587,
    security: 'starttls',
    authTypes: ['password', 'oauth2'],
    limits: { maxMessageBytes: 10 * MB, maxConnections: 3 },
  },
  // Seed 002: smtp.sendgrid.net 587 TLS, user `apikey`, password = API key; 30 MB per SendGrid docs.
  sendgrid: {
    host: 'smtp.sendgrid.net',
    port: 587,
    security: 'starttls',
    authUser: 'apikey',
    authTypes: ['password'],
    limits: { maxMessageBytes: 30 * MB, maxConnections: 5 },
  },
  // Seed 002: email-smtp.<region>.amazonaws.com 587 TLS, SMTP credentials; 40 MB per SES docs.
  ses: {
    host: (o) => `email-smtp.${o.region}.amazonaws.com`,
    port: 587,
    security: 'starttls',
    authTypes: ['password'],
    limits: { maxMessageBytes: 40 * MB, maxConnections: 5 },
    requiredOptions: ['region'],
  },
  // Brevo's SMTP relay (docs): smtp-relay.brevo.com 587, SMTP key as password; 20 MB.
  brevo: {
    host: 'smtp-relay.brevo.com',
    port: 587,
    security: 'starttls',
    authTypes: ['password'],
    limits: { maxMessageBytes: 20 * MB, maxConnections: 5 },
  },
  // Seed 002: smtp.mailgun.org 587 TLS, SMTP credentials; 25 MB per Mailgun docs.
  mailgun: {
    host: 'smtp.mailgun.org',
    port: 587,
    security: 'starttls',
    authTypes: ['password'],
    limits: { maxMessageBytes: 25 * MB, maxConnections: 5 },
  },
  // Seed 002: smtp.postmarkapp.com 587 TLS, server token as user and password; 10 MB per Postmark docs.
  postmark: {
    host: 'smtp.postmarkapp.com',
    port: 587,
    security: 'starttls',
    authTypes: ['password'],
    limits: { maxMessageBytes: 10 * MB, maxConnections: 5 },
  },
};

/** Defaults when a tenant names no preset: a generic authenticated submission server. */
export const GENERIC_DEFAULTS: Preset = {
  port: 587,
  security: 'starttls',
  authTypes: ['password', 'oauth2', 'none'],
  limits: { maxMessageBytes: 25 * MB, maxConnections: 3 },
};

export function presetHost(preset: Preset, opts: PresetOptions): string | undefined {
  return typeof preset.host === 'function' ? preset.host(opts) : preset.host;
}
