import tls from 'node:tls';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ImapFlow } from 'imapflow';
import type { MessageStatus } from '../domain/message';
import type { AllowableClass } from '../domain/network';
import { sentCopyPlan, type ImapEndpoint } from '../domain/sent-copy';
import { OAuthCredentialsError, orNullIfNotFound } from '../errors';
import type { MessageDoc, MessageRepository } from '../store/messages';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import { startSentCopy, type SentCopyInput } from '../temporal/handoffs/sent-copy';
import { describeImapError, imapLoginRefused } from './bounce-mailbox-watch';
import { checkedAddresses, tlsServername } from './checked-address';
import type { OAuthAccess } from './oauth-access';

/**
 * The Sent-folder copy (docs/sending.md, "Sent copy"): after a 250 the exact bytes sent are
 * appended to the mailbox the tenant's IMAP server flags `\Sent` (SPECIAL-USE, RFC 6154), found by
 * that flag and never by name, logged in with the tenant's SMTP password or XOAUTH2 token.
 */
export interface SentCopyDeps {
  tenants: TenantRepository;
  messages: MessageRepository;
  temporal: Client;
  taskQueue: string;
  oauth?: OAuthAccess;
  allowPrivateNetworks: readonly AllowableClass[];
}

/** A failure only the tenant can fix: the workflow stops retrying and shows it on the message. */
const refused = (message: string) => ApplicationFailure.nonRetryable(message, 'SentCopyRefused');

/**
 * Called by the attempt that recorded the outcome (and by its replay): starts the copy workflow
 * when the message was sent and the tenant wants a copy. Idempotent by workflow id.
 */
export async function copyToSentIfWanted(
  deps: Pick<SentCopyDeps, 'temporal' | 'taskQueue'>,
  doc: MessageDoc,
  tenant: TenantDoc,
  status: MessageStatus,
): Promise<void> {
  if (status !== 'sent' && status !== 'partially_sent') return;
  if (!sentCopyPlan(tenant.settings).append) return;
  await startSentCopy(deps.temporal, deps.taskQueue, { tenantId: doc.tenantId, id: doc._id });
}

/** Connects and logs in: the tenant's SMTP password, or its XOAUTH2 token (refreshed once if refused). */
async function connect(deps: SentCopyDeps, tenant: TenantDoc, imap: ImapEndpoint): Promise<ImapFlow> {
  const auth = deps.tenants.openAuth(tenant);
  switch (auth.type) {
    case 'password':
      return open(deps, tenant, imap, { user: auth.user, pass: auth.password });
    case 'oauth2': {
      if (!deps.oauth) throw new Error('this worker runs without the OAuth2 token service');
      try {
        return await deps.oauth.loginWithRefresh(
          deps.tenants.credentialBinding(tenant),
          (accessToken) => open(deps, tenant, imap, { user: auth.user, accessToken }),
          imapLoginRefused,
        );
      } catch (err) {
        if (err instanceof OAuthCredentialsError) throw refused(err.message);
        throw classified(err, imap);
      }
    }
    case 'none':
      throw refused('the tenant sends without a login, so there is no mailbox to log in to');
  }
}

/** Login refused, certificate, unknown host: the watch's classification; a lost connection is retried. */
function classified(err: unknown, imap: ImapEndpoint): unknown {
  if (err instanceof ApplicationFailure) return err;
  const d = describeImapError(err);
  return d.needsAttention ? refused(`IMAP ${imap.host}:${imap.port}: ${d.message}`) : err;
}

async function open(
  deps: SentCopyDeps,
  tenant: TenantDoc,
  imap: ImapEndpoint,
  auth: { user: string; pass: string } | { user: string; accessToken: string },
): Promise<ImapFlow> {
  const smtp = tenant.settings.smtp;
  const { addresses, refused: why } = await checkedAddresses(imap.host, deps.allowPrivateNetworks);
  if (why) throw refused(`IMAP host ${imap.host} refused: ${why}`);
  // The SMTP side's trust applies to the same host; another host is checked by its own name.
  const servername = tlsServername(imap.host, imap.host === smtp.host ? smtp.tls.servername : undefined);
  const client = new ImapFlow({
    host: addresses[0]!,
    port: imap.port,
    secure: imap.security === 'tls',
    ...(imap.security === 'starttls' ? { doSTARTTLS: true } : {}),
    ...(servername ? { servername } : {}),
    auth,
    tls: {
      ...(servername ? { servername } : {}),
      ...(smtp.tls.ca ? { ca: [...tls.rootCertificates, smtp.tls.ca] } : {}),
      minVersion: smtp.tls.minVersion ?? 'TLSv1.2',
      rejectUnauthorized: true,
    },
    logger: false,
    disableCompression: true,
    connectionTimeout: 30_000,
    greetingTimeout: 16_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    // The raw error for loginWithRefresh to recognise a refused login; classified by connect().
    if ('pass' in auth || !imapLoginRefused(err)) throw classified(err, imap);
    throw err;
  }
  return client;
}

export function createSentCopyActivities(deps: SentCopyDeps) {
  return {
    /** One APPEND of the message's stored bytes, unless it is in Sent already (a retry after an APPEND whose answer was lost). */
    async appendToSent(input: SentCopyInput): Promise<void> {
      const doc = await orNullIfNotFound(deps.messages.get(input.tenantId, input.id));
      const tenant = await orNullIfNotFound(deps.tenants.get(input.tenantId));
      if (!doc || !tenant || doc.sentCopy?.status === 'appended') return;
      const plan = sentCopyPlan(tenant.settings);
      if (!plan.append) {
        // Turned off between the send and now.
        await deps.messages.setSentCopy(doc._id, { status: 'skipped', at: new Date(), reason: plan.reason });
        return;
      }
      const raw = await deps.messages.loadBody(doc);
      const client = await connect(deps, tenant, plan.imap);
      try {
        const sent = (await client.list()).find((f) => f.specialUse === '\\Sent' && f.specialUseSource === 'extension');
        if (!sent) throw refused(`no mailbox on ${plan.imap.host} carries the \\Sent special-use flag`);
        const lock = await client.getMailboxLock(sent.path);
        try {
          const already = await client.search({ header: { 'message-id': doc.messageId } }, { uid: true });
          if (!already || already.length === 0) {
            const sentAt = doc.attempts.at(-1)?.at ?? doc.completedAt ?? new Date();
            await client.append(sent.path, raw, ['\\Seen'], sentAt);
          }
        } finally {
          lock.release();
        }
        await deps.messages.setSentCopy(doc._id, { status: 'appended', at: new Date(), reason: null, folder: sent.path });
      } finally {
        await Promise.race([client.logout().catch(() => undefined), new Promise((r) => setTimeout(r, 5_000).unref())]);
        client.close();
      }
    },

    async recordSentCopyFailure(input: SentCopyInput, reason: string): Promise<void> {
      await deps.messages.setSentCopy(input.id, { status: 'failed', at: new Date(), reason });
    },
  };
}
