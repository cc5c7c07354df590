import type { StoreDeps } from './repositories';
import { sealScopeOf } from './tenant-seal';

/**
 * The upgrade of tenants created before salts and endpoint-bound secrets (docs/decisions.md,
 * "Secrets bound to their tenant and endpoint"), run by every process at start, before it serves:
 * each such tenant gets its salt, and every one of its sealed values (auth secrets, webhook secret,
 * bounce-mailbox password, OAuth2 tokens, inbound secrets) is resealed in the `v2` format, bound to
 * the endpoint it is used with now. While a tenant is being upgraded (`legacySeals`), its `v1`
 * values still open; once done, they no longer do, and a tenant created since never accepts them.
 *
 * Idempotent and safe to run from several processes at once: every write is conditional on the
 * value it replaces. A tenant that cannot be upgraded (a value sealed under a key no longer
 * configured) is reported and left as it was; the next start tries again.
 */
export async function upgradeLegacySeals(
  repos: Pick<StoreDeps, 'tenants' | 'bounceMailboxes' | 'oauthTokens' | 'inbound'>,
  warn: (msg: string, fields: Record<string, unknown>) => void,
): Promise<number> {
  let upgraded = 0;
  for await (const legacy of repos.tenants.legacyTenants()) {
    try {
      const tenant = await repos.tenants.saltLegacy(legacy);
      const scope = sealScopeOf(tenant);
      await repos.bounceMailboxes.resealLegacy(scope);
      await repos.oauthTokens.resealLegacy(repos.tenants.credentialBinding(tenant));
      await repos.inbound.resealLegacy(scope);
      await repos.tenants.finishLegacy(tenant._id);
      upgraded++;
    } catch (err) {
      warn('could not upgrade the sealed secrets of a tenant; its old-format values keep working until the next start tries again', {
        tenantId: legacy._id,
        err: (err as Error).message,
      });
    }
  }
  return upgraded;
}
