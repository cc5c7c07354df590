import type { Collection, Db, Document, Filter, ObjectId } from 'mongodb';

/**
 * Removes everything a tenant left in the store, for the tenantDeletion workflow
 * (src/workflows/tenant-deletion.ts). This is the one list of every collection that holds a
 * tenant's data and of how each names the tenant; a new collection must be added here, and
 * test/integration/attack-tenant-deletion.test.ts (which looks through every collection of the
 * database after a deletion) fails until it is.
 *
 * In batches by `_id`, so a tenant of any size is removed with bounded memory and each batch is a
 * primary-key delete (the only filter FerretDB serves from an index). Idempotent: a run cut short
 * is simply run again, and finds what is left. The tenant document (the tombstone) is not touched.
 */
const BATCH = 500;

export type PurgeProgress = (collection: string, deletedSoFar: number) => void;

/** Collections whose documents carry a `tenantId` field and need nothing removed beside them. */
const BY_TENANT_FIELD = [
  'message_bodies',
  'message_tracking',
  'suppressions',
  'events',
  'events_undispatched',
  'webhook_queue',
  'webhook_deliveries',
  'cases',
  'case_events',
  'message_ids',
  'case_subjects',
  'reply_tokens',
  'inbound_settings',
  'inbound_replay_tokens',
  'inbound_keys',
  'api_keys',
  'oauth_states_used',
  'permit_requests',
  'permit_grants',
] as const;

/** Collections keyed by the tenant id itself. */
const BY_TENANT_ID = ['oauth_tokens', 'bounce_mailboxes', 'sending_pauses'] as const;

/** GridFS buckets whose files carry `metadata.tenantId` (message bodies over 4 MB; inbound attachments and raw mail). */
const BUCKETS = ['message_bodies_large', 'inbound_files'] as const;

/**
 * `<tenant>:…` keys (idempotency keys): from `<tenant>:` up to, not including, `<tenant>;` (`;`
 * follows `:`). A tenant id never contains `:`, so no other tenant's key falls in between.
 */
const keyedBy = (tenantId: string) => ({ $gte: `${tenantId}:`, $lt: `${tenantId};` });

/** Collections here are keyed by strings or ObjectIds, whichever their repository chose. */
type Id = string | ObjectId;
type AnyDoc = Document & { _id: Id };

export async function purgeTenantData(
  db: Db,
  tenantId: string,
  progress: PurgeProgress = () => undefined,
): Promise<Record<string, number>> {
  const col = (name: string): Collection<AnyDoc> => db.collection<AnyDoc>(name);
  const counts: Record<string, number> = {};
  const count = (name: string, n: number) => {
    if (n === 0) return;
    counts[name] = (counts[name] ?? 0) + n;
    progress(name, counts[name]);
  };
  const deleteIds = async (name: string, ids: Id[]) => {
    if (ids.length > 0) count(name, (await col(name).deleteMany({ _id: { $in: ids } })).deletedCount);
  };
  /** Batches matching `filter`: what hangs off each batch goes first (`before`), then the batch. */
  const batched = async (
    name: string,
    filter: Filter<AnyDoc>,
    projection: Document = { _id: 1 },
    before?: (docs: AnyDoc[]) => Promise<void>,
  ) => {
    for (;;) {
      const docs = await col(name).find(filter, { projection, limit: BATCH }).toArray();
      if (docs.length === 0) return;
      if (before) await before(docs);
      await deleteIds(
        name,
        docs.map((d) => d._id),
      );
    }
  };
  const deleteFile = async (bucket: string, id: Id) => {
    // What GridFSBucket.delete does, without its error for a file already gone.
    count(`${bucket}.files`, (await col(`${bucket}.files`).deleteOne({ _id: id })).deletedCount);
    count(`${bucket}.chunks`, (await col(`${bucket}.chunks`).deleteMany({ files_id: id })).deletedCount);
  };
  /** Tracking hits are keyed `<message id>#<n>` and name no tenant: they go with their message. */
  const deleteHitsOf = async (messageIds: string[]) => {
    for (const id of messageIds) {
      count(
        'message_tracking_hits',
        (await col('message_tracking_hits').deleteMany({ _id: { $gte: `${id}#`, $lt: `${id}$` } })).deletedCount,
      );
    }
  };

  // Outbound mail: each message's send lock, body, tracking hits and tracking summary go with it.
  await batched('messages', { tenantId }, { _id: 1, 'body.gridfsId': 1 }, async (docs) => {
    const ids = docs.map((d) => String(d._id));
    await deleteIds('message_locks', ids);
    await deleteIds('message_bodies', ids);
    await deleteHitsOf(ids);
    await deleteIds('message_tracking', ids);
    for (const d of docs) {
      const gridfsId = (d.body as { gridfsId?: ObjectId } | undefined)?.gridfsId;
      if (gridfsId !== undefined) await deleteFile('message_bodies_large', gridfsId);
    }
  });
  // Tracking summaries whose message went first (a hit written while it was being deleted).
  await batched('message_tracking', { tenantId }, { _id: 1 }, (docs) => deleteHitsOf(docs.map((d) => String(d._id))));
  await batched('idempotency_keys', { _id: keyedBy(tenantId) });
  // Inbound mail: its attachments and raw message live in GridFS.
  await batched('inbound_messages', { tenantId }, { _id: 1, 'parts.fileId': 1, rawFileId: 1 }, async (docs) => {
    for (const d of docs) {
      const files = [...((d.parts as Array<{ fileId?: ObjectId }> | undefined) ?? []).map((p) => p.fileId), d.rawFileId as ObjectId | null];
      for (const id of files) if (id !== undefined && id !== null) await deleteFile('inbound_files', id);
    }
  });
  for (const name of BY_TENANT_FIELD) await batched(name, { tenantId });
  for (const name of BY_TENANT_ID) await deleteIds(name, [tenantId]);
  // Files no document points at (an upload whose document was never written) name the tenant too.
  for (const bucket of BUCKETS) {
    await batched(`${bucket}.files`, { 'metadata.tenantId': tenantId }, { _id: 1 }, async (docs) => {
      for (const d of docs) await deleteFile(bucket, d._id);
    });
  }
  return counts;
}
