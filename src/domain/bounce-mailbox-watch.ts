/**
 * The IMAP bounce-mailbox watch's timings and outcomes: pure and dependency-free, because the
 * workflow `imap-<tenant>` imports them (docs/bounces.md, "IMAP watch").
 */

/** The activity's answer to the workflow. `restart` = settings changed or time to rotate. */
export type WatchOutcome = { kind: 'stopped' } | { kind: 'rotate' } | { kind: 'failed'; error: string };

/** Reconnect delay inside the activity after `attempt` consecutive connection failures (1 s … 60 s). */
export function reconnectDelayMs(attempt: number): number {
  return Math.min(1000 * 2 ** Math.max(0, attempt - 1), 60_000);
}

/** Workflow wait after `failures` consecutive `failed` outcomes (1 min … 1 h), unless settings change. */
export function failedRetryDelayMs(failures: number): number {
  return Math.min(60_000 * 2 ** Math.max(0, failures - 1), 60 * 60_000);
}

/** An activity run ends after this long so the workflow's history stays short (continue-as-new). */
export const WATCH_ROTATE_MS = 30 * 60_000;
/** How often a connected watch re-reads its settings and searches for unseen mail IDLE missed. */
export const WATCH_CHECK_MS = 30_000;
/** Mail larger than this is moved to the processed folder without being parsed (no NDR is this big). */
export const MAX_NOTICE_BYTES = 10 * 1024 * 1024;
