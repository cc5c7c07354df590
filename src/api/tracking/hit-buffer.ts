import { randomBytes } from 'node:crypto';
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Hit } from '../../domain/tracking/classify';

/**
 * Tracking hits leave the response path here: the endpoint pushes a hit (O(1)) and answers; this
 * buffer writes hits in batches every `flushMs` or `flushHits` hits, one batch at a time.
 *
 * A failed batch goes back to the front of the queue and is retried with exponential backoff
 * (up to 30 s), so a store outage loses nothing. Memory is bounded: past `maxBuffered` queued hits,
 * the oldest half is spilled to an NDJSON file in `spoolDir`; spilled files are replayed once the
 * queue is empty again and deleted after they are written. On shutdown, whatever could not be
 * written is spilled too. Only with no spool directory (or a failing disk) are hits dropped, and
 * then counted (`dropped`) and logged. Replays are safe to repeat: the writer stores hits by id.
 */
export interface PendingHit extends Hit {
  tenantId: string;
  messageId: string;
}

export interface HitBufferOptions {
  flushMs: number;
  flushHits: number;
  maxBuffered: number;
  spoolDir: string | null;
  write: (batch: PendingHit[]) => Promise<void>;
  logger: Logger;
  maxRetryDelayMs?: number;
  /** A write that has not settled by then counts as failed and is retried (writes are idempotent). */
  writeTimeoutMs?: number;
}

const SPOOL_FILE = /^hits-\d+-[\w-]+\.ndjson$/;
const CLAIMED = /\.claimed-[\w-]+$/;
/** A claimed spool file untouched this long belongs to a process that died while replaying it. */
const ABANDONED_CLAIM_MS = 10 * 60_000;

export class HitBuffer {
  private queue: PendingHit[] = [];
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private failures = 0;
  private retryAt = 0;
  private readonly idPrefix = randomBytes(6).toString('base64url');
  private seq = 0;
  private spoolSeq = 0;
  private pendingSpills = new Set<Promise<void>>();
  readonly stats = { recorded: 0, written: 0, spilled: 0, replayed: 0, dropped: 0, failedFlushes: 0 };

  constructor(private readonly opts: HitBufferOptions) {}

  /** A process-unique, store-unique hit id without a syscall per hit. */
  nextId(): string {
    return `${this.idPrefix}${(this.seq++).toString(36)}`;
  }

  get size(): number {
    return this.queue.length;
  }

  start(): this {
    this.timer ??= setInterval(() => void this.flush(), this.opts.flushMs);
    this.timer.unref();
    return this;
  }

  record(hit: PendingHit): void {
    this.stats.recorded++;
    this.queue.push(hit);
    if (this.queue.length > this.opts.maxBuffered) this.spill(this.queue.splice(0, Math.ceil(this.opts.maxBuffered / 2)));
    if (this.queue.length >= this.opts.flushHits && this.running === null && Date.now() >= this.retryAt) void this.flush();
  }

