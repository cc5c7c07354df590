import { Router, type Request, type Response, type NextFunction } from 'express';
import { z } from 'zod';
import type { PayloadCodec } from '@temporalio/common';
import { AuthenticationError, ValidationError } from '../../errors';
import { constantTimeEqual } from '../../security/crypto';
import { bearerToken } from '../auth';
import { parseBody } from '../validate';

/**
 * Remote codec endpoint for the Temporal Web UI (`--ui-codec-endpoint <base>/codec`): the UI posts
 * `{payloads:[{metadata:{k:base64}, data:base64}]}` to /codec/decode (and /encode) and shows the result.
 * Protected by the admin key unless CODEC_ENDPOINT_AUTH=none (the embedded dev default).
 */
export interface CodecDeps {
  codec: PayloadCodec;
  auth: 'admin-key' | 'none';
  adminKey: string;
  corsOrigins: string[];
}

const wirePayloads = z.object({
  payloads: z
    .array(
      z.object({
        metadata: z.record(z.string(), z.string()).optional(),
        data: z.string().optional(),
      }),
    )
    .max(1000),
});

export function codecRoutes(deps: CodecDeps): Router {
  const r = Router();

  const cors = (req: Request, res: Response, next: NextFunction) => {
    const origin = req.headers.origin;
    if (origin && deps.corsOrigins.includes(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.status(204).end();
      return;
    }
    next();
  };

  const authorize = (req: Request) => {
    if (deps.auth === 'none') return;
    const token = bearerToken(req);
    if (!token || !constantTimeEqual(token, deps.adminKey)) {
      throw new AuthenticationError('the codec endpoint needs the admin key');
    }
  };

  const handler = (direction: 'encode' | 'decode') => async (req: Request, res: Response) => {
    authorize(req);
    const body = parseBody(req, wirePayloads);
    const payloads = body.payloads.map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
      ...(p.data !== undefined ? { data: Buffer.from(p.data, 'base64') } : {}),
    }));
    let out;
    try {
      out = direction === 'decode' ? await deps.codec.decode(payloads) : await deps.codec.encode(payloads);
    } catch (err) {
      throw new ValidationError(`cannot ${direction} payloads: ${(err as Error).message}`, [
        { field: 'payloads', message: (err as Error).message },
      ]);
    }
    res.json({
      payloads: out.map((p) => ({
        metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
        data: p.data ? Buffer.from(p.data).toString('base64') : undefined,
      })),
    });
  };

  r.options('/codec/{*rest}', cors);
  r.post('/codec/decode', cors, handler('decode'));
  r.post('/codec/encode', cors, handler('encode'));
  return r;
}
