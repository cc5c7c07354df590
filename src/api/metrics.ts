import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface ApiMetrics {
  registry: Registry;
  /** Messages accepted by POST /v1/messages (not its idempotent repeats), by tenant preset. */
  accepted: Counter<'preset'>;
  middleware: (req: Request, res: Response, next: NextFunction) => void;
}

export function createApiMetrics(): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'cartero_api_' });
  const requests = new Counter({
    name: 'cartero_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'cartero_http_request_duration_seconds',
    help: 'HTTP request duration by method and route',
    labelNames: ['method', 'route'] as const,
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const accepted = new Counter({
    name: 'cartero_messages_accepted_total',
    help: 'Messages accepted by POST /v1/messages (repeats of an idempotency key not counted), by tenant preset',
    labelNames: ['preset'] as const,
    registers: [registry],
  });
  return {
    registry,
    accepted,
    middleware: (req, res, next) => {
      const end = duration.startTimer();
      res.on('finish', () => {
        // The route pattern, not the URL: ids in labels would explode the series count.
        const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
        end({ method: req.method, route });
        requests.inc({ method: req.method, route, status: String(res.statusCode) });
      });
      next();
    },
  };
}
