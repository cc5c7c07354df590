import { Router, type Request } from 'express';
import { z } from 'zod';
import type { OAuthConfig } from '../../config/env';
import { CONSENT_PROVIDERS, consentProblem } from '../../domain/oauth';
import { tenantIdSchema } from '../../domain/tenant';
import { CarteroError, ConflictError, ConsentError, OAuthCredentialsError, orNullIfNotFound, ValidationError } from '../../errors';
import type { OAuthProviders } from '../../oauth/providers';
import { newPkce, signState, verifyState } from '../../oauth/state';
import {
  signalCredentialsChanged,
  signalCredentialsChangedIfRunning,
  tokenWorkflowId,
  type TokenWorkflowTarget,
} from '../../temporal/handoffs/oauth-token';
import type { Keyring } from '../../security/crypto';
import type { OAuthTokenRepository } from '../../store/oauth-tokens';
import type { TenantRepository } from '../../store/tenants';
import { requireTenantAccess } from '../auth';
import { problemFor } from '../problem';
import { parseParam } from '../validate';

export interface OAuthRouteDeps {
  tenants: TenantRepository;
  oauthTokens: OAuthTokenRepository;
  providers: OAuthProviders;
  keyring: Keyring;
  config: OAuthConfig;
  /** Wakes the tenant's waiting sends and its token workflow (the same as a credentials PATCH). */
  onCredentialsChanged: (tenantId: string) => Promise<void>;
}

const callbackQuerySchema = z.object({
  state: z.string().min(1).max(4096),
  code: z.string().min(1).max(4096).optional(),
  error: z.string().max(200).optional(),
  error_description: z.string().max(2000).optional(),
});

/**
 * `GET /v1/tenants/:id/oauth/:provider/start` (admin or the tenant's key): 302 to the provider's
 * consent page, with a signed expiring `state` and PKCE. The body repeats the URL as JSON for
 * callers that forward it to a browser themselves.
 */
export function oauthStartRoutes(deps: OAuthRouteDeps): Router {
  const r = Router();
  r.get('/v1/tenants/:id/oauth/:provider/start', async (req, res) => {
    const id = parseParam(req.params.id, 'id', tenantIdSchema);
    requireTenantAccess(req, id);
    const provider = parseParam(req.params.provider, 'provider', z.enum(CONSENT_PROVIDERS));
    const tenant = await deps.tenants.get(id);
    const auth = deps.tenants.openAuth(tenant);
    const problem = consentProblem(auth, provider);
    if (problem || auth.type !== 'oauth2') {
      throw new ValidationError(`no consent flow for this tenant: ${problem}`, [{ field: 'auth', message: problem ?? 'not oauth2' }]);
    }
    const { codeVerifier, codeChallenge } = newPkce();
    const expiresAt = Date.now() + deps.config.stateTtlMs;
    const { state } = signState(deps.keyring, { tenantId: id, provider, exp: expiresAt, codeVerifier });
    const authorizeUrl = await deps.providers.authorizeUrl(auth, { state, codeChallenge, redirectUri: deps.config.redirectUrl });
    res
      .status(302)
      .location(authorizeUrl)
      .json({ authorizeUrl, expiresAt: new Date(expiresAt).toISOString() });
  });
  return r;
}

/**
 * `GET /v1/oauth/callback`: the provider sends the browser here (no API key: the signed state is
 * the credential). State is checked (signature, expiry) and spent (single use, recorded by `_id`)
 * before anything else; the code is exchanged; only then is anything stored. Errors answer a small
 * HTML page to browsers and problem+json to everything else.
 */
