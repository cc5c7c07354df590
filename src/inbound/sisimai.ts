import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { z } from 'zod';

/**
 * Sisimai 4.25 (Debian's libsisimai-perl) as a second bounce engine (docs/bounces.md "Sisimai", docs/decisions.md
 * "Bounce verdicts: Sisimai plus Cartero's rules"). One Perl process per API or worker process, started on first use
 * and kept alive: JSON lines over its stdin/stdout (src/inbound/sisimai/bridge.pl), one message at a time. It is
 * restarted when it dies or overruns its time limit. Whenever it cannot answer (Perl or Sisimai not installed, a
 * message over the size cap, a timeout, a crash, too many waiting) `verdicts` answers null and the caller keeps
 * Cartero's own verdict: Sisimai improves verdicts, it is never needed for one.
 */

/** Real diagnostics are a line or a few; more is noise or an attack. */
const DIAGNOSTIC_MAX_CHARS = 2000;

/** One recipient as Sisimai::Data reports it (the fields Cartero reads). */
export const sisimaiRecordSchema = z.object({
  recipient: z.string(),
  /** DSN status; Sisimai invents `x.0.9xx` codes when the notice has none. */
  deliverystatus: z.string(),
  reason: z.string(),
  /** 1 soft, 0 hard, -1 neither (delivered, feedback, vacation). */
  softbounce: z.number().int(),
  /** The Sisimai module that read the notice (`Postfix`, `RFC3464`, `Feedback-Loop`, `RFC3834`…). */
  smtpagent: z.string(),
  /** Cut to DIAGNOSTIC_MAX_CHARS: Cartero's reason rules read it on the caller's thread, and hostile mail can make it megabytes. */
  diagnosticcode: z.string().transform((d) => d.slice(0, DIAGNOSTIC_MAX_CHARS)),
  /** Message-ID of the returned message, without angle brackets ('' when none). */
  messageid: z.string(),
  action: z.string(),
  feedbacktype: z.string(),
  replycode: z.string(),
});
export type SisimaiRecord = z.infer<typeof sisimaiRecordSchema>;

const helloSchema = z.object({ ready: z.number(), version: z.string().optional(), error: z.string().optional() });
const answerSchema = z.object({
  id: z.number(),
  ok: z.number(),
  // A notice naming more recipients than this is not one Cartero acts on recipient by recipient.
  records: z.array(sisimaiRecordSchema).max(1000).optional(),
  error: z.string().optional(),
});

export interface SisimaiOptions {
  /** The Perl interpreter. */
  perl: string;
  /** bridge.pl; found next to the compiled module or in the source tree when not given. */
  script?: string;
  /** One message's time limit; past it the process is killed and started again. */
  timeoutMs: number;
  /** Larger messages are not sent (no NDR is that big; the caller keeps its own verdict). */
  maxBytes: number;
  /** Messages that may wait for the process; one more answers null at once. */
  queueMax: number;
  /** After Perl or Sisimai was found missing, how long before trying to start it again. */
  retryAbsentMs: number;
}

export const SISIMAI_DEFAULTS: SisimaiOptions = {
  perl: 'perl',
  timeoutMs: 10_000,
  maxBytes: 4 * 1024 * 1024,
  queueMax: 100,
  retryAbsentMs: 60_000,
};

/**
 * dist/inbound/sisimai/bridge.pl (the Dockerfile copies it there), else src/inbound/sisimai/bridge.pl of the
 * checkout this module was compiled from (dist/ and .build-test/ both sit in it).
 */
function findScript(): string | null {
  const beside = path.join(__dirname, 'sisimai', 'bridge.pl');
  if (existsSync(beside)) return beside;
  for (let dir = __dirname, i = 0; i < 5; i++, dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'src', 'inbound', 'sisimai', 'bridge.pl');
    if (existsSync(candidate)) return candidate;
  }
  return null;
}

interface Job {
  raw: Buffer;
  resolve: (records: SisimaiRecord[] | null) => void;
}

interface Running {
  child: ChildProcessWithoutNullStreams;
  /** Resolves once the hello line says whether Sisimai loaded. */
  ready: Promise<boolean>;
  version: string | null;
  /** The job being answered and its answer handler. */
  current: { id: number; job: Job; timer: NodeJS.Timeout } | null;
}

export class SisimaiBridge {
  private running: Running | null = null;
  private readonly queue: Job[] = [];
  private absentUntil = 0;
  private absentWhy: string | null = null;
  private nextId = 1;
  private closed = false;
  /** Processes started so far (a restart after a crash or a timeout counts); read by tests. */
  starts = 0;

  constructor(private readonly opts: SisimaiOptions = SISIMAI_DEFAULTS) {}

