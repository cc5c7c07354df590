import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import type { RetryPolicy } from '../domain/retry';
import { DEFAULT_WEBHOOK_POLICY, type WebhookPolicy } from '../domain/webhooks';

/**
 * Every setting Cartero reads from the environment. Validated once at start; an invalid or missing
 * variable stops the process with a message naming it (see ConfigError).
 */
const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');

const port = z.coerce.number().int().min(1).max(65535);

export const PRIVATE_NETWORK_CLASSES = ['loopback', 'private', 'linklocal', 'uniquelocal'] as const;
export type PrivateNetworkClass = (typeof PRIVATE_NETWORK_CLASSES)[number];

/** Comma list of PRIVATE_NETWORK_CLASSES an outbound connection may reach (SSRF guard). */
const privateNetworks = z
  .string()
  .default('')
  .transform((s, ctx) => {
    const parts = s
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    for (const p of parts) {
      if (!(PRIVATE_NETWORK_CLASSES as readonly string[]).includes(p)) {
        ctx.addIssue({
          code: 'custom',
          message: `unknown network class "${p}"; use ${PRIVATE_NETWORK_CLASSES.join(', ')}`,
        });
      }
    }
    return parts as PrivateNetworkClass[];
  });

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('production'),
  PORT: port.default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  PUBLIC_BASE_URL: z.url().optional(),
  /** Operators' listener: /metrics and the detailed /readyz (docs/operations.md). 0 = none. */
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9464),
  /** Loopback by default: bind it wider only on a network that only the scraper reaches. */
  METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** The worker's own /metrics listener (docs/operations.md, "Metrics"). 0 = none. */
  WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9465),
  WORKER_METRICS_HOST: z.string().min(1).default('127.0.0.1'),
  /** Where the Temporal SDK serves its own metrics (loopback; the worker's /metrics includes them). 0 = off. */
  TEMPORAL_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(9466),
  /** How often the worker's store gauges (oldest waiting message, tenants by health) are recomputed. */
  WORKER_METRICS_REFRESH_MS: z.coerce.number().int().min(1000).default(30_000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  CARTERO_ADMIN_KEY: z.string().min(24, 'must be at least 24 characters'),
  CARTERO_ENCRYPTION_KEYS: z.string().min(1),
  CARTERO_ENCRYPTION_ACTIVE_KEY_ID: z
    .string()
    .regex(/^[\w-]{1,32}$/)
    .optional(),

  MONGODB_URI: z.string().regex(/^mongodb(\+srv)?:\/\//, 'must be a mongodb:// or mongodb+srv:// URI'),
  MONGODB_DB: z
    .string()
    .regex(/^[\w-]{1,63}$/)
    .default('cartero'),
  MONGODB_MAX_POOL_SIZE: z.coerce.number().int().min(1).max(500).default(20),
  /**
   * The send path's per-message inserts and updates issued while one of their kind is in flight go
   * out together in one command (docs/decisions.md, "Coalesced writes"). false: one command each.
   */
  STORE_COALESCE_WRITES: bool.default(true),

  TEMPORAL_ADDRESS: z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port'),
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('cartero'),
  /**
   * Send workflows and their SMTP attempts poll this queue, everything else TEMPORAL_TASK_QUEUE, so a
   * stalled tenant server never delays limiter, case, webhook or OAuth work. Default `<TEMPORAL_TASK_QUEUE>-send`.
   */
  TEMPORAL_SEND_TASK_QUEUE: z.string().min(1).optional(),
  /** Slots of the worker process's two Workers (src/worker.ts): workflow tasks and activities per queue. */
  WORKER_CONTROL_WORKFLOW_TASK_SLOTS: z.coerce.number().int().min(4).max(1000).default(40),
  WORKER_CONTROL_ACTIVITY_SLOTS: z.coerce.number().int().min(1).max(2000).default(200),
  WORKER_SEND_WORKFLOW_TASK_SLOTS: z.coerce.number().int().min(4).max(1000).default(40),
  WORKER_SEND_ACTIVITY_SLOTS: z.coerce.number().int().min(1).max(2000).default(200),
  /**
   * SMTP attempts of one tenant in flight per worker process: min(the tenant's maxConnections, this).
   * Attempts beyond it wait outside every slot (docs/sending.md, "Tenant isolation").
   */
  SEND_TENANT_CONCURRENCY_MAX: z.coerce.number().int().min(1).max(50).default(10),
  /**
   * SMTP attempts run as local activities (each holds a send workflow-task slot while it lasts) per
   * worker process; more go to regular activities. Default: half of WORKER_SEND_WORKFLOW_TASK_SLOTS
   * (none below 40 slots, see defaultLocalAttempts).
   */
  SEND_LOCAL_ATTEMPTS_MAX: z.coerce.number().int().min(0).max(1000).optional(),
  /**
   * Regular SMTP attempts that may wait in a worker process for their tenant's next free slot (all
   * tenants together; each holds an activity slot while it waits), and for how long. Default: a
   * quarter of WORKER_SEND_ACTIVITY_SLOTS, 20 s. 0 turns waiting off (a busy tenant's attempt is
   * retried after a delay instead).
   */
  SEND_GATE_WAITERS_MAX: z.coerce.number().int().min(0).max(2000).optional(),
  SEND_GATE_WAIT_MS: z.coerce.number().int().min(0).max(60_000).default(20_000),
  TEMPORAL_API_KEY: z.string().min(1).optional(),
  TEMPORAL_TLS: bool.default(false),
  TEMPORAL_TLS_CERT_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_KEY_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_CA_PATH: z.string().min(1).optional(),
  TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),

  /** Comma list of PRIVATE_NETWORK_CLASSES that tenant SMTP hosts may resolve to. Empty in production. */
  SMTP_ALLOW_PRIVATE_NETWORKS: privateNetworks,
  /** Codec endpoint auth for the Temporal Web UI: `admin-key` (Bearer admin key) or `none`. */
  CODEC_ENDPOINT_AUTH: z.enum(['admin-key', 'none']).default('admin-key'),
  /** Origins allowed to call the codec endpoint from a browser (the Web UI's origin). */
  CODEC_CORS_ORIGINS: z.string().default('http://localhost:8233,http://127.0.0.1:8233'),
  API_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(64 * 1024 * 1024)
    .default(1024 * 1024),
  SMTP_VERIFY_TIMEOUT_MS: z.coerce.number().int().min(500).max(120_000).default(15_000),
  /**
   * How long a send may see no byte from the tenant's server (e.g. no reply after DATA) before the
   * attempt ends as a transient failure and is retried. Below the send activity's 10-minute limit,
   * so the attempt's own timeout, not Temporal's, decides (docs/sending.md).
   */
  SMTP_SOCKET_TIMEOUT_MS: z.coerce.number().int().min(1000).max(540_000).default(300_000),
  /** Resolvers for verify's SPF/DKIM/DMARC checks, `host` or `host:port`, comma-separated; empty = the system's. */
  DNS_SERVERS: z.string().default(''),
  DNS_TIMEOUT_MS: z.coerce.number().int().min(100).max(30_000).default(3000),
  /** RCPT TO of verify's envelope check: an address outside every tenant's domains shows relay refusals. */
  VERIFY_PROBE_RECIPIENT: z.email().max(254).optional(),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).max(300_000).default(15_000),
  /**
   * Tenant deletion (docs/operations.md): the wait between the deletion workflow's two passes, for
   * writers already under way (API processes cache a message for tracking hits up to 10 minutes).
   */
  TENANT_DELETION_SETTLE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(15 * 60_000),
  /**
   * How long an API process may answer an API key → tenant lookup, and a worker a send's first
   * tenant read, from memory (docs/decisions.md, "Tenant cache"). A process sees its own writes at
   * once; another process's (a revoked key, new settings) within this time. 0 turns it off.
   */
  TENANT_CACHE_MS: z.coerce.number().int().min(0).max(60_000).default(1000),
  /** Each tenant's scheduled health check (a verify) runs this often (docs/operations.md, "Tenant health"). */
  TENANT_HEALTH_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(60_000)
    .default(6 * 3600_000),

  /** JSON limit of POST /v1/messages (attachments arrive base64 inside it). */
  API_MESSAGE_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(200 * 1024 * 1024)
    .default(50 * 1024 * 1024),
  SEND_RETRY_INITIAL_MS: z.coerce.number().int().min(10).default(30_000),
  SEND_RETRY_MAX_MS: z.coerce
    .number()
    .int()
    .min(10)
    .default(2 * 60 * 60_000),
  SEND_GREYLIST_DELAY_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(5 * 60_000),
  SEND_GIVE_UP_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(3 * 24 * 60 * 60_000),
  SEND_CREDENTIALS_WAIT_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(3 * 24 * 60 * 60_000),
  SEND_THROTTLE_PAUSE_MS: z.coerce.number().int().min(0).default(60_000),
  /** A daily-quota refusal (Gmail's 550 5.4.5) pauses the tenant this long before one message tries again. */
  SEND_QUOTA_PAUSE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(60 * 60_000),
  /** How long a rate-limit permit stays usable; also added to every window (see domain/rate-limit.ts). */
  RATE_LIMIT_MARGIN_MS: z.coerce.number().int().min(100).max(60_000).default(2_000),
  /**
   * How long a message may wait for one rate-limit slot before it fails: 5 days, Postfix's
   * maximal_queue_lifetime (docs/decisions.md, "The rate limiter's queue and grant log").
   */
  SEND_RATE_LIMIT_MAX_WAIT_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(5 * 24 * 60 * 60_000),

  /** Event webhooks (docs/webhooks.md); read by the worker. */
  WEBHOOK_RETRY_INITIAL_MS: z.coerce.number().int().min(10).default(DEFAULT_WEBHOOK_POLICY.initialMs),
  WEBHOOK_RETRY_MAX_MS: z.coerce.number().int().min(10).default(DEFAULT_WEBHOOK_POLICY.maxMs),
  WEBHOOK_GIVE_UP_MS: z.coerce.number().int().min(100).default(DEFAULT_WEBHOOK_POLICY.giveUpMs),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(120_000).default(DEFAULT_WEBHOOK_POLICY.timeoutMs),
  /** Webhook URLs may resolve to these classes; empty in production. */
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: privateNetworks,
  WEBHOOK_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
  /** Reconciliation of messages whose workflow never started (docs/operations.md); read by the worker. */
  RECONCILE_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(5 * 60_000),
  RECONCILE_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(2 * 60_000),
  RECONCILE_NOT_ACCEPTED_GRACE_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(60 * 60_000),
  // OAuth2 (docs/oauth.md). Endpoints default to the providers' real ones; tests and air-gapped
  // setups point them elsewhere.
  OAUTH_GOOGLE_AUTHORIZE_URL: z.url().default('https://accounts.google.com/o/oauth2/v2/auth'),
  OAUTH_GOOGLE_TOKEN_URL: z.url().default('https://oauth2.googleapis.com/token'),
  /** Entra authority host; a tenant's authority is `<host>/<entraTenantId>` unless it sets `auth.authority`. */
  OAUTH_MICROSOFT_AUTHORITY_HOST: z.url().default('https://login.microsoftonline.com'),
  /** Where the provider sends the browser back after consent; default `<PUBLIC_BASE_URL>/v1/oauth/callback`. */
  OAUTH_REDIRECT_URL: z.url().optional(),
  /** Refresh this long before an access token expires. */
  OAUTH_REFRESH_MARGIN_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(30 * 60_000)
    .default(5 * 60_000),
  OAUTH_STATE_TTL_MS: z.coerce
    .number()
    .int()
    .min(10_000)
    .max(60 * 60_000)
    .default(15 * 60_000),
  /** PEM file with extra CA(s) trusted for identity-provider endpoints (private IdP, tests). */
  OAUTH_CA_FILE: z.string().min(1).optional(),
  /** Like SMTP_ALLOW_PRIVATE_NETWORKS, for token endpoints (a tenant may name its own token URL). */
  OAUTH_ALLOW_PRIVATE_NETWORKS: privateNetworks,
  /** Base URL of tracking and unsubscribe links (/t/o, /t/c, /u) in sent mail; defaults to PUBLIC_BASE_URL. */
  TRACKING_BASE_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Hits are written in batches: every TRACKING_FLUSH_MS or TRACKING_FLUSH_HITS hits, whichever first. */
  TRACKING_FLUSH_MS: z.coerce.number().int().min(10).max(60_000).default(250),
  TRACKING_FLUSH_HITS: z.coerce.number().int().min(1).max(10_000).default(500),
  /** Hits kept in memory while the store is down; past it they spill to TRACKING_SPOOL_DIR. */
  TRACKING_BUFFER_MAX: z.coerce.number().int().min(100).max(10_000_000).default(100_000),
  /** Directory for spilled hits (`none` disables spilling: hits past the buffer are dropped and counted). */
  TRACKING_SPOOL_DIR: z.string().min(1).optional(),
  /** The same pixel or link fetched again from the same IP and User-Agent within this long is one hit; 0 = every fetch is one. */
  TRACKING_REPEAT_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(0)
    .max(24 * 60 * 60_000)
    .default(10 * 60_000),
  /** Tracking hits recorded per second per client IP (IPv6: per /64), sustained; past it hits are answered, not recorded. 0 = no limit. */
  TRACKING_IP_RATE: z.coerce.number().min(0).max(1_000_000).default(10),
  /** Hits a client IP may have recorded in a burst before TRACKING_IP_RATE applies. */
  TRACKING_IP_BURST: z.coerce.number().int().min(1).max(1_000_000).default(100),
  /** Most `message.opened` (and, apart, `message.clicked`) events and case signals per message and recipient; counts go on. */
  TRACKING_MAX_EVENTS: z.coerce.number().int().min(1).max(100_000).default(20),
  /** Extra CIDRs whose clicks are machine (link scanners of the tenants' recipients). */
  TRACKING_SCANNER_CIDRS: z
    .string()
    .default('')
    .transform((s, ctx) => {
      const parts = s
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean);
      for (const p of parts) if (!isCidr(p)) ctx.addIssue({ code: 'custom', message: `"${p}" is not a CIDR like 203.0.113.0/24` });
      return parts;
    }),
  /** Body limit of POST /v1/inbound/... (SendGrid posts up to 30 MB, Postmark 35 MB of attachments in base64). */
  INBOUND_BODY_LIMIT_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(200 * 1024 * 1024)
    .default(64 * 1024 * 1024),
  INBOUND_ATTACHMENT_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(25 * 1024 * 1024),
  INBOUND_MAX_MIME_PARTS: z.coerce.number().int().min(2).max(10_000).default(500),
  INBOUND_SUBJECT_WINDOW_MS: z.coerce
    .number()
    .int()
    .min(0)
    .default(30 * 24 * 60 * 60_000),
  INBOUND_MAILGUN_MAX_AGE_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(15 * 60_000),
  /**
   * Inbound webhook bodies one process reads at once (each up to INBOUND_BODY_LIMIT_BYTES in memory
   * until it is stored); more get 503 with Retry-After before their body is read, and the provider retries.
   */
  INBOUND_MAX_CONCURRENT: z.coerce.number().int().min(1).max(1000).default(8),
  /** Threads that parse and classify received mail off the event loop (src/inbound/parse-pool.ts). */
  INBOUND_PARSE_THREADS: z.coerce.number().int().min(1).max(64).default(2),
  /** Messages that may wait for a parser thread; one more is answered 503 (the provider retries). */
  INBOUND_PARSE_QUEUE: z.coerce.number().int().min(0).max(10_000).default(100),
  /** How long parsing or classifying one message may take before its thread is stopped (400). */
  INBOUND_PARSE_TIMEOUT_MS: z.coerce.number().int().min(100).default(30_000),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  http: { port: number; host: string; publicBaseUrl: string; bodyLimitBytes: number };
  /** Where /metrics and the detailed /readyz are served; null = not served. */
  metrics: { port: number; host: string } | null;
  logLevel: Env['LOG_LEVEL'];
  adminKey: string;
  encryption: { keys: Map<string, Buffer>; activeKeyId: string };
  mongo: { uri: string; db: string; maxPoolSize: number; coalesceWrites: boolean };
  temporal: {
    address: string;
    namespace: string;
    /** The control queue: every workflow but the send workflow (and sends started before the split). */
    taskQueue: string;
    /** Send workflows and their activities. */
    sendTaskQueue: string;
    apiKey?: string;
    tls?: { certPath?: string; keyPath?: string; caPath?: string; serverName?: string };
  };
  smtp: { allowPrivateNetworks: PrivateNetworkClass[]; verifyTimeoutMs: number; socketTimeoutMs: number };
  verify: { dnsServers: string[]; dnsTimeoutMs: number; probeRecipient?: string };
  codec: { auth: 'admin-key' | 'none'; corsOrigins: string[] };
  shutdownGraceMs: number;
  /** Slots of the worker process's Workers, and how SMTP attempts share them (src/activities/send-gate.ts). */
  worker: {
    control: { workflowTaskSlots: number; activitySlots: number };
    send: { workflowTaskSlots: number; activitySlots: number };
    tenantConcurrencyMax: number;
    gateWaitersMax: number;
    gateWaitMs: number;
    localAttemptsMax: number;
  };
  tenants: { deletionSettleMs: number; healthIntervalMs: number; cacheMs: number };
  /** The worker's /metrics (null = not served) and the Temporal SDK's exporter port (null = off). */
  workerMetrics: { port: number; host: string; temporalPort: number | null; refreshMs: number } | null;
  send: {
    messageBodyLimitBytes: number;
    policy: RetryPolicy;
    permitMarginMs: number;
    /** A message waiting longer than this for one rate-limit slot fails. */
    rateLimitMaxWaitMs: number;
  };
  webhooks: { policy: WebhookPolicy; allowPrivateNetworks: PrivateNetworkClass[]; sweepIntervalMs: number };
  reconcile: { intervalMs: number; graceMs: number; notAcceptedGraceMs: number };
  oauth: OAuthConfig;
  tracking: {
    baseUrl: string;
    flushMs: number;
    flushHits: number;
    bufferMax: number;
    spoolDir: string | null;
    scannerCidrs: string[];
    repeatWindowMs: number;
    ipRate: number;
    ipBurst: number;
    maxEvents: number;
  };
  inbound: {
    bodyLimitBytes: number;
    maxConcurrentBodies: number;
    maxAttachmentBytes: number;
    maxMimeParts: number;
    subjectWindowMs: number;
    mailgunMaxAgeMs: number;
    /** The parse pool (src/inbound/parse-pool.ts). */
    parse: { threads: number; queueMax: number; timeoutMs: number };
  };
}