export function oauthCallbackRoutes(deps: OAuthRouteDeps): Router {
  const r = Router();
  r.get('/v1/oauth/callback', async (req, res, next) => {
    try {
      const q = callbackQuerySchema.safeParse(req.query);
      if (!q.success) throw new ConsentError('the callback lacks a state parameter', 'invalid_state');
      const state = verifyState(deps.keyring, q.data.state);
      if (!(await deps.oauthTokens.useState(state.sid, state.tenantId))) {
        throw new ConsentError('this consent link was already used; start the consent again', 'replayed_state');
      }
      // Used ids only need to outlive their states' expiry (no TTL indexes on FerretDB). Housekeeping
      // off the response path: a failure only leaves old ids for the next callback to clear.
      void deps.oauthTokens.forgetStatesUsedBefore(new Date(Date.now() - 2 * deps.config.stateTtlMs)).catch(() => undefined);
      if (q.data.error) {
        const denied = q.data.error === 'access_denied';
        throw new ConsentError(
          denied
            ? 'consent was denied at the provider; nothing was changed'
            : `the provider reported ${q.data.error}${q.data.error_description ? `: ${q.data.error_description.slice(0, 300)}` : ''}`,
          denied ? 'access_denied' : 'provider_error',
        );
      }
      if (!q.data.code) throw new ConsentError('the callback carries neither a code nor an error', 'provider_error');
      const tenantId = await completeConsent(deps, state.tenantId, state.provider, q.data.code, state.codeVerifier);
      const body = { tenantId, provider: state.provider, status: 'active', tokenWorkflowId: tokenWorkflowId(tenantId) };
      if (wantsHtml(req)) {
        res
          .status(200)
          .type('text/html')
          .send(
            page(
              'Consent recorded',
              `Cartero can now send mail for tenant <b>${esc(tenantId)}</b> through ${esc(state.provider)}. You can close this window.`,
            ),
          );
      } else {
        res.status(200).json(body);
      }
    } catch (err) {
      if (err instanceof CarteroError && wantsHtml(req)) {
        const p = problemFor(err);
        res
          .status(p.status)
          .type('text/html')
          .send(page(p.title, esc(p.detail)));
        return;
      }
      next(err);
    }
  });
  return r;
}

/** Exchanges the code, stores the refresh token sealed, activates the tenant, wakes its workflows. */
async function completeConsent(
  deps: OAuthRouteDeps,
  tenantId: string,
  provider: string,
  code: string,
  codeVerifier: string,
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    const tenant = await deps.tenants.get(tenantId);
    const auth = deps.tenants.openAuth(tenant);
    const problem = consentProblem(auth, provider);
    if (problem || auth.type !== 'oauth2')
      throw new ConsentError(`the tenant changed since the consent started: ${problem}`, 'exchange_failed');
    let grant;
    try {
      grant = await deps.providers.exchangeCode(auth, code, codeVerifier, deps.config.redirectUrl);
    } catch (err) {
      if (err instanceof OAuthCredentialsError)
        throw new ConsentError(`the provider refused the code exchange: ${err.message}`, 'exchange_failed');
      throw err;
    }
    const status = tenant.settings.status === 'suspended' ? 'suspended' : 'active';
    try {
      const updated = await deps.tenants.update(
        tenantId,
        tenant.settingsVersion,
        { ...tenant.settings, status },
        { ...auth, refreshToken: grant.refreshToken },
      );
      await deps.oauthTokens.save(
        deps.tenants.credentialBinding(updated),
        { accessToken: grant.accessToken, expiresAt: grant.expiresAt },
        updated.settingsVersion,
      );
    } catch (err) {
      // A concurrent PATCH: the code is spent, but the grant is still ours to store.
      if (err instanceof ConflictError && attempt < 3) continue;
      throw err;
    }
    await deps.onCredentialsChanged(tenantId);
    return tenantId;
  }
}

/**
 * After a tenant's auth changed: an OAuth2 tenant's token workflow refreshes now (starting it if
 * needed); a tenant that left OAuth2 lets its workflow notice and end.
 */
export async function oauthCredentialsChanged(target: TokenWorkflowTarget, tenants: TenantRepository, tenantId: string): Promise<void> {
  // A deleted tenant's workflow is told below and ends; a store failure surfaces (as Temporal's do).
  const tenant = await orNullIfNotFound(tenants.get(tenantId));
  if (tenant?.auth.type === 'oauth2') {
    await signalCredentialsChanged(target, tenantId);
    return;
  }
  // No longer OAuth2 (or gone): a running token workflow is told, finds that out and ends; none running is fine.
  await signalCredentialsChangedIfRunning(target.client, tenantId);
}

function wantsHtml(req: Request): boolean {
  return req.accepts(['application/json', 'application/problem+json', 'text/html']) === 'text/html';
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title: string, html: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title></head><body><h1>${esc(title)}</h1><p>${html}</p></body></html>`;
}
