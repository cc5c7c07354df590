import type { Logger } from 'pino';
import type { Config } from '../../config/env';
import { parseCidrs, type Cidr } from '../../domain/tracking/classify';
import { TrackingTokens } from '../../domain/tracking/token';
import type { Keyring } from '../../security/crypto';
import type { StoreDeps } from '../../store/repositories';
import type { MessageDoc } from '../../store/messages';
import { TrackingRepository } from '../../store/tracking';
import { HitBuffer } from './hit-buffer';
import { HitGuard } from './hit-guard';
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
  /** Repeat window and per-IP limit on the response path (hit-guard.ts). */
  guard: HitGuard;
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
  repos: Pick<StoreDeps, 'store' | 'messages' | 'events'>,
  keyring: Keyring,
  extra: Pick<HitWriterDeps, 'onHumanHit'> = {},
): Tracking {
  // Only tracking reads and writes hits: its repository is built here, once per process.
  const repo = new TrackingRepository(repos.store.db);
  const scannerNetworks = parseCidrs(config.tracking.scannerCidrs);
  const write = createHitWriter({
    messages: repos.messages,
    tracking: repo,
    events: repos.events,
    scannerNetworks,
    maxEvents: config.tracking.maxEvents,
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
    guard: new HitGuard({
      ratePerSec: config.tracking.ipRate,
      burst: config.tracking.ipBurst,
      repeatWindowMs: config.tracking.repeatWindowMs,
    }),
    repo,
    scannerNetworks,
    async summaryOf(doc) {
      if (!doc.tracking) return null;
      return trackingSummaryOf(doc, await repo.load(doc._id), scannerNetworks);
    },
    close: () => buffer.close(),
  };
}
