import { Router } from 'express';
import type { Registry } from 'prom-client';
import type { Store } from '../../store/mongo';
import { buildOpenApi } from '../openapi';

export interface OpsDeps {
  store: Store;
  /** Resolves when Temporal's frontend answers. */
  temporalCheck: () => Promise<unknown>;
  registry: Registry;
  version: string;
  isShuttingDown: () => boolean;
}

async function check(fn: () => Promise<unknown>, timeoutMs: number): Promise<{ ok: boolean; ms: number; error?: string }> {
  const started = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, ms: Date.now() - started };
  } catch (err) {
    return { ok: false, ms: Date.now() - started, error: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

export function opsRoutes(deps: OpsDeps): Router {
  const r = Router();
  const openapi = buildOpenApi(deps.version);

  /** Liveness: the process answers. Never checks dependencies (a DB outage must not restart pods). */
  r.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', version: deps.version });
  });

  /** Readiness: store and Temporal both answer; 503 while shutting down so load balancers drain. */
  r.get('/readyz', async (_req, res) => {
    const [store, temporal] = await Promise.all([check(() => deps.store.ping(), 2000), check(deps.temporalCheck, 2000)]);
    const shuttingDown = deps.isShuttingDown();
    const ok = store.ok && temporal.ok && !shuttingDown;
    res.status(ok ? 200 : 503).json({ status: ok ? 'ready' : 'not_ready', shuttingDown, checks: { store, temporal } });
  });

  r.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });

  r.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  return r;
}
