import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SisimaiRecord } from '../../src/inbound/sisimai';

/**
 * Scores bounce verdicts against the corpus test/fixtures/bounces (expected.json), on the five figures of issue 14
 * (docs/bounces.md "Corpus and scores"). Used by bench/bounces.ts (npm run bench:bounces) and by
 * test/unit/bounce-corpus.test.ts.
 */
/** BOUNCE_CORPUS_DIR scores another corpus of the same layout (an outside sample, kept out of the repository). */
export const CORPUS_DIR = process.env.BOUNCE_CORPUS_DIR
  ? path.resolve(process.env.BOUNCE_CORPUS_DIR)
  : path.resolve(__dirname, '..', '..', '..', 'test', 'fixtures', 'bounces');

export interface ExpectedVerdict {
  kind: string;
  bounces: Array<{ recipient: string; status: string | null; hard: boolean }>;
  originalMessageId: string | null;
}

/** What a scored engine answers for one file: the CLI's JSON shape, reduced to what is scored. */
export interface ScoredVerdict {
  kind: string;
  bounces: Array<{ recipient: string; status: string | null; hard: boolean }>;
  originalMessageId: string | null;
}

export interface Figures {
  /** Expected bounced (or complained) recipients the engine named. */
  recipient: number;
  /** Expected recipients whose enhanced status code the engine gave exactly (notices that carry one). */
  status: number;
  /** Failed and delayed recipients whose hard/soft the engine got right (hard = the address is dead). */
  hard: number;
  /** Files whose kind (bounce, delay, complaint, autoreply, human) the engine got right. */
  kind: number;
  /** Files whose original Message-ID the engine found (files that carry one). */
  messageId: number;
}
export const FIGURE_NAMES: Record<keyof Figures, string> = {
  recipient: 'bounced recipient found',
  status: 'status code exact',
  hard: 'hard vs soft',
  kind: 'kind',
  messageId: 'original Message-ID found',
};

export interface Miss {
  file: string;
  figure: keyof Figures;
  expected: unknown;
  got: unknown;
}

export function loadCorpus(): Array<{ file: string; raw: Buffer; expected: ExpectedVerdict }> {
  const read = (name: string) => JSON.parse(readFileSync(path.join(CORPUS_DIR, name), 'utf8')) as Record<string, ExpectedVerdict>;
  // expected.json is bench/bounce-corpus.ts's (rewritten with the templates); expected-extra.json lists notices
  // written by hand for formats met in an outside sample (docs/bounces.md "Outside sample"), which it leaves alone.
  const expected = {
    ...read('expected.json'),
    ...(existsSync(path.join(CORPUS_DIR, 'expected-extra.json')) ? read('expected-extra.json') : {}),
  };
  return Object.entries(expected).map(([file, exp]) => ({ file, raw: readFileSync(path.join(CORPUS_DIR, file)), expected: exp }));
}

const normId = (id: string | null) => (id ? id.trim().replace(/^<|>$/g, '').toLowerCase() : null);

export function score(results: Array<{ file: string; expected: ExpectedVerdict; got: ScoredVerdict }>): {
  figures: Figures;
  misses: Miss[];
} {
  const n = { recipient: [0, 0], status: [0, 0], hard: [0, 0], kind: [0, 0], messageId: [0, 0] } as Record<keyof Figures, [number, number]>;
  const misses: Miss[] = [];
  const tally = (fig: keyof Figures, ok: boolean, file: string, expected: unknown, got: unknown) => {
    n[fig][1]++;
    if (ok) n[fig][0]++;
    else misses.push({ file, figure: fig, expected, got });
  };
  for (const { file, expected, got } of results) {
    tally('kind', got.kind === expected.kind, file, expected.kind, got.kind);
    if (expected.originalMessageId) {
      tally(
        'messageId',
        normId(got.originalMessageId) === normId(expected.originalMessageId),
        file,
        expected.originalMessageId,
        got.originalMessageId,
      );
    }
    for (const e of expected.bounces) {
      const g = got.bounces.find((b) => b.recipient.toLowerCase() === e.recipient.toLowerCase());
      tally(
        'recipient',
        g !== undefined,
        file,
        e.recipient,
        got.bounces.map((b) => b.recipient),
      );
      if (e.status !== null) tally('status', g?.status === e.status, file, `${e.recipient} ${e.status}`, g?.status ?? null);
      if (expected.kind === 'bounce' || expected.kind === 'delay')
        tally('hard', g?.hard === e.hard, file, `${e.recipient} hard=${e.hard}`, g ? g.hard : 'not found');
    }
  }
  const ratio = (k: keyof Figures) => (n[k][1] === 0 ? 1 : n[k][0] / n[k][1]);
  return {
    figures: {
      recipient: ratio('recipient'),
      status: ratio('status'),
      hard: ratio('hard'),
      kind: ratio('kind'),
      messageId: ratio('messageId'),
    },
    misses,
  };
}

/**
 * Sisimai alone, read the way its documentation describes its fields: `feedback` is a complaint, `vacation` and
 * `delivered` are machine mail that is no bounce, `Action: delayed` a delay; hard = `softbounce` 0.
 */
export function sisimaiAlone(records: SisimaiRecord[] | null): ScoredVerdict {
  const rs = records ?? [];
  if (rs.length === 0) return { kind: 'human', bounces: [], originalMessageId: null };
  const messageId = rs.find((r) => r.messageid)?.messageid;
  const originalMessageId = messageId ? `<${messageId}>` : null;
  if (rs.some((r) => r.reason === 'feedback'))
    return { kind: 'complaint', bounces: rs.map((r) => ({ recipient: r.recipient, status: null, hard: true })), originalMessageId };
  if (rs.every((r) => r.reason === 'vacation' || r.reason === 'delivered')) return { kind: 'autoreply', bounces: [], originalMessageId };
  const failed = rs.filter((r) => r.reason !== 'vacation' && r.reason !== 'delivered');
  const kind = failed.every((r) => r.action === 'delayed') ? 'delay' : 'bounce';
  return {
    kind,
    bounces: failed.map((r) => ({ recipient: r.recipient, status: r.deliverystatus || null, hard: r.softbounce === 0 })),
    originalMessageId,
  };
}

export function table(columns: Array<{ name: string; figures: Figures | null }>): string {
  const head = `| figure | ${columns.map((c) => c.name).join(' | ')} |`;
  const sep = `|---|${columns.map(() => '---').join('|')}|`;
  const rows = (Object.keys(FIGURE_NAMES) as Array<keyof Figures>).map(
    (k) => `| ${FIGURE_NAMES[k]} | ${columns.map((c) => (c.figures ? c.figures[k].toFixed(3) : 'n/a')).join(' | ')} |`,
  );
  return [head, sep, ...rows].join('\n');
}
