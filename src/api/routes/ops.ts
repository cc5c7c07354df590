import express, { Router, type Express, type Request } from 'express';
import type { Registry } from 'prom-client';
import { constantTimeEqual } from '../../security/crypto';
import type { Store } from '../../store/mongo';
import { bearerToken } from '../auth';
import { buildOpenApi } from '../openapi';

/**
 * Health, readiness and metrics. The public API port says only what a load balancer needs:
 * `/healthz` → `ok`, `/readyz` → 200 `ready` / 503 `not ready` (the checks' detail, with their error
 * text, only for the admin key). Metrics and the detailed readiness live on a separate listener
 * (`METRICS_PORT`, loopback by default: createOpsApp), so strangers learn neither our dependencies'
 * errors nor our traffic (docs/operations.md).
 */
export interface OpsDeps {
  store: Store;
  /** Resolves when Temporal's frontend answers. */
  temporalCheck: () => Promise<unknown>;
  version: string;
  isShuttingDown: () => boolean;
}

interface Readiness {
  ok: boolean;
  detail: { status: 'ready' | 'not_ready'; version: string; shuttingDown: boolean; checks: Record<'store' | 'temporal', Check> };
}
interface Check {
  ok: boolean;
  ms: number;
  error?: string;
}

async function check(fn: () => Promise<unknown>, timeoutMs: number): Promise<Check> {
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

/** Store and Temporal both answer, and the process is not draining. */
async function readiness(deps: OpsDeps): Promise<Readiness> {
  const [store, temporal] = await Promise.all([check(() => deps.store.ping(), 2000), check(deps.temporalCheck, 2000)]);
  const shuttingDown = deps.isShuttingDown();
  const ok = store.ok && temporal.ok && !shuttingDown;
  return { ok, detail: { status: ok ? 'ready' : 'not_ready', version: deps.version, shuttingDown, checks: { store, temporal } } };
}

/** The public port's part. */
export function opsRoutes(deps: OpsDeps & { adminKey: string }): Router {
  const r = Router();
  const openapi = buildOpenApi(deps.version);
  const isAdmin = (req: Request) => {
    const token = bearerToken(req);
    return token !== null && constantTimeEqual(token, deps.adminKey);
  };

  /** Liveness: the process answers. Never checks dependencies (a DB outage must not restart pods). */
  r.get('/healthz', (_req, res) => {
    res.status(200).type('text/plain').set('Cache-Control', 'no-store').send('ok');
  });

  /** Readiness, 503 while shutting down so load balancers drain; the detail only for the admin key. */
  r.get('/readyz', async (req, res) => {
    const { ok, detail } = await readiness(deps);
    res.status(ok ? 200 : 503).set('Cache-Control', 'no-store');
    if (isAdmin(req)) res.json(detail);
    else res.type('text/plain').send(ok ? 'ready' : 'not ready');
  });

  r.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  return r;
}

/**
 * The operators' listener (METRICS_HOST:METRICS_PORT): `/metrics` (Prometheus), the detailed
 * `/readyz` (each check with its error text) and `/healthz`. Nothing else is served there.
 */
export function createOpsApp(deps: OpsDeps & { registry: Registry }): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/metrics', async (_req, res) => {
    res.type(deps.registry.contentType).send(await deps.registry.metrics());
  });
  app.get('/readyz', async (_req, res) => {
    const { ok, detail } = await readiness(deps);
    res.status(ok ? 200 : 503).json(detail);
  });
  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  app.use((_req, res) => {
    res.status(404).type('text/plain').send('not found');
  });
  return app;
}
