import { promises as dns } from 'node:dns';
import net from 'node:net';
import tls from 'node:tls';
import { addressRefusal, isIpLiteral, type AllowableClass } from '../domain/network';
import type { EnvelopeCheck, ProbeResult, ProbeStep } from '../domain/smtp-probe';

/**
 * A step-by-step SMTP submission probe for `POST /v1/tenants/:id/verify`.
 *
 * Written by hand on purpose: nodemailer's `verify()` reports a single error code, while onboarding
 * needs to know *which* step failed (DNS, TCP, TLS, EHLO, AUTH) and the server's exact reply.
 * Sending mail still goes through nodemailer; this only diagnoses.
 */
export type ProbeAuth =
  { type: 'none' } | { type: 'password'; user: string; password: string } | { type: 'xoauth2'; user: string; accessToken: string };

export interface ProbeOptions {
  host: string;
  port: number;
  security: 'starttls' | 'tls';
  tls: { ca?: string; servername?: string; minVersion?: 'TLSv1.2' | 'TLSv1.3' };
  ehloName: string;
  auth: ProbeAuth;
  allowPrivateNetworks: readonly AllowableClass[];
  timeoutMs: number;
  /**
   * After AUTH: MAIL FROM each sender, RCPT TO its probe recipient, RSET. No DATA is ever sent, so
   * nothing is delivered; a refusal is recorded and the next sender is still tried.
   */
  envelope?: ReadonlyArray<{ sender: string; recipient: string }>;
  /** Time for all envelope checks together (default 60 s). */
  envelopeBudgetMs?: number;
}

interface Reply {
  code: number;
  text: string;
}

class StepFailure extends Error {
  constructor(
    readonly step: ProbeStep,
    message: string,
    readonly reply?: string,
  ) {
    super(message);
  }
}

/** Reads SMTP replies (RFC 5321 §4.2: `NNN-` continues, `NNN ` ends) from whichever socket is current. */
class ReplyReader {
  private buffer = '';
  private lines: string[] = [];
  private waiter: (() => void) | null = null;
  private closed: Error | null = null;
  private socket: net.Socket | null = null;

  private readonly onData = (chunk: string): void => {
    this.buffer += chunk;
    if (this.buffer.length > 64 * 1024) {
      this.fail(new Error('server sent an over-long reply'));
      return;
    }
    let i: number;
    while ((i = this.buffer.indexOf('\n')) >= 0) {
      this.lines.push(this.buffer.slice(0, i).replace(/\r$/, ''));
      this.buffer = this.buffer.slice(i + 1);
    }
    this.wake();
  };
  private readonly onClose = (): void => this.fail(new Error('connection closed by server'));
  private readonly onError = (err: Error): void => this.fail(err);

  attach(socket: net.Socket): void {
    this.detach();
    this.socket = socket;
    socket.setEncoding('utf8');
    socket.on('data', this.onData);
    socket.on('close', this.onClose);
    socket.on('error', this.onError);
  }

  /** Before a TLS upgrade: the TLS layer must own the raw socket's bytes from here on. */
  detach(): void {
    this.socket?.off('data', this.onData);
    this.socket?.off('close', this.onClose);
    this.socket?.off('error', this.onError);
    this.socket = null;
  }

  private fail(err: Error): void {
    this.closed ??= err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async read(timeoutMs: number): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    const collected: string[] = [];
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        collected.push(line);
        const m = /^(\d{3})([ -]?)/.exec(line);
        if (!m) throw new Error(`malformed reply line: ${line.slice(0, 200)}`);
        if (m[2] !== '-') return { code: Number(m[1]), text: collected.join('\n') };
        continue;
      }
      if (this.closed) throw this.closed;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** Bytes the server sent before we asked (pipelining violation before STARTTLS: a known attack). */
  pending(): boolean {
    return this.lines.length > 0 || this.buffer.length > 0;
  }
}

