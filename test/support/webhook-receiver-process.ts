import { createServer } from 'node:http';
import { verifyWebhookSignature } from '../../src/security/webhook-signature';

/**
 * A product's webhook endpoint in its own process (a real HTTP server), driven by its parent over
 * IPC: it answers 2xx, 500, 410, or never (timeouts) as told, verifies every signature with the
 * tenant's secret (keyed by URL path) the way a receiver would, and reports each request.
 */
export type ReceiverMode = 'ok' | 'fail' | 'hang';

export interface ReceiverConfig {
  mode: ReceiverMode;
  /** Signing secret by URL path, e.g. `/hooks/acme` → `whsec_…`. */
  secrets: Record<string, string>;
  /** Event types always answered 500 (whatever the mode). */
  failTypes?: string[];
  /** Event types answered 410 Gone. */
  goneTypes?: string[];
}

export interface ReceivedRequest {
  path: string;
  webhookId: string;
  type: string;
  data: Record<string, unknown>;
  validSignature: boolean;
  /** What the receiver answered; null = never answered (the sender timed out). */
  answered: number | null;
  at: number;
}

export type ReceiverEvent = { type: 'listening'; port: number } | { type: 'request'; request: ReceivedRequest };
export type ReceiverCommand = { type: 'config'; config: Partial<ReceiverConfig> };

let cfg: ReceiverConfig = { mode: 'ok', secrets: {} };
const send = (e: ReceiverEvent) => process.send?.(e);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    const path = req.url ?? '/';
    const secret = cfg.secrets[path];
    const header = (n: string) => (typeof req.headers[n] === 'string' ? req.headers[n] : undefined);
    const validSignature =
      secret !== undefined &&
      verifyWebhookSignature(
        secret,
        { id: header('webhook-id'), timestamp: header('webhook-timestamp'), signature: header('webhook-signature') },
        raw,
        Math.floor(Date.now() / 1000),
      );
    let body: { type?: string; data?: Record<string, unknown> } = {};
    try {
      body = JSON.parse(raw) as typeof body;
    } catch {
      /* reported as an empty type */
    }
    const type = body.type ?? '';
    let answered: number | null;
    if (cfg.goneTypes?.includes(type)) answered = 410;
    else if (cfg.failTypes?.includes(type)) answered = 500;
    else answered = cfg.mode === 'ok' ? 204 : cfg.mode === 'fail' ? 500 : null;
    send({
      type: 'request',
      request: { path, webhookId: header('webhook-id') ?? '', type, data: body.data ?? {}, validSignature, answered, at: Date.now() },
    });
    if (answered !== null) res.writeHead(answered).end();
    // 'hang': keep the request open; the sender's timeout ends it.
  });
});

process.on('message', (m) => {
  const cmd = m as ReceiverCommand;
  if (cmd.type === 'config') cfg = { ...cfg, ...cmd.config };
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  if (addr && typeof addr === 'object') send({ type: 'listening', port: addr.port });
});
