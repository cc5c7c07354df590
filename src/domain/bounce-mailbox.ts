import { z } from 'zod';
import { smtpHostSchema, smtpSchema } from './tenant';

/**
 * A tenant's bounce mailbox: the IMAP account its bounce address delivers to, watched by the
 * workflow `imap-<tenant>` (docs/bounces.md, "IMAP watch"). Pure: imported by the API, the
 * activity and the workflow.
 */
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const folderName = (what: string) =>
  z
    .string()
    .min(1)
    .max(200)
    .refine((s) => !CONTROL_CHARS.test(s), `${what} must not contain control characters`)
    .refine((s) => !/[*%]/.test(s), `${what} must not contain the IMAP wildcards * or %`);

export const bounceMailboxPutSchema = z
  .strictObject({
    host: smtpHostSchema,
    /** Default: 993 for `tls` (implicit TLS), 143 for `starttls`. */
    port: z.int().min(1).max(65535).optional(),
    /** `tls` = implicit TLS (IMAPS), `starttls` = STARTTLS required. There is no plaintext mode. */
    security: z.enum(['tls', 'starttls']).default('tls'),
    tls: smtpSchema.shape.tls,
    user: z
      .string()
      .min(1)
      .max(320)
      .refine((s) => !CONTROL_CHARS.test(s), 'user must not contain control characters'),
    /**
     * How the watch logs in: `password` (default) with `password`, or `oauth2` with XOAUTH2 and the
     * access token of the tenant's own OAuth2 credentials (Google, Microsoft: the same token workflow
     * the sends use; the tenant's auth must be `oauth2`).
     */
    auth: z.strictObject({ kind: z.enum(['password', 'oauth2']) }).default({ kind: 'password' }),
    /** Required the first time with password auth; omitted on a later PUT, the stored password is kept. */
    password: z
      .string()
      .min(1)
      .max(16 * 1024)
      .refine((s) => !CONTROL_CHARS.test(s), 'password must not contain control characters')
      .optional(),
    mailbox: folderName('mailbox').default('INBOX'),
    /** Processed mail is flagged \Seen and moved here (created when missing). */
    processedFolder: folderName('processedFolder').default('Cartero/Processed'),
  })
  .refine((s) => s.processedFolder.toLowerCase() !== s.mailbox.toLowerCase(), {
    path: ['processedFolder'],
    message: 'must differ from mailbox (processed mail is moved out of the watched mailbox)',
  })
  .refine((s) => s.auth.kind === 'password' || s.password === undefined, {
    path: ['password'],
    message: "must be absent with auth oauth2 (the tenant's OAuth2 access token is used)",
  });

export type BounceMailboxPut = z.infer<typeof bounceMailboxPutSchema>;

/** What is stored and what the watch connects with (the password is kept sealed beside it). */
export interface BounceMailboxSettings {
  host: string;
  port: number;
  security: 'tls' | 'starttls';
  tls: { ca?: string; servername?: string; minVersion?: 'TLSv1.2' | 'TLSv1.3' };
  user: string;
  /** Absent on settings stored before XOAUTH2: `password`. */
  auth?: { kind: 'password' | 'oauth2' };
  mailbox: string;
  processedFolder: string;
}

export function bounceMailboxSettings(input: BounceMailboxPut): BounceMailboxSettings {
  return {
    host: input.host,
    port: input.port ?? (input.security === 'tls' ? 993 : 143),
    security: input.security,
    tls: { ...input.tls },
    user: input.user,
    auth: { kind: input.auth.kind },
    mailbox: input.mailbox,
    processedFolder: input.processedFolder,
  };
}

/**
 * `watching` = connected and idling; `connecting` / `reconnecting` = connection lost or not yet
 * made (retried inside the activity, quickly); `failed` = a problem that needs the tenant
 * (wrong password, certificate, unknown host or mailbox, refused address), retried slowly by the
 * workflow until the settings change.
 */
export const WATCH_STATES = ['connecting', 'watching', 'reconnecting', 'failed'] as const;
export type WatchState = (typeof WATCH_STATES)[number];

// The watch's timings live apart (no zod): the workflow bundle imports them, and every module it
// imports is evaluated again for each workflow run.
export * from './bounce-mailbox-watch';