export interface OAuthConfig {
  google: { authorizeUrl: string; tokenUrl: string };
  microsoft: { authorityHost: string };
  redirectUrl: string;
  refreshMarginMs: number;
  stateTtlMs: number;
  /** PEM text read from OAUTH_CA_FILE. */
  extraCa?: string;
  allowPrivateNetworks: PrivateNetworkClass[];
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** `https://x//` → `https://x`. A loop, not /\/+$/: that regex rescans a long run of slashes from each of them. */
function withoutTrailingSlashes(url: string): string {
  let end = url.length;
  while (end > 0 && url[end - 1] === '/') end--;
  return url.slice(0, end);
}

/** `kid1:base64key,kid2:base64key`; every key must decode to exactly 32 bytes (AES-256). */
export function parseEncryptionKeys(raw: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const entry of raw
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    const idx = entry.indexOf(':');
    if (idx <= 0) throw new Error(`entry "${entry.slice(0, 8)}…" is not kid:base64key`);
    const kid = entry.slice(0, idx);
    if (!/^[\w-]{1,32}$/.test(kid)) throw new Error(`key id "${kid}" must match [A-Za-z0-9_-]{1,32}`);
    const key = Buffer.from(entry.slice(idx + 1), 'base64');
    if (key.length !== 32) throw new Error(`key "${kid}" must be 32 bytes base64-encoded, got ${key.length}`);
    if (keys.has(kid)) throw new Error(`key id "${kid}" appears twice`);
    keys.set(kid, key);
  }
  if (keys.size === 0) throw new Error('no keys given');
  return keys;
}