  /** Writes everything queued (and then spooled files); one run at a time; never rejects. */
  flush(): Promise<void> {
    if (this.running) return this.running;
    if (Date.now() < this.retryAt) return Promise.resolve();
    this.running = this.drain().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.opts.flushHits);
      if (!(await this.writeBatch(batch))) {
        this.queue.unshift(...batch);
        return;
      }
    }
    await this.replayOneSpoolFile();
  }

  private async writeBatch(batch: PendingHit[]): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    try {
      // A store that stops answering must not stall tracking for good: give up on the call and retry.
      await Promise.race([
        this.opts.write(batch),
        new Promise((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`write did not finish within ${this.opts.writeTimeoutMs ?? 60_000} ms`)),
            this.opts.writeTimeoutMs ?? 60_000,
          );
        }),
      ]);
      this.stats.written += batch.length;
      this.failures = 0;
      this.retryAt = 0;
      return true;
    } catch (err) {
      this.failures++;
      this.stats.failedFlushes++;
      const delay = Math.min(this.opts.flushMs * 2 ** this.failures, this.opts.maxRetryDelayMs ?? 30_000);
      this.retryAt = Date.now() + delay;
      this.opts.logger.warn(
        { err: (err as Error).message, queued: this.queue.length + batch.length, retryInMs: delay },
        'tracking hits not written; will retry',
      );
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  private spill(hits: PendingHit[]): void {
    const dir = this.opts.spoolDir;
    if (!dir) {
      this.drop(hits, 'no TRACKING_SPOOL_DIR');
      return;
    }
    const file = path.join(dir, `hits-${Date.now()}-${this.idPrefix}${this.spoolSeq++}.ndjson`);
    const p = (async () => {
      try {
        await mkdir(dir, { recursive: true });
        // Written under a temporary name and renamed: a replaying process never reads half a file.
        await writeFile(`${file}.tmp`, hits.map((h) => JSON.stringify(h)).join('\n') + '\n');
        await rename(`${file}.tmp`, file);
        this.stats.spilled += hits.length;
        this.opts.logger.warn({ file, hits: hits.length }, 'tracking buffer full: hits spilled to disk');
      } catch (err) {
        this.drop(hits, (err as Error).message);
      }
    })();
    this.pendingSpills.add(p);
    void p.finally(() => this.pendingSpills.delete(p));
  }

  private drop(hits: PendingHit[], why: string): void {
    this.stats.dropped += hits.length;
    this.opts.logger.error({ hits: hits.length, why }, 'tracking hits dropped');
  }

  /**
   * A claimed spool file that could not be put back or deleted stays claimed: once the claim is
   * ABANDONED_CLAIM_MS old a replay takes it again, so no hit is lost (written ones again, which
   * their ids make harmless). Worth a warning, not a failed replay.
   */
  private claimLeft(file: string, action: 'put back' | 'delete', err: unknown): void {
    this.opts.logger.warn(
      { file, err: (err as Error).message },
      `tracking spool: could not ${action} a claimed file; replayed again later`,
    );
  }

  /** Claims (rename), writes and deletes the oldest spool file; puts it back on failure. */
  private async replayOneSpoolFile(): Promise<void> {
    const dir = this.opts.spoolDir;
    if (!dir || this.queue.length > 0) return;
    let names: string[];
    try {
      names = (await readdir(dir)).sort();
    } catch {
      return;
    }
    for (const name of names) {
      let original = name;
      if (CLAIMED.test(name)) {
        // Gone meanwhile: its claimer finished it (or put it back under its own name).
        const st = await stat(path.join(dir, name)).catch(() => null);
        if (!st || Date.now() - st.mtimeMs < ABANDONED_CLAIM_MS) continue;
        original = name.replace(CLAIMED, '');
      } else if (!SPOOL_FILE.test(name)) continue;
      const claimed = path.join(dir, `${original}.claimed-${this.idPrefix}`);
      try {
        await rename(path.join(dir, name), claimed);
      } catch {
        continue; // another process took it
      }
      let text: string;
      try {
        text = await readFile(claimed, 'utf8');
      } catch {
        await rename(claimed, path.join(dir, original)).catch((err: unknown) => this.claimLeft(original, 'put back', err));
        return;
      }
      // A line cut short (a process killed mid-write) is dropped, not allowed to stop the replay.
      const hits: PendingHit[] = [];
      let unreadable = 0;
      for (const line of text.split('\n')) {
        if (!line) continue;
        try {
          hits.push(JSON.parse(line) as PendingHit);
        } catch {
          unreadable++;
        }
      }
      if (unreadable > 0)
        this.opts.logger.warn({ file: original, unreadable }, 'tracking spool file had unreadable lines; they are dropped');
      for (let i = 0; i < hits.length; i += this.opts.flushHits) {
        if (!(await this.writeBatch(hits.slice(i, i + this.opts.flushHits)))) {
          await rename(claimed, path.join(dir, original)).catch((err: unknown) => this.claimLeft(original, 'put back', err));
          return;
        }
      }
      this.stats.replayed += hits.length;
      await unlink(claimed).catch((err: unknown) => this.claimLeft(original, 'delete', err));
      return;
    }
  }

  /** Stops the timer, writes what it can, and spills the rest so a restart loses nothing. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.retryAt = 0;
    await this.running;
    if (this.queue.length > 0) {
      this.retryAt = 0;
      await this.flush();
    }
    await Promise.all([...this.pendingSpills]);
    if (this.queue.length === 0) return;
    const rest = this.queue.splice(0);
    if (!this.opts.spoolDir) return this.drop(rest, 'store unavailable at shutdown and no TRACKING_SPOOL_DIR');
    try {
      mkdirSync(this.opts.spoolDir, { recursive: true });
      // Written under a temporary name and renamed, as spill() does: a replay never sees half a file.
      const file = path.join(this.opts.spoolDir, `hits-${Date.now()}-${this.idPrefix}${this.spoolSeq++}.ndjson`);
      writeFileSync(`${file}.tmp`, rest.map((h) => JSON.stringify(h)).join('\n') + '\n');
      renameSync(`${file}.tmp`, file);
      this.stats.spilled += rest.length;
    } catch (err) {
      this.drop(rest, (err as Error).message);
    }
  }
}
