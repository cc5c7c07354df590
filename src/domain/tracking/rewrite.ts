import { defaultTreeAdapter, parse, type DefaultTreeAdapterMap, type TreeAdapter } from 'parse5';

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
type ParentNode = DefaultTreeAdapterMap['parentNode'];

/**
 * Deepest element nesting rewriteHtml reads. parse5 builds the tree as browsers do, and several steps of that
 * algorithm walk the stack of open elements for every tag (a `<div>` looks for an open `<p>` down to the nearest
 * scope boundary): 40 000 nested `<div>`s took it 9 s, 1 MB of them minutes. Capping the depth caps that walk, so
 * the parse stays linear in the HTML; browsers cap it too (Blink at 512), and real mail nests a few dozen deep.
 */
export const MAX_HTML_DEPTH = 512;

/** The HTML nests elements deeper than MAX_HTML_DEPTH: it is not rewritten (POST /v1/messages answers 400). */
export class HtmlTooDeepError extends Error {
  constructor() {
    super(`nests elements more than ${MAX_HTML_DEPTH} deep; tracking cannot rewrite it`);
  }
}

/**
 * parse5's own tree, with two changes that keep the parse linear:
 * - every element inserted is checked to be at most MAX_HTML_DEPTH deep (counting through a template's contents to
 *   the template), and parsing stops at the first that is not; the check walks at most MAX_HTML_DEPTH ancestors;
 * - a node inserted before, or detached from, its siblings is looked up from the end of the list (`lastIndexOf`):
 *   foster parenting inserts before the open table, the last child, and the default adapter's `indexOf` from the
 *   start made `<table><tr><div>x` repeated quadratic.
 */
function depthLimitedAdapter(): TreeAdapter<DefaultTreeAdapterMap> {
  const templateOf = new WeakMap<ParentNode, ParentNode>();
  const check = (parent: ParentNode, node: Node) => {
    if (!('tagName' in node)) return;
    let depth = 1;
    for (let n: ParentNode | null = parent; n; n = ('parentNode' in n ? n.parentNode : null) ?? templateOf.get(n) ?? null) {
      if (++depth > MAX_HTML_DEPTH) throw new HtmlTooDeepError();
    }
  };
  return {
    ...defaultTreeAdapter,
    appendChild(parent, node) {
      check(parent, node);
      defaultTreeAdapter.appendChild(parent, node);
    },
    insertBefore(parent, node, reference) {
      check(parent, node);
      parent.childNodes.splice(parent.childNodes.lastIndexOf(reference), 0, node);
      node.parentNode = parent;
    },
    insertTextBefore(parent, text, reference) {
      const at = parent.childNodes.lastIndexOf(reference);
      const previous = parent.childNodes[at - 1];
      if (previous && defaultTreeAdapter.isTextNode(previous)) {
        previous.value += text;
        return;
      }
      const node = defaultTreeAdapter.createTextNode(text);
      parent.childNodes.splice(at, 0, node);
      node.parentNode = parent;
    },
    detachNode(node) {
      const parent = node.parentNode;
      if (!parent) return;
      parent.childNodes.splice(parent.childNodes.lastIndexOf(node), 1);
      node.parentNode = null;
    },
    setTemplateContent(template, content) {
      templateOf.set(content, template);
      defaultTreeAdapter.setTemplateContent(template, content);
    },
  };
}

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

/** Rewrites the links and adds the pixel; throws HtmlTooDeepError for HTML nested deeper than MAX_HTML_DEPTH. */
export function rewriteHtml(html: string, opts: RewriteOptions): RewriteResult {
  const doc = parse(html, { sourceCodeLocationInfo: true, treeAdapter: depthLimitedAdapter() });
  const edits: Edit[] = [];
  const links: string[] = [];
  const indexOf = new Map<string, number>();
  const maxUrlBytes = opts.maxUrlBytes ?? 2048;
  let body: Element | null = null;
  let htmlEl: Element | null = null;

  // Depth-first in document order (link numbers follow first appearance), with an explicit stack: recursion
  // would overflow on deeply nested markup.
  const stack: Array<{ node: Node; inUnsubscribe: boolean }> = [{ node: doc, inUnsubscribe: false }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { node, inUnsubscribe } = item;
    if (!('tagName' in node)) {
      if ('childNodes' in node) pushChildren(stack, node.childNodes, inUnsubscribe);
      continue;
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
    // Template contents come after the element's own children, as in the document.
    if ('content' in el) pushChildren(stack, el.content.childNodes, blocked);
    pushChildren(stack, el.childNodes, blocked);
  }

  let pixel = false;
  if (opts.opens) {
    const img = `<img src="${escapeAttr(opts.openUrl())}" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">`;
    const closing = body?.sourceCodeLocation?.endTag ?? htmlEl?.sourceCodeLocation?.endTag;
    const at = closing ? closing.startOffset : html.length;
    edits.push({ start: at, end: at, text: img });
    pixel = true;
  }

  // One pass from the start: the author's text between edits, then each edit (rebuilding the whole string per edit
  // was quadratic in the number of links).
  edits.sort((a, b) => a.start - b.start);
  const out: string[] = [];
  let pos = 0;
  for (const e of edits) {
    out.push(html.slice(pos, e.start), e.text);
    pos = e.end;
  }
  out.push(html.slice(pos));
  return { html: out.join(''), links, pixel };
}

/** Children onto the stack so that the first child is taken next. */
function pushChildren(stack: Array<{ node: Node; inUnsubscribe: boolean }>, children: Node[], inUnsubscribe: boolean): void {
  for (let i = children.length - 1; i >= 0; i--) stack.push({ node: children[i]!, inUnsubscribe });
}
