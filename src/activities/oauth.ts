import { log } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { ConflictError, NotFoundError, OAuthCredentialsError, SealedCredentialsError } from '../errors';
import type { OAuth2Auth } from '../domain/oauth';
import type { OAuthProviders } from '../oauth/providers';
import type { EventRepository } from '../store/events';
import type { MessageRepository } from '../store/messages';
import type { OAuthTokenRepository } from '../store/oauth-tokens';
import type { TenantDoc, TenantRepository } from '../store/tenants';
import { wakeWaitingSends } from '../temporal/wake-waiting-sends';

export interface OAuthActivityDeps {
  tenants: TenantRepository;
  messages: MessageRepository;
  events: EventRepository;
  oauthTokens: OAuthTokenRepository;
  oauthProviders: OAuthProviders;
  temporal: Client;
}

/** What the token workflow learns: times and outcomes, never a token. */
export type RefreshOutcome =
  | { kind: 'ok'; obtainedAt: number; expiresAt: number; generation: number }
  | { kind: 'needs_reauth'; reason: string; settingsVersion: number }
  | { kind: 'gone'; reason: string };

/**
 * A status write that lost to a change made meanwhile (someone PATCHed new credentials: that change
 * signals the workflow) or to the tenant's deletion (the next refresh ends the workflow) is moot.
 * Anything else (the store down) fails the activity, which is retried; its steps repeat harmlessly.
 */
function changedOrGoneMeanwhile(err: unknown): void {
  if (err instanceof ConflictError || err instanceof NotFoundError) return;
  throw err;
}

export function createOAuthActivities(deps: OAuthActivityDeps) {
  /**
   * The tenant's credentials were refused: one `tenant.needs_reauth` event per credentials version
   * (the id carries the settingsVersion they were refused at, so a retried activity appends nothing
   * new), then the status. A suspended tenant stays suspended; the event still tells the product.
   */
  async function markNeedsReauth(tenant: TenantDoc, err: OAuthCredentialsError): Promise<void> {
    if (tenant.settings.status === 'needs_reauth') return;
    const auth = tenant.auth;
    await deps.events.append({
      id: `tenant.needs_reauth:${tenant._id}:${tenant.settingsVersion}`,
      tenantId: tenant._id,
      type: 'tenant.needs_reauth',
      data: { reason: err.message, code: err.code, provider: auth.provider ?? null, mode: auth.mode ?? null, user: auth.user ?? null },
    });
    if (tenant.settings.status === 'suspended') return;
    await deps.tenants
      .update(tenant._id, tenant.settingsVersion, { ...tenant.settings, status: 'needs_reauth' }, undefined)
      .catch(changedOrGoneMeanwhile);
  }

  return {
    /** Obtains a token with the tenant's current credentials and stores it sealed. */
    async refreshOAuthToken(tenantId: string): Promise<RefreshOutcome> {
      let tenant: TenantDoc;
      try {
        tenant = await deps.tenants.get(tenantId);
      } catch (err) {
        if (err instanceof NotFoundError) {
          await deps.oauthTokens.delete(tenantId);
          return { kind: 'gone', reason: 'the tenant was deleted' };
        }
        throw err;
      }
      if (tenant.auth.type !== 'oauth2') {
        await deps.oauthTokens.delete(tenantId);
        return { kind: 'gone', reason: `the tenant now uses ${tenant.auth.type} auth` };
      }
      let auth: OAuth2Auth;
      try {
        // The stored type was checked just above; opening only adds the secrets.
        auth = deps.tenants.openAuth(tenant) as OAuth2Auth;
      } catch (err) {
        // Secrets whose token URL or SMTP endpoint moved since they were given: nothing is sent to
        // the new one; a person must supply them again.
        if (!(err instanceof SealedCredentialsError)) throw err;
        const refused = new OAuthCredentialsError(err.message, 'sealed_credentials');
        await markNeedsReauth(tenant, refused);
        return { kind: 'needs_reauth', reason: refused.message, settingsVersion: tenant.settingsVersion };
      }
      const binding = deps.tenants.credentialBinding(tenant);
      const rotated = await deps.oauthTokens.rotatedRefreshToken(binding, tenant.settingsVersion);
      const obtainedAt = Date.now();
      let grant;
      try {
        grant = await deps.oauthProviders.obtain(auth, rotated);
      } catch (err) {
        if (!(err instanceof OAuthCredentialsError)) throw err; // unavailable: retried with backoff
        await markNeedsReauth(tenant, err);
        return { kind: 'needs_reauth', reason: err.message, settingsVersion: tenant.settingsVersion };
      }
      const stored = await deps.oauthTokens.save(binding, grant, tenant.settingsVersion, obtainedAt);
      if (tenant.settings.status === 'needs_reauth') {
        // Working again (a signal after the provider side was fixed, or new credentials).
        await deps.tenants
          .update(tenantId, tenant.settingsVersion, { ...tenant.settings, status: 'active' }, undefined)
          .catch(changedOrGoneMeanwhile);
        // A send that misses this wake-up re-reads the tenant within its 15-minute recheck; worth a line in the log.
        await wakeWaitingSends(deps.messages, deps.temporal, tenantId, (workflowId, err) => {
          log.warn('could not wake a send waiting for credentials', { workflowId, err: err.message });
        });
      }
      return { kind: 'ok', obtainedAt, expiresAt: stored.expiresAt, generation: stored.generation };
    },
  };
}
