import tls from 'node:tls';
import { Context } from '@temporalio/activity';
import { ImapFlow, type ImapFlowError } from 'imapflow';
import {
  MAX_NOTICE_BYTES,
  reconnectDelayMs,
  WATCH_CHECK_MS,
  WATCH_ROTATE_MS,
  type WatchOutcome,
  type WatchState,
} from '../domain/bounce-mailbox';
import { classifyMail, returnedRecipients } from '../domain/mail/classify';
import { asMailVerdict, combineVerdicts } from '../domain/mail/combine';
import { fieldValue } from '../domain/mail/fields';
import type { AllowableClass } from '../domain/network';
import { DependencyUnavailableError, OAuthCredentialsError, orNullIfNotFound, SealedCredentialsError } from '../errors';
import { mailFromRaw } from '../inbound/mime';
import { sisimai } from '../inbound/sisimai';
import type { BounceMailboxDoc, BounceMailboxRepository } from '../store/bounce-mailboxes';
import { sealScopeOf } from '../store/tenant-seal';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import { handleBounceOrComplaint, type BounceHandlingDeps } from '../inbound/feedback';
import { checkedAddresses, tlsServername } from './checked-address';
import type { OAuthAccess } from './oauth-access';

/**
 * The IMAP watch of a tenant's bounce mailbox (docs/bounces.md, "IMAP watch"): connect, apply every
 * unseen bounce / delay / complaint with handleBounceOrComplaint (source `imap`), flag each notice
 * (and auto-reply) \Seen and move it to the processed folder, leave human mail unread where it is
 * (read with BODY.PEEK, passed by a UID cursor), then IDLE until the server announces new mail. A lost
 * connection is retried here with backoff; a problem only the tenant can fix ends the run with
 * `failed` (the workflow waits, slowly, for a retry or new settings).
 */
export interface BounceMailboxWatchDeps extends Pick<BounceHandlingDeps, 'messages' | 'suppressions' | 'events' | 'signalCase'> {
  bounceMailboxes: BounceMailboxRepository;
  tenants: TenantRepository;
  /** The SSRF guard's allowance, the same as for tenant SMTP hosts (SMTP_ALLOW_PRIVATE_NETWORKS). */
  allowPrivateNetworks: readonly AllowableClass[];
  /** XOAUTH2 access tokens for `auth.kind` oauth2 (absent: such a watch fails visibly). */
  oauth?: OAuthAccess;
  /** Quota refusals in the notices pause the tenant's sending (src/inbound/feedback.ts). */
  permits?: NonNullable<BounceHandlingDeps['pause']>['permits'];
  policy?: NonNullable<BounceHandlingDeps['pause']>['policy'];
}

/** How a run is steered: by Temporal in production (heartbeats, cancellation), by tests directly. */
export interface WatchControl {
  heartbeat(): void;
  /** Rejects when the run must end (cancelled by the workflow, or the activity timed out). */
  cancelled: Promise<never>;
  log: { info(msg: string, meta?: Record<string, unknown>): void; warn(msg: string, meta?: Record<string, unknown>): void };
  rotateAfterMs?: number;
  checkEveryMs?: number;
}

/** A failure the tenant must fix; the run ends with `failed` instead of reconnecting. */
class NeedsAttention extends Error {}

const CERT_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME|ERR_TLS|ERR_SSL/;

/** `failed` (tenant must act) or transient (reconnect), with a message that says what happened. */
export function describeImapError(err: unknown): { needsAttention: boolean; message: string } {
  if (err instanceof NeedsAttention || err instanceof SealedCredentialsError) return { needsAttention: true, message: err.message };
  const e = err as ImapFlowError & { code?: string };
  const reply = e.responseText ?? e.serverResponseCode;
  if (e.authenticationFailed) return { needsAttention: true, message: `authentication failed${reply ? `: ${reply}` : ''}` };
  if (e.tlsFailed || (e.code && CERT_CODES.test(e.code)))
    return { needsAttention: true, message: `TLS failed: ${e.code ? `${e.code} ` : ''}${e.message}` };
  if (e.code === 'ENOTFOUND') return { needsAttention: true, message: `DNS: ${e.message}` };
  if (e.mailboxMissing || e.serverResponseCode === 'NONEXISTENT')
    return { needsAttention: true, message: `mailbox missing: ${reply ?? e.message}` };
  return { needsAttention: false, message: `${e.code ? `${e.code}: ` : ''}${reply ?? e.message}` };
}

