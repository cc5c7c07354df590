import { parse, type DefaultTreeAdapterMap } from 'parse5';

/**
 * Compose-time HTML rewrite for tracking. The HTML is parsed (parse5, the WHATWG algorithm browsers
 * use) only to find where things are; the output is the author's HTML with exactly two kinds of
 * edits spliced in at the parser's source offsets: `href` values of http(s) links replaced by our
 * click URL, and a 1×1 pixel before `</body>` (or at the end). Everything else stays byte for byte.
 *
 * Left alone: links that are not absolute http(s) (`mailto:`, `tel:`, `#anchor`, relative,
 * `javascript:`), links inside an element marked `data-cartero-unsubscribe` (the unsubscribe
 * block: a scanner "clicking" it must not look like a human, and the link must work even if our
 * tracking host is blocked), and links marked `data-cartero-notrack`.
 */
export const UNSUBSCRIBE_BLOCK_ATTR = 'data-cartero-unsubscribe';
export const NO_TRACK_ATTR = 'data-cartero-notrack';

export interface RewriteOptions {
  opens: boolean;
  clicks: boolean;
  /** The tracked URL for link `index` (distinct URLs are numbered in order of first appearance). */
  clickUrl: (index: number, url: string) => string;
  openUrl: () => string;
  /** URLs longer than this stay untracked (the token carries the URL). */
  maxUrlBytes?: number;
}

export interface RewriteResult {
  html: string;
  /** Distinct tracked URLs; the index is the link number in click tokens. */
  links: string[];
  pixel: boolean;
}

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

interface Edit {
  start: number;
  end: number;
  text: string;
}

const escapeAttr = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * An absolute http(s) URL in the WHATWG serialisation a browser would follow (non-ASCII
 * percent-encoded, tabs and newlines removed, so it is always a valid Location header); null for
 * anything we must not touch.
 */
export function trackableUrl(href: string): string | null {
  const v = href.trim();
  if (!/^https?:\/\//i.test(v)) return null;
  try {
    const u = new URL(v);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' ? u.href : null;
  } catch {
    return null;
  }
}

export function rewriteHtml(html: string, opts: RewriteOptions): RewriteResult {
  const doc = parse(html, { sourceCodeLocationInfo: true });
  const edits: Edit[] = [];
  const links: string[] = [];
  const indexOf = new Map<string, number>();
  const maxUrlBytes = opts.maxUrlBytes ?? 2048;
  let body: Element | null = null;
  let htmlEl: Element | null = null;

  const visit = (node: Node, inUnsubscribe: boolean): void => {
    if (!('tagName' in node)) {
      if ('childNodes' in node) for (const c of node.childNodes) visit(c, inUnsubscribe);
      return;
    }
    const el = node;
    const has = (name: string) => el.attrs.some((a) => a.name === name);
    const blocked = inUnsubscribe || has(UNSUBSCRIBE_BLOCK_ATTR);
    if (el.tagName === 'body') body = el;
    if (el.tagName === 'html') htmlEl = el;
    if (opts.clicks && (el.tagName === 'a' || el.tagName === 'area') && !blocked && !has(NO_TRACK_ATTR)) {
      const href = el.attrs.find((a) => a.name === 'href');
      const loc = el.sourceCodeLocation?.attrs?.href;
      const url = href ? trackableUrl(href.value) : null;
      if (url && loc && Buffer.byteLength(url) <= maxUrlBytes) {
        let i = indexOf.get(url);
        if (i === undefined) {
          i = links.length;
          links.push(url);
          indexOf.set(url, i);
        }
        edits.push({ start: loc.startOffset, end: loc.endOffset, text: `href="${escapeAttr(opts.clickUrl(i, url))}"` });
      }
    }
    for (const c of el.childNodes) visit(c, blocked);
    if ('content' in el) for (const c of el.content.childNodes) visit(c, blocked);
  };
  visit(doc, false);

  let pixel = false;
  if (opts.opens) {
    const img = `<img src="${escapeAttr(opts.openUrl())}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">`;
    const closing = (body as Element | null)?.sourceCodeLocation?.endTag ?? (htmlEl as Element | null)?.sourceCodeLocation?.endTag;
    const at = closing ? closing.startOffset : html.length;
    edits.push({ start: at, end: at, text: img });
    pixel = true;
  }

  // Apply from the end so earlier offsets stay valid.
  edits.sort((a, b) => b.start - a.start);
  let out = html;
  for (const e of edits) out = out.slice(0, e.start) + e.text + out.slice(e.end);
  return { html: out, links, pixel };
}
