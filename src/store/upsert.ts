import { MongoServerError } from 'mongodb';

/**
 * Two concurrent upserts of a missing `_id` can both try to insert; the loser gets E11000 (MongoDB
 * retries some of these itself, FerretDB never does). Running the upsert again then finds the
 * document and updates it, which is what the caller meant.
 */
/** A write refused because the `_id` (or a unique key) exists: MongoDB and FerretDB both say E11000. */
export const isDuplicateKey = (err: unknown): boolean => err instanceof MongoServerError && err.code === 11000;

export async function upsertRetrying<T>(op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (isDuplicateKey(err)) return op();
    throw err;
  }
}
