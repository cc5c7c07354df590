import { createHash } from 'node:crypto';
import { get } from 'node:https';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';

/**
 * A real SMTP server (smtp-server from npm) in its own process, driven by its parent over IPC.
 * Tests control what it answers (per recipient, per DATA, per connection) and can kill it outright;
 * every received message is reported back with its Message-ID and arrival time.
 */
export interface Reply {
  code: number;
  text: string;
}

export interface PeerConfig {
  /** Listen on this port (0 = any free one). */
  port?: number;
  /** Implicit TLS from the first byte (port 465 style) instead of STARTTLS. */
  implicitTls: boolean;
  key: string;
  cert: string;
  users: Record<string, string>;
  authMethods?: string[];
  hideStartTls?: boolean;
  /** MAIL FROM replies by lowercased address (e.g. Microsoft 365's 5.7.60 for a sender without Send As). */
  mailFromReplies?: Record<string, Reply>;
  /** SIZE announced in EHLO (RFC 1870); default 50 MB. */
  size?: number;
  /** RCPT TO replies by lowercased address (e.g. a 550 for one recipient). */
  rcptReplies?: Record<string, Reply>;
  /** Replies to DATA, consumed one per message in order; then 250. */
  dataReplies?: Reply[];
  /** Reply to the first DATA of each distinct Message-ID (every message refused once, whatever the order). */
  firstDataReply?: Reply;
  /** Milliseconds to wait before answering DATA (to hold a transaction open). */
  dataDelayMs?: number;
  /**
   * Milliseconds to hold the first DATA of each distinct Message-ID before answering it (a server
   * stalling after the final dot); the message is kept, as a real MTA that queued it would.
   */
  stallFirstDataMs?: number;
  /** Take the message and never answer DATA (a stalled server); each one is reported as `stalled`. */
  stallData?: boolean;
  /** Milliseconds to wait before answering AUTH (to hold an attempt open before its verdict). */
  authDelayMs?: number;
  /** XOAUTH2: accept only unexpired tokens signed by this OAuth2 server (checked against its JWKS). */
  oauth?: {
    jwksUrl: string;
    issuer: string;
    ca: string;
    /** SHA-256 (hex) of tokens to refuse although valid, as a server does after a revocation. */
    rejectTokens?: string[];
    /** How a refusal looks: Gmail's 334 challenge then 535, or Entra's bare 535. */
    failStyle?: 'challenge' | 'reply';
  };
  /** Accept mail without AUTH (an MX Postfix relays to in tests); default false: AUTH required. */
  authOptional?: boolean;
  /** Close the connection after each message, so every message authenticates again. */
  closeAfterMessage?: boolean;
}

export type PeerEvent =
  | { type: 'listening'; port: number }
  | {
      type: 'message';
      from: string;
      to: string[];
      size: number;
      at: number;
      messageId: string;
      raw: string;
      /** When the final dot arrived (the server has the message from here on). */
      dataEndAt: number;
      /** The client had gone before the reply could be written: it cannot know the message arrived. */
      replyLost: boolean;
    }
  /** The final dot of a DATA arrived (before any reply): the message is in the server's hands. */
  | { type: 'data'; messageId: string; at: number }
  | { type: 'rejected'; stage: 'mail' | 'rcpt' | 'data'; code: number; at: number; to?: string; from?: string }
  | { type: 'stalled'; at: number; messageId: string }
  | { type: 'auth'; user: string; ok: boolean; method?: string; reason?: string; tokenSha?: string };

export type PeerCommand = { type: 'config'; config: Partial<PeerConfig>; seq?: number };
/** The answer to a PeerCommand carrying `seq`: from here on the server answers with the new config. */
export type PeerAck = { type: 'configured'; seq: number };

const send = (e: PeerEvent) => process.send?.(e);

const smtpError = (r: Reply) => Object.assign(new Error(r.text), { responseCode: r.code });

let cfg: PeerConfig;
/** Message-IDs already refused once under `firstDataReply`. */
const refusedOnce = new Set<string>();
/** Message-IDs already held once under `stallFirstDataMs`. */
const stalledOnce = new Set<string>();
let server: SMTPServer;
let jwks: ReturnType<typeof createLocalJWKSet> | null = null;