export async function runBounceMailboxWatch(deps: BounceMailboxWatchDeps, tenantId: string, control: WatchControl): Promise<WatchOutcome> {
  const started = Date.now();
  const rotateAfterMs = control.rotateAfterMs ?? WATCH_ROTATE_MS;
  const checkEveryMs = control.checkEveryMs ?? WATCH_CHECK_MS;
  let failures = 0;
  let lastConnectedAt: Date | null = null;
  const beat = setInterval(() => control.heartbeat(), 2_000);
  const stopped = control.cancelled.then(
    () => 'cancelled' as const,
    () => 'cancelled' as const,
  );
  const wait = (ms: number) => Promise.race([new Promise<'timer'>((r) => setTimeout(() => r('timer'), ms).unref()), stopped]);
  try {
    for (;;) {
      const found = await current(deps, tenantId);
      if (!found) return { kind: 'stopped' };
      const { doc, tenant } = found;
      if (Date.now() - started >= rotateAfterMs) return { kind: 'rotate' };
      const status = (state: WatchState, error: string | null) =>
        deps.bounceMailboxes.setStatus(tenantId, doc.generation, { state, error, since: new Date(), failures, lastConnectedAt });

      let client: ImapFlow | null = null;
      try {
        client = await connect(deps, doc, tenant);
        lastConnectedAt = new Date();
        failures = 0;
        const outcome = await watchConnected(deps, doc, client, {
          status,
          stopped,
          checkEveryMs,
          started,
          rotateAfterMs,
          log: control.log,
        });
        if (outcome) {
          // Cancelled by the workflow: report it as a cancellation, not as a result.
          if (await stoppedAlready(stopped)) await control.cancelled;
          return outcome;
        }
        control.log.info('IMAP connection lost; reconnecting', { tenantId });
      } catch (err) {
        if (await stoppedAlready(stopped)) throw err;
        const d = describeImapError(err);
        failures++;
        if (d.needsAttention) {
          await status('failed', d.message);
          control.log.warn('bounce mailbox needs attention', { tenantId, error: d.message });
          return { kind: 'failed', error: d.message };
        }
        await status('reconnecting', d.message);
        control.log.info('bounce mailbox unreachable; reconnecting with backoff', { tenantId, error: d.message, attempt: failures });
      } finally {
        if (client) await closeQuietly(client);
      }
      if ((await wait(reconnectDelayMs(Math.max(failures, 1)))) === 'cancelled') await control.cancelled;
    }
  } finally {
    clearInterval(beat);
  }
}

async function stoppedAlready(stopped: Promise<'cancelled'>): Promise<boolean> {
  return (await Promise.race([stopped, Promise.resolve('running' as const)])) === 'cancelled';
}

/**
 * The settings (and the tenant's seal scope, which opens the password), unless they or the tenant
 * are gone (the watch then stops for good). A store failure is thrown, never read as "gone": the run
 * reconnects with backoff, or the activity is retried.
 */
async function current(deps: BounceMailboxWatchDeps, tenantId: string): Promise<{ doc: BounceMailboxDoc; tenant: TenantDoc } | null> {
  const doc = await deps.bounceMailboxes.get(tenantId);
  if (!doc) return null;
  const tenant = await orNullIfNotFound(deps.tenants.get(tenantId));
  return tenant ? { doc, tenant } : null;
}

/** imapflow's flag for a refused LOGIN/AUTHENTICATE (NO or BAD to it). */
export const imapLoginRefused = (err: unknown): boolean => (err as ImapFlowError).authenticationFailed === true;

/**
 * Connects and logs in: with the sealed password, or with the tenant's XOAUTH2 access token, which
 * is refreshed once and tried once more when the server refuses it (loginWithRefresh).
 */
async function connect(deps: BounceMailboxWatchDeps, doc: BounceMailboxDoc, tenant: TenantDoc): Promise<ImapFlow> {
  const user = doc.settings.user;
  // Opened before anything is resolved or connected: a password that does not open for these
  // settings (moved behind the API's back) is never sent anywhere, and the watch waits in `failed`.
  if (doc.settings.auth?.kind !== 'oauth2')
    return open(deps, doc, { user, pass: deps.bounceMailboxes.openPassword(doc, sealScopeOf(tenant)) });
  if (tenant.auth.type !== 'oauth2')
    throw new NeedsAttention('auth oauth2 needs a tenant with OAuth2 credentials (the tenant now uses another auth)');
  if (!deps.oauth) throw new NeedsAttention('this worker runs without the OAuth2 token service');
  try {
    return await deps.oauth.loginWithRefresh(
      deps.tenants.credentialBinding(tenant),
      (accessToken) => open(deps, doc, { user, accessToken }),
      imapLoginRefused,
    );
  } catch (err) {
    // needs_reauth is the tenant's to fix; a provider or Temporal outage is retried like a lost connection.
    if (err instanceof OAuthCredentialsError) throw new NeedsAttention(err.message);
    throw err;
  }
}