  /**
   * Sisimai's records for one raw message: [] when Sisimai finds no bounce, complaint or auto-reply in it, null when
   * Sisimai could not answer (see the module comment).
   */
  verdicts(raw: Buffer): Promise<SisimaiRecord[] | null> {
    if (this.closed || raw.length === 0 || raw.length > this.opts.maxBytes) return Promise.resolve(null);
    if (Date.now() < this.absentUntil) return Promise.resolve(null);
    if (this.queue.length >= this.opts.queueMax) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.queue.push({ raw, resolve });
      void this.pump();
    });
  }

  /** Sisimai's version, or null when it is not installed (starts the process if needed). */
  async version(): Promise<string | null> {
    if (this.closed) return null;
    const r = this.ensure();
    if (!r) return null;
    this.holdWhileBusy(r, true);
    const ok = await r.ready;
    this.holdWhileBusy(r, r.current !== null);
    return ok ? r.version : null;
  }

  /** The process and its pipes keep the event loop alive only while a caller waits for them. */
  private holdWhileBusy(running: Running, busy: boolean): void {
    const handles = [running.child, running.child.stdout as Socket, running.child.stderr as Socket];
    for (const h of handles)
      if (busy) h.ref();
      else h.unref();
  }

  /** Why Sisimai is unavailable, when it was found missing. */
  get unavailable(): string | null {
    return Date.now() < this.absentUntil ? this.absentWhy : null;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.resolve(null);
    const r = this.running;
    this.running = null;
    if (!r) return;
    if (r.current) {
      clearTimeout(r.current.timer);
      r.current.job.resolve(null);
      r.current = null;
    }
    const exited = new Promise<void>((resolve) => {
      if (r.child.exitCode !== null || r.child.signalCode !== null) resolve();
      else r.child.once('exit', () => resolve());
    });
    // End of input ends the bridge's read loop; the kill covers a bridge stuck in Sisimai.
    r.child.stdin.end();
    const killer = setTimeout(() => r.child.kill('SIGKILL'), 2_000);
    await exited;
    clearTimeout(killer);
  }

  private markAbsent(why: string): void {
    this.absentWhy = why;
    this.absentUntil = Date.now() + this.opts.retryAbsentMs;
    for (const job of this.queue.splice(0)) job.resolve(null);
  }

  private ensure(): Running | null {
    if (this.running) return this.running;
    if (Date.now() < this.absentUntil) return null;
    const script = this.opts.script ?? findScript();
    if (!script) {
      this.markAbsent('bridge.pl not found');
      return null;
    }
    const child = spawn(this.opts.perl, [script], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.starts++;
    // Sisimai's regular expressions are Perl's (backtracking) and see attacker mail: on a small machine the
    // bridge must lose to the API's event loop for CPU, not win (its time limit still bounds it).
    if (child.pid !== undefined) {
      try {
        os.setPriority(child.pid, 10);
      } catch {
        // Not permitted here: it runs at the parent's priority.
      }
    }
    let hello: (ok: boolean) => void = () => undefined;
    const running: Running = { child, version: null, current: null, ready: new Promise<boolean>((r) => (hello = r)) };
    this.running = running;
    // An idle bridge must not keep a CLI run or a stopping server alive (holdWhileBusy).
    this.holdWhileBusy(running, false);
    child.stdin.on('error', () => undefined); // EPIPE after the bridge died: the exit handler deals with it
    child.stderr.resume(); // drained so a chatty Perl never blocks on a full pipe
    let greeted = false;
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (!greeted) {
        greeted = true;
        const h = helloSchema.safeParse(safeJson(line));
        if (h.success && h.data.ready === 1) {
          running.version = h.data.version ?? null;
          hello(true);
        } else {
          hello(false);
          this.markAbsent(h.success ? (h.data.error ?? 'Sisimai did not load') : 'bridge did not greet');
          this.stop(running);
        }
        return;
      }
      this.answer(running, line);
    });
    child.on('error', (err) => {
      // spawn failed (no perl on PATH): nothing to restart until retryAbsentMs has passed.
      hello(false);
      this.markAbsent(`cannot start ${this.opts.perl}: ${err.message}`);
      this.lost(running);
    });
    child.on('exit', () => {
      hello(false);
      this.lost(running);
    });
    return running;
  }

  private answer(running: Running, line: string): void {
    const cur = running.current;
    const a = answerSchema.safeParse(safeJson(line));
    if (!cur || !a.success || a.data.id !== cur.id) return;
    clearTimeout(cur.timer);
    running.current = null;
    this.holdWhileBusy(running, false);
    cur.job.resolve(a.data.ok === 1 ? (a.data.records ?? []) : null);
    void this.pump();
  }

  /** The process is gone: its job (if any) gets no answer from Sisimai; the next job starts a new process. */
  private lost(running: Running): void {
    if (this.running === running) this.running = null;
    const cur = running.current;
    running.current = null;
    if (cur) {
      clearTimeout(cur.timer);
      cur.job.resolve(null);
    }
    void this.pump();
  }

  private stop(running: Running): void {
    running.child.kill('SIGKILL');
    this.lost(running);
  }

  private async pump(): Promise<void> {
    if (this.closed || this.queue.length === 0) return;
    const running = this.ensure();
    if (!running) return;
    if (running.current) return;
    const job = this.queue.shift()!;
    const id = this.nextId++;
    this.holdWhileBusy(running, true);
    running.current = {
      id,
      job,
      timer: setTimeout(() => {
        if (running.current?.id === id) this.stop(running);
      }, this.opts.timeoutMs),
    };
    if (!(await running.ready)) {
      // Sisimai is missing: markAbsent already answered the queue; this job too.
      if (running.current?.id === id) this.lost(running);
      job.resolve(null);
      return;
    }
    if (running.current?.id !== id) return; // timed out or died while starting
    running.child.stdin.write(`${JSON.stringify({ id, b64: job.raw.toString('base64') })}\n`);
  }
}

function safeJson(line: string): unknown {
  try {
    return JSON.parse(line) as unknown;
  } catch {
    return null;
  }
}

let shared: SisimaiBridge | null = null;

/** The process-wide bridge (one Perl process), started on first use. */
export function sisimai(): SisimaiBridge {
  shared ??= new SisimaiBridge();
  return shared;
}
