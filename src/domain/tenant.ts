import { z } from 'zod';
import { isIpLiteral } from './network';
import { TENANT_ID_PATTERN } from './tenant-id';
import { SENT_COPY_MODES, type ImapEndpoint, type SentCopyMode } from './sent-copy';
import { GENERIC_DEFAULTS, PRESETS, PRESET_NAMES, presetHost, type CountBy, type PresetName } from './presets';

/**
 * The tenant as the API accepts it. `z.strictObject` everywhere: an unknown field is a 400 naming it,
 * never silently dropped (a typo like `smtp.prot` must not fall back to a default).
 */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const HOSTNAME = /^(?=.{1,253}$)(?!-)[A-Z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Z0-9-]{1,63}(?<!-))*\.?$/i;

export const tenantIdSchema = z
  .string()
  .regex(TENANT_ID_PATTERN, 'must be 3-40 characters of a-z, 0-9 and -, not starting or ending with -');

const noControl = (what: string) =>
  z.string().refine((s) => !CONTROL_CHARS.test(s), `${what} must not contain control characters (CR, LF, NUL…)`);

export const smtpHostSchema = noControl('host')
  .pipe(z.string().min(1).max(253))
  .refine((h) => isIpLiteral(h) || HOSTNAME.test(h), 'must be a hostname or an IP address');

const domainSchema = noControl('domain')
  .pipe(z.string().min(1).max(253))
  .refine((d) => HOSTNAME.test(d) && d.includes('.'), 'must be a fully qualified domain name')
  .transform((d) => d.toLowerCase().replace(/\.$/, ''));

const emailSchema = noControl('address').pipe(z.email().max(254));

const pemSchema = z
  .string()
  .max(64 * 1024)
  .refine((s) => s.includes('-----BEGIN CERTIFICATE-----'), 'must be PEM certificate(s)');

export const smtpSchema = z.strictObject({
  host: smtpHostSchema.optional(),
  port: z.int().min(1).max(65535).optional(),
  security: z.enum(['starttls', 'tls']).optional(),
  tls: z
    .strictObject({
      /** Extra trusted CA(s), PEM, for servers with a private CA. Verification is never disabled. */
      ca: pemSchema.optional(),
      /** Name to check the certificate against when it differs from `host` (shared hosting). */
      servername: smtpHostSchema.optional(),
      minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).optional(),
    })
    .optional(),
  /** EHLO name; defaults to the tenant's first sending domain. */
  ehloName: smtpHostSchema.optional(),
});

const secret = (what: string) =>
  noControl(what).pipe(
    z
      .string()
      .min(1)
      .max(16 * 1024),
  );

/** A PEM private key keeps its line breaks (a service account's JSON key file has them as \n). */
const privateKeyPemSchema = z
  .string()
  .max(16 * 1024)
  .refine(
    (s) => /-----BEGIN (?:RSA )?PRIVATE KEY-----/.test(s) && !/[\u0000-\u0009\v\f\u000e-\u001f\u007f]/.test(s),
    'must be a PEM private key',
  );

const oauth2Schema = z.discriminatedUnion('provider', [
  z.strictObject({
    type: z.literal('oauth2'),
    provider: z.literal('google'),
    mode: z.enum(['refresh_token', 'service_account']),
    user: emailSchema,
    clientId: z.string().min(1).max(512).optional(),
    clientSecret: secret('clientSecret').optional(),
    refreshToken: secret('refreshToken').optional(),
    serviceAccountEmail: emailSchema.optional(),
    serviceAccountPrivateKey: privateKeyPemSchema.optional(),
  }),
  z.strictObject({
    type: z.literal('oauth2'),
    provider: z.literal('microsoft'),
    mode: z.enum(['client_credentials', 'refresh_token']),
    user: emailSchema,
    entraTenantId: z.string().min(1).max(128),
    authority: z.url().optional(),
    clientId: z.string().min(1).max(512),
    clientSecret: secret('clientSecret').optional(),
    refreshToken: secret('refreshToken').optional(),
  }),
  z.strictObject({
    type: z.literal('oauth2'),
    provider: z.literal('generic'),
    mode: z.enum(['client_credentials', 'refresh_token']),
    user: noControl('user').pipe(z.string().min(1).max(320)),
    tokenUrl: z.url(),
    clientId: z.string().min(1).max(512),
    clientSecret: secret('clientSecret').optional(),
    refreshToken: secret('refreshToken').optional(),
    scope: z.string().max(1024).optional(),
  }),
]);