export async function probeSmtp(opts: ProbeOptions): Promise<ProbeResult> {
  const result: ProbeResult = { ok: false, host: opts.host, port: opts.port, security: opts.security, steps: [] };
  const reader = new ReplyReader();
  let socket: net.Socket | null = null;

  const run = async <T>(
    step: ProbeStep,
    fn: () => Promise<T>,
    detail?: (v: T) => string | undefined,
    reply?: (v: T) => string | undefined,
  ): Promise<T> => {
    const started = Date.now();
    try {
      const v = await fn();
      const d = detail?.(v);
      const r = reply?.(v);
      result.steps.push({ step, ok: true, ms: Date.now() - started, ...(d ? { detail: d } : {}), ...(r ? { reply: r } : {}) });
      return v;
    } catch (err) {
      const f = err instanceof StepFailure ? err : new StepFailure(step, (err as Error).message);
      result.steps.push({ step, ok: false, ms: Date.now() - started, detail: f.message, ...(f.reply ? { reply: f.reply } : {}) });
      throw f;
    }
  };

  const command = async (step: ProbeStep, line: string, expect: number[], shown = line): Promise<Reply> => {
    if (!socket) throw new StepFailure(step, 'not connected');
    socket.write(`${line}\r\n`);
    const r = await reader.read(opts.timeoutMs);
    if (!expect.includes(r.code)) throw new StepFailure(step, `${shown.split(' ')[0]} refused with ${r.code}`, r.text);
    return r;
  };

  const tlsOptions = (): tls.ConnectionOptions => {
    const servername = opts.tls.servername ?? (isIpLiteral(opts.host) ? undefined : opts.host);
    return {
      ...(servername ? { servername } : {}),
      // `ca` replaces Node's roots, so the public roots are kept beside the tenant's private CA.
      ...(opts.tls.ca ? { ca: [...tls.rootCertificates, opts.tls.ca] } : {}),
      minVersion: opts.tls.minVersion ?? 'TLSv1.2',
      rejectUnauthorized: true,
    };
  };

  const handshake = (sock: tls.TLSSocket): Promise<tls.TLSSocket> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`TLS handshake not finished within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      sock.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(sock);
      });
      sock.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new Error(err.code ? `${err.code}: ${err.message}` : err.message));
      });
    });

  const describeTls = (sock: tls.TLSSocket): string => {
    const cert = sock.getPeerCertificate();
    result.tls = {
      protocol: sock.getProtocol(),
      cipher: sock.getCipher().name,
      ...(cert?.subject?.CN ? { subject: String(cert.subject.CN) } : {}),
      ...(cert?.issuer?.CN ? { issuer: String(cert.issuer.CN) } : {}),
      ...(cert?.valid_to ? { validTo: cert.valid_to } : {}),
    };
    return `${sock.getProtocol()} ${sock.getCipher().name}, certificate verified`;
  };

  try {
    const addresses = await run(
      'dns',
      async () => {
        const found = isIpLiteral(opts.host)
          ? [opts.host.replace(/^\[|\]$/g, '')]
          : (await dns.lookup(opts.host, { all: true, verbatim: true })).map((a) => a.address);
        if (found.length === 0) throw new Error(`${opts.host} has no address`);
        // Every address must be allowed: a mixed answer is how DNS rebinding reaches internal hosts.
        for (const a of found) {
          const refusal = addressRefusal(a, opts.allowPrivateNetworks);
          if (refusal) throw new Error(`refused: ${refusal}`);
        }
        return found;
      },
      (a) => a.join(', '),
    );

    socket = await run(
      'tcp',
      async () => {
        let lastErr: Error | null = null;
        for (const address of addresses) {
          try {
            return await new Promise<net.Socket>((resolve, reject) => {
              const s = net.connect({ host: address, port: opts.port });
              const timer = setTimeout(() => {
                s.destroy();
                reject(new Error(`connect to ${address}:${opts.port} timed out after ${opts.timeoutMs} ms`));
              }, opts.timeoutMs);
              s.once('connect', () => {
                clearTimeout(timer);
                result.address = address;
                resolve(s);
              });
              s.once('error', (err: NodeJS.ErrnoException) => {
                clearTimeout(timer);
                reject(new Error(`${err.code ?? 'error'} connecting to ${address}:${opts.port}`));
              });
            });
          } catch (err) {
            lastErr = err as Error;
          }
        }
        throw lastErr ?? new Error('no address to connect to');
      },
      () => `connected to ${result.address}:${opts.port}`,
    );

    if (opts.security === 'tls') {
      const raw = socket;
      socket = await run(
        'tls',
        () => handshake(tls.connect({ socket: raw, ...tlsOptions() })),
        (s) => describeTls(s),
      );
    }
    reader.attach(socket);

    await run(
      'greeting',
      async () => {
        const r = await reader.read(opts.timeoutMs);
        if (r.code !== 220) throw new StepFailure('greeting', `server greeted with ${r.code}`, r.text);
        return r;
      },
      undefined,
      (r) => r.text,
    );

    let ehlo = await run(
      'ehlo',
      () => command('ehlo', `EHLO ${opts.ehloName}`, [250]),
      undefined,
      (r) => r.text,
    );

    if (opts.security === 'starttls') {
      const caps = capabilities(ehlo);
      if (!caps.includes('STARTTLS')) {
        await run('starttls', async () => {
          throw new StepFailure('starttls', 'server does not offer STARTTLS; refusing to authenticate in clear');
        });
      }
      await run(
        'starttls',
        () => command('starttls', 'STARTTLS', [220]),
        undefined,
        (r) => r.text,
      );
      if (reader.pending()) {
        await run('starttls', async () => {
          throw new StepFailure('starttls', 'server sent data after STARTTLS before the handshake (possible injection)');
        });
      }
      const plain = socket;
      reader.detach();
      const secured = await run(
        'tls',
        () => handshake(tls.connect({ socket: plain, ...tlsOptions() })),
        (s) => describeTls(s),
      );
      socket = secured;
      reader.attach(secured);
      ehlo = await run(
        'ehlo',
        () => command('ehlo', `EHLO ${opts.ehloName}`, [250]),
        undefined,
        (r) => r.text,
      );
    }
    result.capabilities = capabilities(ehlo);

    const auth = opts.auth;
    if (auth.type !== 'none') {
      const mechanisms = authMechanisms(result.capabilities);
      await run(
        'auth',
        async () => {
          if (auth.type === 'xoauth2') {
            if (!mechanisms.includes('XOAUTH2'))
              throw new StepFailure('auth', `server offers no XOAUTH2 (offers: ${mechanisms.join(' ') || 'none'})`);
            const token = Buffer.from(`user=${auth.user}\x01auth=Bearer ${auth.accessToken}\x01\x01`).toString('base64');
            return authExchange(`AUTH XOAUTH2 ${token}`, 'AUTH XOAUTH2');
          }
          if (mechanisms.includes('PLAIN')) {
            const token = Buffer.from(`\0${auth.user}\0${auth.password}`).toString('base64');
            return authExchange(`AUTH PLAIN ${token}`, 'AUTH PLAIN');
          }
          if (mechanisms.includes('LOGIN')) {
            await command('auth', 'AUTH LOGIN', [334]);
            await command('auth', Buffer.from(auth.user).toString('base64'), [334], 'AUTH LOGIN username');
            return command('auth', Buffer.from(auth.password).toString('base64'), [235], 'AUTH LOGIN password');
          }
          throw new StepFailure('auth', `server offers no PLAIN or LOGIN (offers: ${mechanisms.join(' ') || 'none'})`);
        },
        () => undefined,
        (r) => r.text,
      );
    }

    const size = sizeOf(result.capabilities);
    if (size !== undefined) result.sizeLimit = size;

    let envelopeOk = true;
    if (opts.envelope && opts.envelope.length > 0) {
      result.envelope = [];
      const budgetEnds = Date.now() + (opts.envelopeBudgetMs ?? 60_000);
      for (const { sender, recipient } of opts.envelope) {
        const check: EnvelopeCheck = { sender, recipient, ok: false };
        result.envelope.push(check);
        if (Date.now() > budgetEnds) {
          // A server that answers slowly would otherwise run the activity past its deadline: later senders are reported untried.
          check.error = "not tried: verify's time for envelope checks is spent (the server answers slowly)";
          envelopeOk = false;
          continue;
        }
        const mail = await envelopeStep('mail', `MAIL FROM:<${sender}>`);
        check.mailFrom = mail.text;
        if (mail.code === 250) {
          const rcpt = await envelopeStep('rcpt', `RCPT TO:<${recipient}>`);
          check.rcptTo = rcpt.text;
          check.ok = rcpt.code === 250 || rcpt.code === 251;
        }
        if (!check.ok) envelopeOk = false;
        // RSET ends the transaction without DATA: nothing is queued, the next sender starts clean.
        await envelopeStep('rset', 'RSET');
      }
    }

    socket.write('QUIT\r\n');
    result.ok = envelopeOk;
  } catch (err) {
    const f = err as StepFailure;
    result.failedStep = f.step;
    result.error = f.message;
    if (f.reply) result.reply = f.reply;
  } finally {
    socket?.destroy();
  }
  return result;

  /** One envelope command: the reply is the result, a refusal is recorded but does not end the probe. */
  async function envelopeStep(step: ProbeStep, line: string): Promise<Reply> {
    if (!socket) throw new StepFailure(step, 'not connected');
    const started = Date.now();
    socket.write(`${line}\r\n`);
    let r: Reply;
    try {
      r = await reader.read(opts.timeoutMs);
    } catch (err) {
      const message = `${line}: ${(err as Error).message}`;
      result.steps.push({ step, ok: false, ms: Date.now() - started, detail: message });
      throw new StepFailure(step, message);
    }
    const ok = r.code >= 200 && r.code < 300;
    result.steps.push({ step, ok, ms: Date.now() - started, detail: line, reply: r.text });
    if (!ok && !result.failedStep) {
      result.failedStep = step;
      result.reply = r.text;
      result.error = `${line.split(':')[0]} refused with ${r.code}`;
    }
    return r;
  }

  async function authExchange(line: string, shown: string): Promise<Reply> {
    if (!socket) throw new StepFailure('auth', 'not connected');
    socket.write(`${line}\r\n`);
    let r = await reader.read(opts.timeoutMs);
    // XOAUTH2 failure: the server sends 334 with a JSON error, expects an empty line, then 535.
    if (r.code === 334) {
      const challenge = r.text;
      socket.write('\r\n');
      r = await reader.read(opts.timeoutMs);
      if (r.code !== 235) throw new StepFailure('auth', `${shown} refused with ${r.code}`, `${challenge}\n${r.text}`);
    }
    if (r.code !== 235) throw new StepFailure('auth', `${shown} refused with ${r.code}`, r.text);
    return r;
  }
}

function capabilities(ehlo: Reply): string[] {
  return ehlo.text
    .split('\n')
    .slice(1)
    .map((l) => l.slice(4).trim())
    .filter(Boolean);
}

/** RFC 1870: `SIZE <bytes>`; a missing or zero number means the server announces no fixed limit. */
function sizeOf(caps: string[]): number | undefined {
  const line = caps.find((c) => /^SIZE(?:\s|$)/i.test(c));
  const n = line ? Number(line.slice(4).trim()) : NaN;
  return Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

function authMechanisms(caps: string[]): string[] {
  const line = caps.find((c) => /^AUTH[ =]/i.test(c));
  return line ? line.slice(5).trim().toUpperCase().split(/\s+/) : [];
}