async function open(
  deps: BounceMailboxWatchDeps,
  doc: BounceMailboxDoc,
  auth: { user: string; pass: string } | { user: string; accessToken: string },
): Promise<ImapFlow> {
  const s = doc.settings;
  // Resolve and check here, then connect to the checked address with the name for TLS: imapflow
  // resolving on its own would bypass the private-network guard (DNS rebinding).
  const { addresses, refused } = await checkedAddresses(s.host, deps.allowPrivateNetworks);
  if (refused) throw new NeedsAttention(`IMAP host ${s.host} refused: ${refused}`);
  const servername = tlsServername(s.host, s.tls.servername);
  const client = new ImapFlow({
    host: addresses[0]!,
    port: s.port,
    secure: s.security === 'tls',
    ...(s.security === 'starttls' ? { doSTARTTLS: true } : {}),
    ...(servername ? { servername } : {}),
    auth,
    tls: {
      ...(servername ? { servername } : {}),
      ...(s.tls.ca ? { ca: [...tls.rootCertificates, s.tls.ca] } : {}),
      minVersion: s.tls.minVersion ?? 'TLSv1.2',
      rejectUnauthorized: true,
    },
    logger: false,
    disableCompression: true,
    // IDLE soon after the last command, so new mail is announced at once; restarted well inside
    // the socket timeout and the 29 minutes RFC 2177 allows.
    autoIdleDelay: 1_000,
    maxIdleTime: 4 * 60_000,
    connectionTimeout: 30_000,
    greetingTimeout: 16_000,
  });
  // Without a listener, an 'error' event would crash the worker; the failing call reports it.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

interface Session {
  status(state: WatchState, error: string | null): Promise<void>;
  stopped: Promise<'cancelled'>;
  checkEveryMs: number;
  started: number;
  rotateAfterMs: number;
  log: WatchControl['log'];
}

/** Returns an outcome to end the run, or null when the connection was lost (reconnect). */
async function watchConnected(
  deps: BounceMailboxWatchDeps,
  doc: BounceMailboxDoc,
  client: ImapFlow,
  session: Session,
): Promise<WatchOutcome | null> {
  const { mailbox, processedFolder } = doc.settings;
  await client.mailboxCreate(processedFolder).catch((err: unknown) => {
    // Dovecot and others answer ALREADYEXISTS with NO; anything else is worth reporting.
    if ((err as ImapFlowError).serverResponseCode !== 'ALREADYEXISTS')
      throw new NeedsAttention(`cannot create ${processedFolder}: ${(err as ImapFlowError).responseText ?? (err as Error).message}`);
  });
  await client.mailboxOpen(mailbox);
  let closed = false;
  let wake: () => void = () => undefined;
  const woken = () => new Promise<'wake'>((r) => (wake = () => r('wake')));
  client.on('exists', () => wake());
  client.on('close', () => {
    closed = true;
    wake();
  });
  await session.status('watching', null);
  const cursor = { at: doc.cursor ?? null };
  for (;;) {
    const next = woken();
    await processUnseen(deps, doc, client, session.log, cursor);
    if (closed || !client.usable) return null;
    const why = await Promise.race([
      next,
      session.stopped,
      new Promise<'check'>((r) => setTimeout(() => r('check'), session.checkEveryMs).unref()),
    ]);
    if (why === 'cancelled') return { kind: 'stopped' };
    if (closed) return null;
    if (why === 'check') {
      const now = await current(deps, doc._id);
      if (!now) return { kind: 'stopped' };
      if (now.doc.generation !== doc.generation || Date.now() - session.started >= session.rotateAfterMs) return { kind: 'rotate' };
    }
  }
}

/**
 * Applies every unseen message past the cursor, oldest first. A notice is flagged and moved only
 * after its verdict is applied, so a crash in between means it is applied again on the next pass,
 * which changes nothing (handleBounceOrComplaint is idempotent). Human mail is read with BODY.PEEK
 * (imapflow's `source`), so it stays unread, and stays where it is: the cursor, stored after each
 * message, is what keeps it from being read again.
 */
async function processUnseen(
  deps: BounceMailboxWatchDeps,
  doc: BounceMailboxDoc,
  client: ImapFlow,
  log: WatchControl['log'],
  cursor: { at: { key: string; uid: number } | null },
): Promise<void> {
  const tenantId = doc._id;
  const s = doc.settings;
  const key = JSON.stringify([s.host, s.port, s.user, s.mailbox, client.mailbox ? String(client.mailbox.uidValidity) : '?']);
  const from = cursor.at?.key === key ? cursor.at.uid + 1 : 1;
  // `n:*` also matches the last message when n is past it (RFC 3501 6.4.8): filtered below.
  const unseen = (await client.fetchAll({ seen: false, uid: `${from}:*` }, { uid: true, size: true }, { uid: true })).filter(
    (m) => m.uid >= from,
  );
  for (const m of unseen.sort((a, b) => a.uid - b.uid)) {
    const uid = String(m.uid);
    const at = new Date();
    const moved = await processOne(deps, doc, client, log, m, at);
    if (moved) await markProcessed(client, uid, s.processedFolder);
    cursor.at = { key, uid: m.uid };
    await deps.bounceMailboxes.advanceCursor(tenantId, doc.generation, cursor.at);
  }
}

/** Applies one message; true when it is to be moved out (a notice), false for human mail (left alone). */
async function processOne(
  deps: BounceMailboxWatchDeps,
  doc: BounceMailboxDoc,
  client: ImapFlow,
  log: WatchControl['log'],
  m: { uid: number; size?: number },
  at: Date,
): Promise<boolean> {
  const tenantId = doc._id;
  const uid = String(m.uid);
  if ((m.size ?? 0) > MAX_NOTICE_BYTES) {
    // No notice is this big: a person's mail with attachments, left where it is.
    await deps.bounceMailboxes.countProcessed(tenantId, 'oversized', at);
    return false;
  }
  const fetched = await client.fetchOne(uid, { uid: true, source: true }, { uid: true });
  if (!fetched || !fetched.source) return false; // expunged meanwhile
  // A message that cannot be read as mail (no I/O happens here, so the fault is the message's: unreadable, or
  // past INBOUND_PARSE_TIMEOUT_MS) must not stop the watch. It is counted and left where it is: it may be a
  // person's. Busy parser threads are no fault of the message: the watch fails and retries.
  const mail = await mailFromRaw(fetched.source).catch((err: unknown) => {
    if (err instanceof DependencyUnavailableError) throw err;
    log.info('bounce mailbox: unreadable message left in place', { tenantId, uid, error: (err as Error).message });
    return null;
  });
  if (!mail) {
    await deps.bounceMailboxes.countProcessed(tenantId, 'unreadable', at);
    return false;
  }
  // Cartero's classifier and Sisimai (the worker's one Perl bridge) on the same bytes, one verdict.
  const records = await sisimai().verdicts(fetched.source);
  const verdict = asMailVerdict(combineVerdicts(classifyMail(mail), records, returnedRecipients(mail)));
  const noticeId =
    fieldValue(mail.headers, 'message-id') ??
    `imap:${doc.settings.mailbox}:${client.mailbox ? String(client.mailbox.uidValidity) : '?'}:${uid}`;
  let counted: Parameters<BounceMailboxRepository['countProcessed']>[1] = verdict.kind;
  if (verdict.kind === 'bounce' || verdict.kind === 'delay' || verdict.kind === 'complaint') {
    const pause = deps.permits && deps.policy ? { pause: { permits: deps.permits, policy: deps.policy } } : {};
    const result = await handleBounceOrComplaint({ ...deps, ...pause }, tenantId, verdict, { channel: 'imap', noticeId });
    if (!result.messageId || !result.recipients.some((r) => r.matched)) {
      counted = 'unmatched';
      log.info('bounce mailbox: notice names no message or recipient of this tenant', {
        tenantId,
        noticeId,
        originalMessageId: verdict.originalMessageId,
      });
    }
  }
  await deps.bounceMailboxes.countProcessed(tenantId, counted, at);
  return verdict.kind !== 'human';
}

async function markProcessed(client: ImapFlow, uid: string, folder: string): Promise<void> {
  await client.messageFlagsAdd(uid, ['\\Seen'], { uid: true });
  await client.messageMove(uid, folder, { uid: true });
}

async function closeQuietly(client: ImapFlow): Promise<void> {
  if (client.usable) {
    // A polite LOGOUT, bounded: the connection is dropped just below whatever the server answers.
    await Promise.race([client.logout().catch(() => undefined), new Promise((r) => setTimeout(r, 5_000).unref())]);
  }
  client.close();
}

export function createBounceMailboxActivities(deps: BounceMailboxWatchDeps) {
  return {
    /** Long-running, heartbeating: see runBounceMailboxWatch. */
    async watchBounceMailbox(input: { tenantId: string }): Promise<WatchOutcome> {
      const ctx = Context.current();
      return runBounceMailboxWatch(deps, input.tenantId, {
        heartbeat: () => ctx.heartbeat(),
        cancelled: ctx.cancelled,
        log: ctx.log,
      });
    },
  };
}
