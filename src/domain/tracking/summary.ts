import { visitorOf, type Hit, type HitClass, type HitKind, type RuleName, type Verdict } from './classify';

/**
 * Counts for one message, from its classified hits. Totals count hits; uniques count readers
 * (the recipient when the token names one, else the client's IP + User-Agent). A human click
 * counts as a human open of that reader too: a link cannot be clicked in an unread message, and
 * the pixel is often blocked.
 */
export interface Counts {
  total: number;
  unique: number;
}
export interface ClassCounts {
  human: Counts;
  machine: Counts;
}

export interface TrackingSummary {
  opens: ClassCounts;
  clicks: ClassCounts & { links: Array<{ index: number; url: string | null } & ClassCounts> };
  /** Per recipient index (only for personalised bodies: a shared body cannot tell readers apart). */
  recipients: Array<{
    recipient: number;
    opens: ClassCounts;
    clicks: ClassCounts;
    firstHumanOpenAt: number | null;
    firstHumanClickAt: number | null;
  }>;
  /** How many hits each rule decided (how honest the counts are, at a glance). */
  rules: Partial<Record<RuleName, number>>;
  /** Hits past the per-message storage cap: counted by class, not by reader. */
  overflow: Partial<Record<`${HitKind}.${HitClass}`, number>>;
}

class Tally {
  total = { human: 0, machine: 0 };
  readers = { human: new Set<string>(), machine: new Set<string>() };
  add(cls: HitClass, reader: string): void {
    this.total[cls]++;
    this.readers[cls].add(reader);
  }
  counts(extraHumanReaders: Iterable<string> = []): ClassCounts {
    const human = new Set([...this.readers.human, ...extraHumanReaders]);
    return {
      human: { total: this.total.human, unique: human.size },
      machine: { total: this.total.machine, unique: this.readers.machine.size },
    };
  }
}

export function summarize(
  hits: readonly Hit[],
  verdicts: readonly Verdict[],
  links: readonly string[],
  overflow: TrackingSummary['overflow'] = {},
): TrackingSummary {
  const opens = new Tally();
  const clicks = new Tally();
  const perLink = new Map<number, Tally>();
  const perRecipient = new Map<number, { opens: Tally; clicks: Tally; firstOpen: number | null; firstClick: number | null }>();
  const rules: TrackingSummary['rules'] = {};
  hits.forEach((h, i) => {
    const v = verdicts[i]!;
    const reader = visitorOf(h);
    rules[v.rule] = (rules[v.rule] ?? 0) + 1;
    (h.kind === 'open' ? opens : clicks).add(v.cls, reader);
    if (h.kind === 'click' && h.link !== null) {
      const t = perLink.get(h.link) ?? new Tally();
      t.add(v.cls, reader);
      perLink.set(h.link, t);
    }
    if (h.recipient !== null) {
      const r = perRecipient.get(h.recipient) ?? { opens: new Tally(), clicks: new Tally(), firstOpen: null, firstClick: null };
      (h.kind === 'open' ? r.opens : r.clicks).add(v.cls, reader);
      if (v.cls === 'human' && h.kind === 'open') r.firstOpen = Math.min(r.firstOpen ?? h.at, h.at);
      if (v.cls === 'human' && h.kind === 'click') r.firstClick = Math.min(r.firstClick ?? h.at, h.at);
      perRecipient.set(h.recipient, r);
    }
  });
  const openCounts = opens.counts(clicks.readers.human);
  const clickCounts = clicks.counts();
  for (const [key, n] of Object.entries(overflow) as Array<[`${HitKind}.${HitClass}`, number]>) {
    const [kind, cls] = key.split('.') as [HitKind, HitClass];
    (kind === 'open' ? openCounts : clickCounts)[cls].total += n;
  }
  return {
    opens: openCounts,
    clicks: {
      ...clickCounts,
      links: [...perLink.entries()].sort((a, b) => a[0] - b[0]).map(([index, t]) => ({ index, url: links[index] ?? null, ...t.counts() })),
    },
    recipients: [...perRecipient.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([recipient, r]) => ({
        recipient,
        opens: r.opens.counts(r.clicks.readers.human),
        clicks: r.clicks.counts(),
        firstHumanOpenAt: r.firstOpen ?? r.firstClick,
        firstHumanClickAt: r.firstClick,
      })),
    rules,
    overflow,
  };
}