export const authSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({
    type: z.literal('password'),
    user: noControl('user').pipe(z.string().min(1).max(320)),
    password: secret('password'),
  }),
  oauth2Schema,
]);
export type AuthInput = z.infer<typeof authSchema>;

/** Secret fields by name; they are sealed at rest and never appear in API responses or logs. */
export const AUTH_SECRET_FIELDS = ['password', 'clientSecret', 'refreshToken', 'serviceAccountPrivateKey'] as const;
export type AuthSecretField = (typeof AUTH_SECRET_FIELDS)[number];

const windowLimitSchema = z.strictObject({
  max: z.int().min(1).max(10_000_000),
  countBy: z.enum(['messages', 'recipients']).default('messages'),
});

export const limitsSchema = z.strictObject({
  perMinute: windowLimitSchema.nullable().optional(),
  perHour: windowLimitSchema.nullable().optional(),
  perDay: windowLimitSchema.nullable().optional(),
  maxMessageBytes: z
    .int()
    .min(1024)
    .max(150 * 1024 * 1024)
    .optional(),
  maxConnections: z.int().min(1).max(50).optional(),
  maxRecipientsPerMessage: z.int().min(1).max(10_000).optional(),
});

export const trackingSchema = z.strictObject({
  opens: z.boolean().optional(),
  clicks: z.boolean().optional(),
  /** Only counts, no per-recipient open/click events (consent regimes such as CNIL 2026-042). */
  aggregateOnly: z.boolean().optional(),
});

export const inboundSchema = z.strictObject({
  forwardingAddresses: z.array(emailSchema).max(50).optional(),
});

/** What `verify` tries beyond the connection (docs/onboarding.md). */
export const verifySettingsSchema = z.strictObject({
  /** Addresses to try in MAIL FROM (the From addresses the tenant sends as); default: the login address. */
  senders: z.array(emailSchema).max(10).optional(),
  /** RCPT TO address of the probe (nothing is sent); default: VERIFY_PROBE_RECIPIENT, else the sender itself. */
  probeRecipient: emailSchema.nullable().optional(),
  /** DKIM selectors to look up in each sending domain; default: the preset's (google, selector1/selector2). */
  dkimSelectors: z
    .array(z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i, 'must be a DNS label'))
    .max(5)
    .optional(),
});

/** The IMAP server of the Sent copy (src/domain/sent-copy.ts); TLS trust is the SMTP side's `smtp.tls`. */
export const imapSchema = z.strictObject({
  host: smtpHostSchema.optional(),
  port: z.int().min(1).max(65535).optional(),
  security: z.enum(['tls', 'starttls']).optional(),
});

export const webhookSchema = z.strictObject({
  url: z.url({ protocol: /^https?$/ }).max(2048),
});

export const TENANT_STATUSES = ['active', 'needs_reauth', 'suspended'] as const;
export type TenantStatus = (typeof TENANT_STATUSES)[number];

