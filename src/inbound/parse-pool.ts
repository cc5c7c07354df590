import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DependencyUnavailableError, ValidationError, type FieldProblem } from '../errors';

/**
 * A small pool of worker threads for the CPU-heavy work on received mail (mailparser, mailsplit, the classifier), so
 * that a hostile or merely huge message never stalls the event loop of the API or of a Temporal worker. What the
 * jobs are is src/inbound/mime.ts's business; this module only runs them (docs/inbound.md "Parsing off the event
 * loop"):
 * - at most `threads` jobs run at once, each on its own thread; `queueMax` more may wait, one more is refused with
 *   DependencyUnavailableError (503 + Retry-After: the provider retries);
 * - a job still running after `timeoutMs` has its thread terminated and fails with a ValidationError (400): the
 *   message cannot be read within the limit. A thread that dies (out of memory, a crash) fails its job the same way;
 * - idle threads do not keep the process alive (a CLI run ends when its job is done).
 */
export interface ParsePoolOptions {
  /** Worker threads (INBOUND_PARSE_THREADS). */
  threads: number;
  /** Jobs that may wait for a thread (INBOUND_PARSE_QUEUE). */
  queueMax: number;
  /** How long one job may run (INBOUND_PARSE_TIMEOUT_MS). */
  timeoutMs: number;
}

/** What a thread answers for one job; an error travels as its name, message and field problems. */
export type ThreadReply =
  { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { name: string; message: string; fields?: FieldProblem[] } };

export interface ThreadRequest {
  id: number;
  job: unknown;
}

/** The thread script, next to this file both in dist/ and in .build-test/src/ (compiled JavaScript). */
const WORKER_SCRIPT = path.join(__dirname, 'parse-worker.js');

/**
 * A thread's own heap. Past it the thread (not the process) dies with ERR_WORKER_OUT_OF_MEMORY and its job fails;
 * decoded attachments live outside the heap, so this bounds what a message's text and structure may cost.
 */
const THREAD_HEAP_MB = 1024;

interface Pending {
  id: number;
  job: unknown;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  current: Pending | null;
  timer: NodeJS.Timeout | null;
}

const badMessage = (message: string) => new ValidationError(`invalid (body): ${message}`, [{ field: '(body)', message }]);

export class ParsePool {
  private readonly slots: Slot[] = [];
  private readonly waiting: Pending[] = [];
  private nextId = 1;

  constructor(
    private readonly opts: ParsePoolOptions,
    private readonly script: string = WORKER_SCRIPT,
  ) {}

  /** Runs one job on a thread; the value is what the thread answered (structured-cloned). */
  run(job: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const pending: Pending = { id: this.nextId++, job, resolve, reject };
      const slot = this.freeSlot();
      if (slot) this.dispatch(slot, pending);
      else if (this.waiting.length < this.opts.queueMax) this.waiting.push(pending);
      else
        reject(
          new DependencyUnavailableError(
            'parser',
            `all ${this.opts.threads} mail parser threads are busy and ${this.waiting.length} messages wait; retry`,
          ),
        );
    });
  }

  /** Terminates every thread; waiting and running jobs fail. */
  async close(): Promise<void> {
    const closed = new Error('the mail parser pool was closed');
    for (const p of this.waiting.splice(0)) p.reject(closed);
    const slots = this.slots.splice(0);
    for (const s of slots) this.finish(s)?.reject(closed);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  private freeSlot(): Slot | null {
    const idle = this.slots.find((s) => s.current === null);
    if (idle) return idle;
    return this.slots.length < this.opts.threads ? this.spawn() : null;
  }

  private spawn(): Slot {
    const worker = new Worker(this.script, { resourceLimits: { maxOldGenerationSizeMb: THREAD_HEAP_MB } });
    const slot: Slot = { worker, current: null, timer: null };
    worker.on('message', (reply: ThreadReply) => this.answered(slot, reply));
    worker.on('error', (err: Error & { code?: string }) => {
      const why =
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? badMessage('the message needs more memory to parse than a parser thread has')
          : new Error(`a mail parser thread failed: ${err.message}`);
      this.lost(slot, why);
    });
    worker.on('exit', (code) => this.lost(slot, new Error(`a mail parser thread exited (code ${code})`)));
    worker.unref();
    this.slots.push(slot);
    return slot;
  }

  private dispatch(slot: Slot, pending: Pending): void {
    slot.current = pending;
    slot.worker.ref();
    slot.timer = setTimeout(() => {
      this.lost(slot, badMessage(`the message could not be parsed within ${this.opts.timeoutMs} ms`));
      void slot.worker.terminate();
    }, this.opts.timeoutMs);
    try {
      slot.worker.postMessage({ id: pending.id, job: pending.job } satisfies ThreadRequest);
    } catch (err) {
      this.finish(slot);
      pending.reject(err as Error);
      this.drain();
    }
  }

  private answered(slot: Slot, reply: ThreadReply): void {
    if (slot.current?.id !== reply.id) return;
    const pending = this.finish(slot)!;
    if (reply.ok) pending.resolve(reply.value);
    else pending.reject(revive(reply.error));
    this.drain();
  }

  /** The thread is gone or is being terminated: its job fails, later jobs get a new thread. */
  private lost(slot: Slot, why: Error): void {
    const at = this.slots.indexOf(slot);
    if (at < 0) return;
    this.slots.splice(at, 1);
    this.finish(slot)?.reject(why);
    this.drain();
  }

  /** Frees the slot; returns the job it was running. */
  private finish(slot: Slot): Pending | null {
    const pending = slot.current;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.current = null;
    slot.worker.unref();
    return pending;
  }

  private drain(): void {
    while (this.waiting.length > 0) {
      const slot = this.freeSlot();
      if (!slot) return;
      this.dispatch(slot, this.waiting.shift()!);
    }
  }
}

/** The thread's error as the caller's: field problems stay a ValidationError (400), a pool limit stays a 503. */
function revive(e: { name: string; message: string; fields?: FieldProblem[] }): Error {
  if (e.name === 'ValidationError') return new ValidationError(e.message, e.fields ?? []);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

/** An error as a thread sends it back (see revive). */
export function threadError(err: unknown): Extract<ThreadReply, { ok: false }>['error'] {
  if (err instanceof ValidationError) return { name: 'ValidationError', message: err.message, fields: err.fields };
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message };
}

let shared: ParsePool | null = null;
let sharedOptions: ParsePoolOptions = { threads: 2, queueMax: 100, timeoutMs: 30_000 };

/** Sets the process-wide pool's size and limits (from config.inbound.parse); call before the first job. */
export function configureParsePool(opts: ParsePoolOptions): void {
  if (opts.threads === sharedOptions.threads && opts.queueMax === sharedOptions.queueMax && opts.timeoutMs === sharedOptions.timeoutMs)
    return;
  sharedOptions = opts;
  if (shared) {
    const old = shared;
    shared = null;
    void old.close();
  }
}

/** The process-wide pool, started on first use (INBOUND_PARSE_* defaults when nothing configured it). */
export function parsePool(): ParsePool {
  shared ??= new ParsePool(sharedOptions);
  return shared;
}
