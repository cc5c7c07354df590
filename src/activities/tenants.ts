import type { AllowableClass } from '../domain/network';
import { ehloNameOf, type AuthInput } from '../domain/tenant';
import { SealedCredentialsError } from '../errors';
import type { TenantRepository } from '../store/tenants';
import type { OAuthAccess } from './oauth-access';
import type { ProbeResult } from '../domain/smtp-probe';
import { probeSmtp, type ProbeAuth } from './smtp-probe';

export interface TenantActivityDeps {
  tenants: TenantRepository;
  allowPrivateNetworks: readonly AllowableClass[];
  verifyTimeoutMs: number;
  /** XOAUTH2 tokens for OAuth2 tenants (from their token workflow). */
  oauth?: OAuthAccess;
}

export function createTenantActivities(deps: TenantActivityDeps) {
  return {
    /** DNS → TCP → TLS → EHLO → AUTH against the tenant's server; never throws for a server's refusal. */
    async verifySmtpConnection(tenantId: string): Promise<ProbeResult> {
      const doc = await deps.tenants.get(tenantId);
      const s = doc.settings.smtp;
      let auth: AuthInput;
      try {
        auth = deps.tenants.openAuth(doc);
      } catch (err) {
        if (!(err instanceof SealedCredentialsError)) throw err;
        // Secrets given for another endpoint are not tried against this one: no connection is made.
        return { ok: false, host: s.host, port: s.port, security: s.security, steps: [], failedStep: 'auth', error: err.message };
      }
      let probeAuth: ProbeAuth;
      switch (auth.type) {
        case 'none':
          probeAuth = { type: 'none' };
          break;
        case 'password':
          probeAuth = { type: 'password', user: auth.user, password: auth.password };
          break;
        case 'oauth2': {
          // The token comes the way sends get it; no token is itself the diagnosis (step auth).
          let token: string;
          try {
            if (!deps.oauth) throw new Error('this worker runs without the OAuth2 token service');
            token = (await deps.oauth.current(deps.tenants.credentialBinding(doc))).accessToken;
          } catch (err) {
            return {
              ok: false,
              host: s.host,
              port: s.port,
              security: s.security,
              steps: [],
              failedStep: 'auth',
              error: `no OAuth2 access token: ${(err as Error).message}`,
            };
          }
          probeAuth = { type: 'xoauth2', user: auth.user, accessToken: token };
          break;
        }
      }
      return probeSmtp({
        host: s.host,
        port: s.port,
        security: s.security,
        tls: s.tls,
        ehloName: ehloNameOf(doc.settings),
        auth: probeAuth,
        allowPrivateNetworks: deps.allowPrivateNetworks,
        timeoutMs: deps.verifyTimeoutMs,
      });
    },
  };
}