/**
 * Half the send Worker's workflow-task slots, and none below 40 slots: measured with 10 slots (5
 * local attempts), two SMTP attempts stalled as local activities stopped the Worker from taking new
 * workflow tasks at all (tenant-stall.test.ts: a backlog of 223 tasks, no dispatch); with 40 slots
 * (20 local) or with every attempt a regular activity, the same run delivered everything.
 */
function defaultLocalAttempts(sendSlots: number): number {
  return sendSlots >= 40 ? Math.floor(sendSlots / 2) : 0;
}

export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(source);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? '?');
        return source[name] === undefined && i.code === 'invalid_type' ? `${name} is required but not set` : `${name}: ${i.message}`;
      }),
    );
  }
  const e = parsed.data;
  const problems: string[] = [];
  let keys = new Map<string, Buffer>();
  try {
    keys = parseEncryptionKeys(e.CARTERO_ENCRYPTION_KEYS);
  } catch (err) {
    problems.push(`CARTERO_ENCRYPTION_KEYS: ${(err as Error).message}`);
  }
  // The first key listed encrypts unless another is named: rotation = prepend the new key.
  const activeKeyId = e.CARTERO_ENCRYPTION_ACTIVE_KEY_ID ?? [...keys.keys()][0] ?? '';
  if (keys.size > 0 && !keys.has(activeKeyId)) {
    problems.push(`CARTERO_ENCRYPTION_ACTIVE_KEY_ID: "${activeKeyId}" is not one of CARTERO_ENCRYPTION_KEYS`);
  }
  if ((e.TEMPORAL_TLS_CERT_PATH === undefined) !== (e.TEMPORAL_TLS_KEY_PATH === undefined)) {
    problems.push('TEMPORAL_TLS_CERT_PATH and TEMPORAL_TLS_KEY_PATH must be set together');
  }
  let extraCa: string | undefined;
  if (e.OAUTH_CA_FILE !== undefined) {
    try {
      extraCa = readFileSync(e.OAUTH_CA_FILE, 'utf8');
      if (!extraCa.includes('-----BEGIN CERTIFICATE-----')) problems.push('OAUTH_CA_FILE: not a PEM certificate file');
    } catch (err) {
      problems.push(`OAUTH_CA_FILE: ${(err as Error).message}`);
    }
  }
  if (e.SEND_LOCAL_ATTEMPTS_MAX !== undefined && e.SEND_LOCAL_ATTEMPTS_MAX > e.WORKER_SEND_WORKFLOW_TASK_SLOTS - 4) {
    problems.push('SEND_LOCAL_ATTEMPTS_MAX must leave at least 4 of WORKER_SEND_WORKFLOW_TASK_SLOTS to other workflow tasks');
  }
  const sendTaskQueue = e.TEMPORAL_SEND_TASK_QUEUE ?? `${e.TEMPORAL_TASK_QUEUE}-send`;
  if (sendTaskQueue === e.TEMPORAL_TASK_QUEUE) {
    problems.push('TEMPORAL_SEND_TASK_QUEUE must differ from TEMPORAL_TASK_QUEUE (sends get a queue of their own)');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const publicBaseUrl = e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`;

  const useTls = e.TEMPORAL_TLS || e.TEMPORAL_TLS_CERT_PATH !== undefined || e.TEMPORAL_API_KEY !== undefined;
  return {
    env: e.NODE_ENV,
    http: {
      port: e.PORT,
      host: e.HOST,
      publicBaseUrl,
      bodyLimitBytes: e.API_BODY_LIMIT_BYTES,
    },
    metrics: e.METRICS_PORT === 0 ? null : { port: e.METRICS_PORT, host: e.METRICS_HOST },
    logLevel: e.LOG_LEVEL,
    adminKey: e.CARTERO_ADMIN_KEY,
    encryption: { keys, activeKeyId },
    mongo: { uri: e.MONGODB_URI, db: e.MONGODB_DB, maxPoolSize: e.MONGODB_MAX_POOL_SIZE, coalesceWrites: e.STORE_COALESCE_WRITES },
    temporal: {
      address: e.TEMPORAL_ADDRESS,
      namespace: e.TEMPORAL_NAMESPACE,
      taskQueue: e.TEMPORAL_TASK_QUEUE,
      sendTaskQueue,
      ...(e.TEMPORAL_API_KEY ? { apiKey: e.TEMPORAL_API_KEY } : {}),
      ...(useTls
        ? {
            tls: {
              ...(e.TEMPORAL_TLS_CERT_PATH ? { certPath: e.TEMPORAL_TLS_CERT_PATH } : {}),
              ...(e.TEMPORAL_TLS_KEY_PATH ? { keyPath: e.TEMPORAL_TLS_KEY_PATH } : {}),
              ...(e.TEMPORAL_TLS_CA_PATH ? { caPath: e.TEMPORAL_TLS_CA_PATH } : {}),
              ...(e.TEMPORAL_TLS_SERVER_NAME ? { serverName: e.TEMPORAL_TLS_SERVER_NAME } : {}),
            },
          }
        : {}),
    },
    smtp: {
      allowPrivateNetworks: e.SMTP_ALLOW_PRIVATE_NETWORKS,
      verifyTimeoutMs: e.SMTP_VERIFY_TIMEOUT_MS,
      socketTimeoutMs: e.SMTP_SOCKET_TIMEOUT_MS,
    },
    verify: {
      dnsServers: e.DNS_SERVERS.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
      dnsTimeoutMs: e.DNS_TIMEOUT_MS,
      ...(e.VERIFY_PROBE_RECIPIENT ? { probeRecipient: e.VERIFY_PROBE_RECIPIENT } : {}),
    },
    codec: {
      auth: e.CODEC_ENDPOINT_AUTH,
      corsOrigins: e.CODEC_CORS_ORIGINS.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    },
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS,
    worker: {
      control: { workflowTaskSlots: e.WORKER_CONTROL_WORKFLOW_TASK_SLOTS, activitySlots: e.WORKER_CONTROL_ACTIVITY_SLOTS },
      send: { workflowTaskSlots: e.WORKER_SEND_WORKFLOW_TASK_SLOTS, activitySlots: e.WORKER_SEND_ACTIVITY_SLOTS },
      tenantConcurrencyMax: e.SEND_TENANT_CONCURRENCY_MAX,
      gateWaitersMax: e.SEND_GATE_WAITERS_MAX ?? Math.floor(e.WORKER_SEND_ACTIVITY_SLOTS / 4),
      gateWaitMs: e.SEND_GATE_WAIT_MS,
      localAttemptsMax: e.SEND_LOCAL_ATTEMPTS_MAX ?? defaultLocalAttempts(e.WORKER_SEND_WORKFLOW_TASK_SLOTS),
    },
    tenants: { deletionSettleMs: e.TENANT_DELETION_SETTLE_MS, healthIntervalMs: e.TENANT_HEALTH_INTERVAL_MS, cacheMs: e.TENANT_CACHE_MS },
    workerMetrics:
      e.WORKER_METRICS_PORT === 0
        ? null
        : {
            port: e.WORKER_METRICS_PORT,
            host: e.WORKER_METRICS_HOST,
            temporalPort: e.TEMPORAL_METRICS_PORT === 0 ? null : e.TEMPORAL_METRICS_PORT,
            refreshMs: e.WORKER_METRICS_REFRESH_MS,
          },
    send: {
      messageBodyLimitBytes: e.API_MESSAGE_BODY_LIMIT_BYTES,
      policy: {
        initialMs: e.SEND_RETRY_INITIAL_MS,
        maxMs: e.SEND_RETRY_MAX_MS,
        greylistMs: e.SEND_GREYLIST_DELAY_MS,
        giveUpMs: e.SEND_GIVE_UP_MS,
        credentialsWaitMs: e.SEND_CREDENTIALS_WAIT_MS,
        throttlePauseMs: e.SEND_THROTTLE_PAUSE_MS,
        quotaPauseMs: e.SEND_QUOTA_PAUSE_MS,
      },
      permitMarginMs: e.RATE_LIMIT_MARGIN_MS,
      rateLimitMaxWaitMs: e.SEND_RATE_LIMIT_MAX_WAIT_MS,
    },
    webhooks: {
      policy: {
        initialMs: e.WEBHOOK_RETRY_INITIAL_MS,
        maxMs: e.WEBHOOK_RETRY_MAX_MS,
        giveUpMs: e.WEBHOOK_GIVE_UP_MS,
        timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      },
      allowPrivateNetworks: e.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      sweepIntervalMs: e.WEBHOOK_SWEEP_INTERVAL_MS,
    },
    reconcile: {
      intervalMs: e.RECONCILE_INTERVAL_MS,
      graceMs: e.RECONCILE_GRACE_MS,
      notAcceptedGraceMs: e.RECONCILE_NOT_ACCEPTED_GRACE_MS,
    },
    oauth: {
      google: { authorizeUrl: e.OAUTH_GOOGLE_AUTHORIZE_URL, tokenUrl: e.OAUTH_GOOGLE_TOKEN_URL },
      microsoft: { authorityHost: withoutTrailingSlashes(e.OAUTH_MICROSOFT_AUTHORITY_HOST) },
      redirectUrl: e.OAUTH_REDIRECT_URL ?? `${withoutTrailingSlashes(publicBaseUrl)}/v1/oauth/callback`,
      refreshMarginMs: e.OAUTH_REFRESH_MARGIN_MS,
      stateTtlMs: e.OAUTH_STATE_TTL_MS,
      ...(extraCa !== undefined ? { extraCa } : {}),
      allowPrivateNetworks: e.OAUTH_ALLOW_PRIVATE_NETWORKS,
    },
    tracking: {
      baseUrl: withoutTrailingSlashes(e.TRACKING_BASE_URL ?? e.PUBLIC_BASE_URL ?? `http://localhost:${e.PORT}`),
      flushMs: e.TRACKING_FLUSH_MS,
      flushHits: e.TRACKING_FLUSH_HITS,
      bufferMax: e.TRACKING_BUFFER_MAX,
      spoolDir: e.TRACKING_SPOOL_DIR === 'none' ? null : (e.TRACKING_SPOOL_DIR ?? path.join(os.tmpdir(), 'cartero-tracking-spool')),
      scannerCidrs: e.TRACKING_SCANNER_CIDRS,
      repeatWindowMs: e.TRACKING_REPEAT_WINDOW_MS,
      ipRate: e.TRACKING_IP_RATE,
      ipBurst: e.TRACKING_IP_BURST,
      maxEvents: e.TRACKING_MAX_EVENTS,
    },
    inbound: {
      bodyLimitBytes: e.INBOUND_BODY_LIMIT_BYTES,
      maxConcurrentBodies: e.INBOUND_MAX_CONCURRENT,
      maxAttachmentBytes: e.INBOUND_ATTACHMENT_MAX_BYTES,
      maxMimeParts: e.INBOUND_MAX_MIME_PARTS,
      subjectWindowMs: e.INBOUND_SUBJECT_WINDOW_MS,
      mailgunMaxAgeMs: e.INBOUND_MAILGUN_MAX_AGE_MS,
      parse: { threads: e.INBOUND_PARSE_THREADS, queueMax: e.INBOUND_PARSE_QUEUE, timeoutMs: e.INBOUND_PARSE_TIMEOUT_MS },
    },
  };
}

function isCidr(s: string): boolean {
  try {
    ipaddr.parseCIDR(s);
    return true;
  } catch {
    return false;
  }
}
