import type { AllowableClass } from '../domain/network';
import { ehloNameOf } from '../domain/tenant';
import type { TenantRepository } from '../store/tenants';
import { probeSmtp, type ProbeAuth, type ProbeResult } from './smtp-probe';

export interface TenantActivityDeps {
  tenants: TenantRepository;
  allowPrivateNetworks: readonly AllowableClass[];
  verifyTimeoutMs: number;
}

export function createTenantActivities(deps: TenantActivityDeps) {
  return {
    /** DNS → TCP → TLS → EHLO → AUTH against the tenant's server; never throws for a server's refusal. */
    async verifySmtpConnection(tenantId: string): Promise<ProbeResult> {
      const doc = await deps.tenants.get(tenantId);
      const auth = deps.tenants.openAuth(doc);
      const s = doc.settings.smtp;
      let probeAuth: ProbeAuth;
      switch (auth.type) {
        case 'none':
          probeAuth = { type: 'none' };
          break;
        case 'password':
          probeAuth = { type: 'password', user: auth.user, password: auth.password };
          break;
        case 'oauth2':
          return {
            ok: false,
            host: s.host,
            port: s.port,
            security: s.security,
            steps: [],
            failedStep: 'auth',
            error: 'verifying OAuth2 tenants needs the token service, which is not configured in this build',
          };
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