/** The OAuth2 server's keys, fetched once over HTTPS (trusting its test CA). */
async function keys(): Promise<ReturnType<typeof createLocalJWKSet>> {
  if (jwks) return jwks;
  const o = cfg.oauth!;
  const body = await new Promise<string>((resolve, reject) => {
    get(o.jwksUrl, { ca: o.ca }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString('utf8')));
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
  jwks = createLocalJWKSet(JSON.parse(body) as JSONWebKeySet);
  return jwks;
}

/** Null when the token is acceptable, else why not. */
async function checkOAuth(token: string): Promise<string | null> {
  if (!cfg.oauth) return 'XOAUTH2 not configured';
  if (cfg.oauth.rejectTokens?.includes(createHash('sha256').update(token).digest('hex'))) return 'token revoked at the server';
  try {
    await jwtVerify(token, await keys(), { issuer: cfg.oauth.issuer });
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}

/** smtp-server's connection object of a session (its `id` is the session's), with its closed flag. */
function connectionOf(sessionId: string): { _closed?: boolean } | undefined {
  for (const c of server.connections) if ((c as unknown as { id: string }).id === sessionId) return c;
  return undefined;
}

process.on('message', (raw) => {
  const msg = raw as PeerConfig | PeerCommand;
  if ('type' in msg && msg.type === 'config') {
    cfg = { ...cfg, ...msg.config };
    if (msg.seq !== undefined) process.send?.({ type: 'configured', seq: msg.seq } satisfies PeerAck);
    return;
  }
  cfg = msg as PeerConfig;
  const options: SMTPServerOptions = {
    secure: cfg.implicitTls,
    key: cfg.key,
    cert: cfg.cert,
    hideSTARTTLS: cfg.hideStartTls ?? false,
    authMethods: cfg.authMethods ?? ['PLAIN', 'LOGIN'],
    // AUTH only after TLS, like every real submission server.
    allowInsecureAuth: false,
    authOptional: cfg.authOptional ?? false,
    logger: false,
    size: cfg.size ?? 50 * 1024 * 1024,
    onAuth(auth, _session, callback) {
      if (auth.method === 'XOAUTH2') {
        void checkOAuth(auth.accessToken ?? '').then((reason) => {
          const tokenSha = createHash('sha256')
            .update(auth.accessToken ?? '')
            .digest('hex');
          send({
            type: 'auth',
            user: auth.username ?? '',
            ok: reason === null,
            method: 'XOAUTH2',
            ...(reason ? { reason } : {}),
            tokenSha,
          });
          if (reason === null) return callback(null, { user: auth.username });
          if (cfg.oauth?.failStyle === 'reply') return callback(smtpError({ code: 535, text: '5.7.3 Authentication unsuccessful' }));
          callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' } });
        });
        return;
      }
      const answer = () => {
        const ok = auth.username !== undefined && cfg.users[auth.username] === auth.password;
        send({ type: 'auth', user: auth.username ?? '', ok });
        if (!ok) return callback(smtpError({ code: 535, text: '5.7.8 Error: authentication failed: bad credentials' }));
        callback(null, { user: auth.username });
      };
      if (cfg.authDelayMs) setTimeout(answer, cfg.authDelayMs);
      else answer();
    },
    onMailFrom(address, _session, callback) {
      const r = cfg.mailFromReplies?.[address.address.toLowerCase()];
      if (r && r.code >= 400) {
        send({ type: 'rejected', stage: 'mail', code: r.code, at: Date.now(), from: address.address });
        return callback(smtpError(r));
      }
      callback();
    },
    onRcptTo(address, _session, callback) {
      const r = cfg.rcptReplies?.[address.address.toLowerCase()];
      if (r && r.code >= 400) {
        send({ type: 'rejected', stage: 'rcpt', code: r.code, at: Date.now(), to: address.address });
        return callback(smtpError(r));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const dataEndAt = Date.now();
        const rawMsg = Buffer.concat(chunks).toString('utf8');
        const mid = /^Message-ID:\s*(<[^>]+>)/im.exec(rawMsg)?.[1] ?? '';
        send({ type: 'data', messageId: mid, at: dataEndAt });
        if (cfg.stallData) {
          send({ type: 'stalled', at: dataEndAt, messageId: mid });
          return;
        }
        const finish = () => {
          let planned = cfg.dataReplies?.shift();
          if (!planned && cfg.firstDataReply && !refusedOnce.has(mid)) {
            refusedOnce.add(mid);
            planned = cfg.firstDataReply;
          }
          if (planned && planned.code >= 400) {
            send({ type: 'rejected', stage: 'data', code: planned.code, at: Date.now() });
            return callback(smtpError(planned));
          }
          send({
            type: 'message',
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            size: rawMsg.length,
            at: Date.now(),
            messageId: mid,
            raw: rawMsg.length < 200_000 ? rawMsg : rawMsg.slice(0, 200_000),
            dataEndAt,
            replyLost: connectionOf(session.id)?._closed !== false,
          });
          callback(null, `2.0.0 Ok: queued as ${mid}`);
          if (cfg.closeAfterMessage) {
            for (const c of server.connections) if ((c as unknown as { id: string }).id === session.id) setTimeout(() => c.close(), 50);
          }
        };
        let delay = cfg.dataDelayMs ?? 0;
        if (cfg.stallFirstDataMs && !stalledOnce.has(mid)) {
          stalledOnce.add(mid);
          delay += cfg.stallFirstDataMs;
        }
        if (delay > 0) setTimeout(finish, delay);
        else finish();
      });
    },
  };
  server = new SMTPServer(options);
  server.on('error', () => undefined);
  server.listen(cfg.port ?? 0, '127.0.0.1', () => {
    const addr = server.server.address();
    send({ type: 'listening', port: typeof addr === 'object' && addr ? addr.port : 0 });
  });
});