export const tenantCreateSchema = z.strictObject({
  id: tenantIdSchema.optional(),
  name: noControl('name').pipe(z.string().trim().min(1).max(200)),
  preset: z.enum(PRESET_NAMES).optional(),
  presetOptions: z
    .strictObject({ region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region like eu-west-1') })
    .partial()
    .optional(),
  domains: z.array(domainSchema).min(1).max(20),
  smtp: smtpSchema.optional(),
  auth: authSchema,
  limits: limitsSchema.optional(),
  tracking: trackingSchema.optional(),
  inbound: inboundSchema.optional(),
  webhook: webhookSchema.nullable().optional(),
  status: z.enum(TENANT_STATUSES).optional(),
  verify: verifySettingsSchema.optional(),
  sentCopy: z.enum(SENT_COPY_MODES).optional(),
  imap: imapSchema.optional(),
  /**
   * Envelope sender (MAIL FROM, the Return-Path) for every message, so notices go to their own mailbox
   * instead of the From address's; in one of the tenant's domains. null/absent: the From address.
   */
  returnPath: emailSchema.nullable().optional(),
});
export type TenantCreateInput = z.infer<typeof tenantCreateSchema>;

/** PATCH: every top-level field optional; nested objects merge, `auth` is replaced whole. */
export const tenantPatchSchema = z.strictObject({
  name: tenantCreateSchema.shape.name.optional(),
  domains: tenantCreateSchema.shape.domains.optional(),
  smtp: smtpSchema.optional(),
  auth: authSchema.optional(),
  limits: limitsSchema.optional(),
  tracking: trackingSchema.optional(),
  inbound: inboundSchema.optional(),
  webhook: webhookSchema.nullable().optional(),
  status: z.enum(TENANT_STATUSES).optional(),
  verify: verifySettingsSchema.optional(),
  sentCopy: z.enum(SENT_COPY_MODES).optional(),
  imap: imapSchema.optional(),
  returnPath: emailSchema.nullable().optional(),
});
export type TenantPatchInput = z.infer<typeof tenantPatchSchema>;

/** The resolved, complete settings of a tenant (preset applied). Secrets are not part of it. */
export interface TenantSettings {
  name: string;
  preset: PresetName | null;
  presetOptions: { region?: string };
  domains: string[];
  smtp: {
    host: string;
    port: number;
    security: 'starttls' | 'tls';
    tls: { ca?: string; servername?: string; minVersion?: 'TLSv1.2' | 'TLSv1.3' };
    /** Only when set explicitly; see ehloNameOf. */
    ehloName?: string;
  };
  limits: {
    perMinute: { max: number; countBy: CountBy } | null;
    perHour: { max: number; countBy: CountBy } | null;
    perDay: { max: number; countBy: CountBy } | null;
    maxMessageBytes: number;
    maxConnections: number;
    maxRecipientsPerMessage: number;
  };
  tracking: { opens: boolean; clicks: boolean; aggregateOnly: boolean };
  inbound: { forwardingAddresses: string[] };
  webhook: { url: string } | null;
  status: TenantStatus;
  /** Absent on tenants that never set it (stored before it existed): every field has a default. */
  verify?: { senders?: string[]; probeRecipient?: string; dkimSelectors?: string[] };
  /** Absent: `auto` (src/domain/sent-copy.ts). */
  sentCopy?: SentCopyMode;
  imap?: Partial<ImapEndpoint>;
  /** The envelope sender of every message (docs/sending.md "Envelope sender"); absent: each message's From. */
  returnPath?: string;
}

export interface SettingsProblem {
  field: string;
  message: string;
}

/**
 * Applies the preset under explicit values. Returns the problems that only show once the two are
 * combined (a preset without a host and no `smtp.host`, an auth type the provider does not take).
 */
export type SettingsInput = Omit<TenantCreateInput, 'id' | 'auth'>;

export function resolveTenantSettings(
  input: SettingsInput,
  authType: AuthInput['type'],
): { settings: TenantSettings; problems: SettingsProblem[] } {
  const preset = input.preset ? PRESETS[input.preset] : GENERIC_DEFAULTS;
  const problems: SettingsProblem[] = [];
  const presetOptions = input.presetOptions ?? {};
  for (const opt of preset.requiredOptions ?? []) {
    if (presetOptions[opt] === undefined) {
      problems.push({ field: `presetOptions.${opt}`, message: `required for preset ${input.preset}` });
    }
  }
  const host = input.smtp?.host ?? (problems.length === 0 ? presetHost(preset, presetOptions) : undefined);
  if (!host && problems.length === 0) {
    problems.push({
      field: 'smtp.host',
      message: input.preset ? `required: preset ${input.preset} has no fixed host` : 'required when no preset is given',
    });
  }
  if (!preset.authTypes.includes(authType)) {
    problems.push({
      field: 'auth.type',
      message: `preset ${input.preset} accepts ${preset.authTypes.join(', ')}`,
    });
  }
  const pick = <K extends 'perMinute' | 'perHour' | 'perDay'>(k: K) => {
    const v = input.limits?.[k];
    if (v === null) return null;
    return v ?? preset.limits[k] ?? null;
  };
  const settings: TenantSettings = {
    name: input.name,
    preset: input.preset ?? null,
    presetOptions,
    domains: input.domains,
    smtp: {
      host: host ?? '',
      port: input.smtp?.port ?? preset.port,
      security: input.smtp?.security ?? (input.smtp?.port === 465 ? 'tls' : preset.security),
      tls: { ...input.smtp?.tls },
      ...(input.smtp?.ehloName ? { ehloName: input.smtp.ehloName } : {}),
    },
    limits: {
      perMinute: pick('perMinute'),
      perHour: pick('perHour'),
      perDay: pick('perDay'),
      maxMessageBytes: input.limits?.maxMessageBytes ?? preset.limits.maxMessageBytes,
      maxConnections: input.limits?.maxConnections ?? preset.limits.maxConnections,
      maxRecipientsPerMessage: input.limits?.maxRecipientsPerMessage ?? 100,
    },
    tracking: {
      opens: input.tracking?.opens ?? false,
      clicks: input.tracking?.clicks ?? false,
      aggregateOnly: input.tracking?.aggregateOnly ?? false,
    },
    inbound: { forwardingAddresses: input.inbound?.forwardingAddresses ?? [] },
    webhook: input.webhook ?? null,
    status: input.status ?? 'active',
  };
  const verify = compactVerify(input.verify);
  if (verify) settings.verify = verify;
  if (input.sentCopy) settings.sentCopy = input.sentCopy;
  if (input.imap && Object.keys(input.imap).length > 0) settings.imap = { ...input.imap };
  if (input.returnPath) {
    const d = input.returnPath.slice(input.returnPath.lastIndexOf('@') + 1).toLowerCase();
    if (input.domains.includes(d)) settings.returnPath = input.returnPath.toLowerCase();
    else problems.push({ field: 'returnPath', message: `${d} is not one of the tenant's sending domains` });
  }
  for (const [i, sender] of (verify?.senders ?? []).entries()) {
    const d = sender.slice(sender.lastIndexOf('@') + 1).toLowerCase();
    if (!input.domains.includes(d)) {
      problems.push({ field: `verify.senders.${i}`, message: `${d} is not one of the tenant's sending domains` });
    }
  }
  return { settings, problems };
}

/**
 * Merges a PATCH into the current settings, producing a create-shaped input that is validated and
 * resolved again, so a PATCH can never produce a tenant that POST would refuse.
 */
export function mergeTenantPatch(current: TenantSettings, patch: TenantPatchInput): SettingsInput {
  const merged: SettingsInput = {
    name: patch.name ?? current.name,
    ...(current.preset ? { preset: current.preset } : {}),
    presetOptions: current.presetOptions,
    domains: patch.domains ?? current.domains,
    smtp: {
      host: current.smtp.host,
      port: current.smtp.port,
      security: current.smtp.security,
      ...(current.smtp.ehloName ? { ehloName: current.smtp.ehloName } : {}),
      ...patch.smtp,
      tls: { ...current.smtp.tls, ...patch.smtp?.tls },
    },
    limits: {
      perMinute: current.limits.perMinute,
      perHour: current.limits.perHour,
      perDay: current.limits.perDay,
      maxMessageBytes: current.limits.maxMessageBytes,
      maxConnections: current.limits.maxConnections,
      maxRecipientsPerMessage: current.limits.maxRecipientsPerMessage,
      ...patch.limits,
    },
    tracking: { ...current.tracking, ...patch.tracking },
    inbound: { ...current.inbound, ...patch.inbound },
    webhook: patch.webhook === undefined ? current.webhook : patch.webhook,
    status: patch.status ?? current.status,
  };
  const verify = { ...current.verify, ...patch.verify };
  if (Object.keys(verify).length > 0) merged.verify = verify;
  const sentCopy = patch.sentCopy ?? current.sentCopy;
  if (sentCopy) merged.sentCopy = sentCopy;
  const imap = { ...current.imap, ...patch.imap };
  if (Object.keys(imap).length > 0) merged.imap = imap;
  const returnPath = patch.returnPath === undefined ? current.returnPath : patch.returnPath;
  if (returnPath) merged.returnPath = returnPath;
  return merged;
}

/** Drops unset fields (a `probeRecipient: null` in a PATCH removes it). */
function compactVerify(v: SettingsInput['verify']): TenantSettings['verify'] | undefined {
  if (!v) return undefined;
  const out: NonNullable<TenantSettings['verify']> = {};
  if (v.senders && v.senders.length > 0) out.senders = v.senders.map((s) => s.toLowerCase());
  if (v.probeRecipient) out.probeRecipient = v.probeRecipient;
  if (v.dkimSelectors && v.dkimSelectors.length > 0) out.dkimSelectors = v.dkimSelectors.map((s) => s.toLowerCase());
  return Object.keys(out).length > 0 ? out : undefined;
}

/** EHLO name: explicit, else the first sending domain (what the tenant's server knows us by). */
export function ehloNameOf(settings: Pick<TenantSettings, 'smtp' | 'domains'>): string {
  return settings.smtp.ehloName ?? settings.domains[0] ?? 'localhost';
}

/** Which settings changes should wake messages waiting for credentials or settings (issue 3's seam). */
export function deliverySettingsChanged(patch: TenantPatchInput): boolean {
  return patch.smtp !== undefined || patch.auth !== undefined || (patch.status !== undefined && patch.status === 'active');
}
