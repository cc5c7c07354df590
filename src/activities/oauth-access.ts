import { usableUntil } from '../domain/oauth';
import { CarteroError, DependencyUnavailableError, IdentityProviderUnavailableError, OAuthCredentialsError } from '../errors';
import { requestRefresh, type TokenWorkflowTarget } from '../temporal/handoffs/oauth-token';
import type { OAuthTokenRepository, StoredToken } from '../store/oauth-tokens';
import type { CredentialBinding } from '../store/tenant-seal';

/**
 * How the SMTP side of a worker gets a tenant's access token: from memory, else from the store
 * (where the token workflow keeps it sealed), else by asking the token workflow to refresh now.
 * Requests for the same stale generation share one call per worker; the workflow coalesces across
 * workers. Sends never call a provider themselves, so a tenant's refresh token is used by one
 * caller at a time (providers that rotate refresh tokens may revoke a family on concurrent reuse).
 */
export class OAuthAccess {
  /**
   * Per tenant, the last token and the binding (endpoint and credentials) it was read for: a token
   * is handed out only for that same binding, so a tenant whose settings now name another server
   * never gets the token obtained for the old one, not even from memory.
   */
  private readonly cache = new Map<string, { token: StoredToken; key: string }>();
  private readonly inflight = new Map<string, Promise<StoredToken>>();

  constructor(
    private readonly tokens: OAuthTokenRepository,
    private readonly target: TokenWorkflowTarget,
    private readonly waitMs = 30_000,
  ) {}

  private cached(binding: CredentialBinding): StoredToken | undefined {
    const c = this.cache.get(binding.scope.tenantId);
    return c && c.key === binding.key ? c.token : undefined;
  }

  /**
   * A token with life left, obtained for the tenant's settings as `binding` describes them.
   * OAuthCredentialsError when the tenant needs a person (needs_reauth).
   */
  async current(binding: CredentialBinding): Promise<StoredToken> {
    const tenantId = binding.scope.tenantId;
    const now = Date.now();
    const cached = this.cached(binding);
    if (cached && usableUntil(cached) > now) return cached;
    // A stored token obtained for other settings does not open: it counts as stale, like an expired one.
    const { token: stored, generation } = await this.tokens.lookup(binding);
    if (stored && usableUntil(stored) > now) {
      this.cache.set(tenantId, { token: stored, key: binding.key });
      return stored;
    }
    return this.renew(binding, Math.max(generation, this.cache.get(tenantId)?.token.generation ?? 0));
  }

  /** A token newer than `staleGeneration` (the one a server just refused, or an expired one). */
  async renew(binding: CredentialBinding, staleGeneration: number): Promise<StoredToken> {
    const key = `${binding.scope.tenantId}:${staleGeneration}:${binding.key}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.askWorkflow(binding, staleGeneration).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /**
   * Runs an XOAUTH2 send; if the server refuses the token (535, or 334 then 535), refreshes once
   * and retries once. nodemailer itself renews through the provision callback on a 334 challenge
   * (Gmail's way); Entra answers a bare 535, which only this retry covers. Nothing was sent when
   * AUTH failed, so the retry cannot duplicate a message.
   */
  async sendWithRefresh<T>(binding: CredentialBinding, send: () => Promise<T>): Promise<T> {
    const used = (await this.current(binding)).generation;
    try {
      return await send();
    } catch (err) {
      if ((err as { code?: string }).code !== 'EAUTH') throw err;
      // If nodemailer's renew (or another send) already produced a newer token, retry with it.
      if ((this.cached(binding)?.generation ?? 0) <= used) await this.renew(binding, used);
      return send();
    }
  }

  /**
   * An IMAP login (bounce mailbox watch, Sent copy) with the tenant's token; if the server refuses
   * a token the store still holds as valid (revoked, or rotated by the provider before its
   * expiry), one refresh and one more login, as sendWithRefresh does for SMTP. A second refusal is
   * the caller's to report: the token is then not the problem.
   */
  async loginWithRefresh<T>(
    binding: CredentialBinding,
    login: (accessToken: string) => Promise<T>,
    refused: (err: unknown) => boolean,
  ): Promise<T> {
    const used = await this.current(binding);
    try {
      return await login(used.accessToken);
    } catch (err) {
      if (!refused(err)) throw err;
      const cached = this.cached(binding);
      const next = cached && cached.generation > used.generation ? cached : await this.renew(binding, used.generation);
      return login(next.accessToken);
    }
  }

  /** nodemailer's XOAUTH2 provisionCallback for one tenant's pool (built for the settings `binding` describes). */
  provisioner(
    binding: CredentialBinding,
  ): (user: string, renew: boolean, cb: (err: Error | null, accessToken: string, expires: number) => void) => void {
    return (_user, renew, cb) => {
      const p = renew ? this.renew(binding, this.cached(binding)?.generation ?? 0) : this.current(binding);
      p.then(
        (t) => cb(null, t.accessToken, usableUntil(t)),
        (err: Error) => cb(err, '', 0),
      );
    };
  }

  private async askWorkflow(binding: CredentialBinding, staleGeneration: number): Promise<StoredToken> {
    const tenantId = binding.scope.tenantId;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new IdentityProviderUnavailableError(
              `no OAuth2 token for tenant ${tenantId} within ${Math.round(this.waitMs / 1000)} s (is the identity provider reachable?)`,
            ),
          ),
        this.waitMs,
      );
    });
    let answer;
    try {
      answer = await Promise.race([requestRefresh(this.target, tenantId, staleGeneration), timeout]);
    } catch (err) {
      if (err instanceof CarteroError) throw err;
      throw new DependencyUnavailableError('temporal', `cannot reach the token workflow of ${tenantId}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
    if (!answer.ok) throw new OAuthCredentialsError(`OAuth2 credentials need attention: ${answer.reason}`, 'needs_reauth');
    const stored = await this.tokens.get(binding);
    // Not there yet, or obtained for settings that changed again meanwhile: the caller retries.
    if (!stored || stored.generation < answer.generation)
      throw new IdentityProviderUnavailableError(`the refreshed token of ${tenantId} is not in the store yet (or its settings changed)`);
    this.cache.set(tenantId, { token: stored, key: binding.key });
    return stored;
  }
}
