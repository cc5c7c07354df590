import {
  MongoBulkWriteError,
  MongoServerError,
  type Collection,
  type Document,
  type Filter,
  type OptionalUnlessRequiredId,
  type UpdateFilter,
} from 'mongodb';
import { isDuplicateKey } from './upsert';

/**
 * Group commit for the per-message writes of the send path (docs/decisions.md, "Coalesced writes").
 * A write of one kind to one collection goes out at once when none of that kind is in flight; the
 * ones issued meanwhile wait for it and then go out together, as one command. An idle store sees
 * one command per write and no added wait; a busy one sees fewer, larger commands, which is where
 * the embedded store (one SQLite transaction per command) spends its time.
 *
 * Each write keeps its own outcome: a duplicate `_id` is reported to that insert's caller only, any
 * other refusal of one write fails that write only, and a failed command fails every write it
 * carried (each caller then handles it as it would its own failed write). Only writes whose callers
 * need no per-write match count can be coalesced: a compare-and-set cannot (the server reports
 * matches per command, not per statement).
 */

/** What an insert found: its `_id` was free, or taken (the document was not written). */
export type InsertOutcome = 'inserted' | 'duplicate';

/** Queues items while a batch is in flight and sends them as the next batch (at most `maxBatch`). */
class Coalescer<Op, R> {
  private queue: Array<{ op: Op; resolve: (r: R) => void; reject: (e: unknown) => void }> = [];
  private busy = false;

  constructor(
    private readonly send: (ops: Op[]) => Promise<Array<R | Error>>,
    private readonly maxBatch: number,
  ) {}

  submit(op: Op): Promise<R> {
    return this.submitAll([op]).then((rs) => rs[0]!);
  }

  /** Several writes of one caller: they travel in the same command (up to `maxBatch`). */
  submitAll(ops: Op[]): Promise<R[]> {
    const results = ops.map(
      (op) =>
        new Promise<R>((resolve, reject) => {
          this.queue.push({ op, resolve, reject });
        }),
    );
    this.pump();
    return Promise.all(results);
  }

  private pump(): void {
    if (this.busy || this.queue.length === 0) return;
    const batch = this.queue.splice(0, this.maxBatch);
    this.busy = true;
    this.send(batch.map((b) => b.op))
      .then(
        (results) =>
          batch.forEach((b, i) => {
            const r = results[i] as R | Error;
            if (r instanceof Error) b.reject(r);
            else b.resolve(r);
          }),
        (err: unknown) => batch.forEach((b) => b.reject(err)),
      )
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }
}

/** One write of a batch the server refused, as the error a lone write would have thrown. */
function refusal(w: { code?: number; errmsg?: string }): MongoServerError {
  return new MongoServerError({ code: w.code, errmsg: w.errmsg ?? 'write refused', message: w.errmsg ?? 'write refused' });
}

/** The refused writes of a bulk error by their index in the batch; null when the whole command failed. */
function refusedByIndex(err: unknown): Map<number, MongoServerError> | null {
  if (!(err instanceof MongoBulkWriteError)) return null;
  const writeErrors = [err.writeErrors].flat();
  // No write refused on its own (a write-concern failure): the command failed as a whole.
  if (writeErrors.length === 0) return null;
  return new Map(writeErrors.map((w) => [w.index, refusal({ code: w.code, errmsg: w.errmsg })]));
}

/** Runs one multi-write command: for each write, `undefined` (written) or the server's refusal of it. */
async function perWrite(n: number, run: () => Promise<unknown>): Promise<Array<MongoServerError | undefined>> {
  try {
    await run();
    return Array.from({ length: n }, () => undefined);
  } catch (err) {
    const refused = refusedByIndex(err);
    if (!refused) throw err;
    return Array.from({ length: n }, (_, i) => refused.get(i));
  }
}

/** Coalesced inserts into one collection (`enabled: false`: one insertOne each, same outcomes). */
export class CoalescedInserts<T extends Document> {
  private readonly coalescer: Coalescer<OptionalUnlessRequiredId<T>, InsertOutcome>;

  constructor(
    private readonly col: Collection<T>,
    private readonly enabled: boolean,
    maxBatch = 100,
  ) {
    this.coalescer = new Coalescer<OptionalUnlessRequiredId<T>, InsertOutcome>((docs) => this.insertMany(docs), maxBatch);
  }

  async insert(doc: OptionalUnlessRequiredId<T>): Promise<InsertOutcome> {
    if (this.enabled) return this.coalescer.submit(doc);
    try {
      await this.col.insertOne(doc);
      return 'inserted';
    } catch (err) {
      if (isDuplicateKey(err)) return 'duplicate';
      throw err;
    }
  }

  /** Several documents of one caller, in one command when the store is idle. */
  async insertAll(docs: Array<OptionalUnlessRequiredId<T>>): Promise<InsertOutcome[]> {
    if (docs.length === 0) return [];
    if (this.enabled) return this.coalescer.submitAll(docs);
    const outcomes = await this.insertMany(docs);
    const failed = outcomes.find((o): o is Error => o instanceof Error);
    if (failed) throw failed;
    return outcomes as InsertOutcome[];
  }

  private async insertMany(docs: Array<OptionalUnlessRequiredId<T>>): Promise<Array<InsertOutcome | Error>> {
    const refusals = await perWrite(docs.length, () => this.col.insertMany(docs, { ordered: false }));
    return refusals.map((r) => (!r ? 'inserted' : isDuplicateKey(r) ? 'duplicate' : r));
  }
}

/** An `_id`-filtered updateOne whose caller needs no match count. */
export interface CoalescibleUpdate<T extends Document> {
  filter: Filter<T>;
  update: UpdateFilter<T>;
  upsert?: boolean;
}

/** Coalesced updates of one collection (`enabled: false`: one updateOne each). */
export class CoalescedUpdates<T extends Document> {
  private readonly coalescer: Coalescer<CoalescibleUpdate<T>, void>;

  constructor(
    private readonly col: Collection<T>,
    private readonly enabled: boolean,
    maxBatch = 100,
  ) {
    this.coalescer = new Coalescer<CoalescibleUpdate<T>, void>((ops) => this.bulk(ops), maxBatch);
  }

  async update(op: CoalescibleUpdate<T>): Promise<void> {
    if (this.enabled) return this.coalescer.submit(op);
    await this.col.updateOne(op.filter, op.update, { upsert: op.upsert ?? false });
  }

  private bulk(ops: Array<CoalescibleUpdate<T>>): Promise<Array<undefined | Error>> {
    return perWrite(ops.length, () =>
      this.col.bulkWrite(
        ops.map((o) => ({ updateOne: { filter: o.filter, update: o.update, upsert: o.upsert ?? false } })),
        { ordered: false },
      ),
    );
  }
}
