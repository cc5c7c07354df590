import { ValidationError } from '../errors';

/**
 * Keyset pagination over (createdAt, _id), newest first: the cursor is the last item's position,
 * so pages stay stable while new items arrive. Opaque to clients (base64url).
 */
export interface Position {
  createdAt: Date;
  id: string;
}

export function decodeCursor(cursor: string | undefined): Position | undefined {
  if (!cursor) return undefined;
  const [ts, id] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const createdAt = new Date(ts ?? '');
  if (!id || Number.isNaN(createdAt.getTime()))
    throw new ValidationError('invalid cursor', [{ field: 'cursor', message: 'not a cursor returned by this API' }]);
  return { createdAt, id };
}

/** The cursor of the next page, or null when this page was not full. */
export function nextCursor(docs: ReadonlyArray<{ createdAt: Date; _id: string }>, limit: number): string | null {
  const last = docs.at(-1);
  return docs.length === limit && last ? Buffer.from(`${last.createdAt.toISOString()}|${last._id}`).toString('base64url') : null;
}
