import type { Db } from 'mongodb';
import type { Logger } from 'pino';
import type { Config } from '../../config/env';
import { parseCidrs, type Cidr } from '../../domain/tracking/classify';
import { TrackingTokens } from '../../domain/tracking/token';
import type { Keyring } from '../../security/crypto';
import { EventRepository } from '../../store/events';
import type { MessageDoc } from '../../store/messages';
import { TrackingRepository } from '../../store/tracking';
import { MessageRepository } from '../../store/messages';
import { HitBuffer } from './hit-buffer';
import { createHitWriter, trackingSummaryOf, type HitWriterDeps } from './write-hits';

/**
 * Everything the API process needs for opens, clicks and unsubscribes, built once per process.
 * The buffer's timer is started here; whoever owns the process calls `close()` on shutdown so
 * queued hits are written or spilled (src/server.ts).
 */
export interface Tracking {
  tokens: TrackingTokens;
  baseUrl: string;
  buffer: HitBuffer;
  repo: TrackingRepository;
  scannerNetworks: Cidr[];
  summaryOf(doc: MessageDoc): Promise<ReturnType<typeof trackingSummaryOf> | null>;
  close(): Promise<void>;
}

/** Tracking keys are derived from the encryption keyring (same key ids, same rotation). */
export function trackingTokens(keyring: Keyring): TrackingTokens {
  return new TrackingTokens({
    activeKeyId: keyring.activeKeyId,
    key: (kid) => {
      try {
        return keyring.key(kid);
      } catch {
        return undefined;
      }
    },
  });
}

export function createTracking(
  config: Config,
  logger: Logger,
  db: Db,
  keyring: Keyring,
  extra: Partial<Pick<HitWriterDeps, 'onHumanHit' | 'events'>> = {},
): Tracking {
  const repo = new TrackingRepository(db);
  const messages = new MessageRepository(db);
  const scannerNetworks = parseCidrs(config.tracking.scannerCidrs);
  const write = createHitWriter({
    messages,
    tracking: repo,
    events: extra.events ?? new EventRepository(db),
    scannerNetworks,
    logger,
    ...(extra.onHumanHit ? { onHumanHit: extra.onHumanHit } : {}),
  });
  const buffer = new HitBuffer({
    flushMs: config.tracking.flushMs,
    flushHits: config.tracking.flushHits,
    maxBuffered: config.tracking.bufferMax,
    spoolDir: config.tracking.spoolDir,
    write,
    logger,
  }).start();
  return {
    tokens: trackingTokens(keyring),
    baseUrl: config.tracking.baseUrl,
    buffer,
    repo,
    scannerNetworks,
    async summaryOf(doc) {
      if (!doc.tracking) return null;
      return trackingSummaryOf(doc, await repo.load(doc._id), scannerNetworks);
    },
    close: () => buffer.close(),
  };
}
