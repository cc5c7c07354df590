import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rewriteHtml, trackableUrl } from '../../src/domain/tracking/rewrite';

const opts = (over: Partial<Parameters<typeof rewriteHtml>[1]> = {}) => ({
  opens: true,
  clicks: true,
  clickUrl: (i: number) => `https://t.example/t/c/TOKEN${i}`,
  openUrl: () => 'https://t.example/t/o/PIXEL',
  ...over,
});

describe('HTML rewrite', () => {
  test('http(s) links become click URLs numbered by distinct URL; the rest of the HTML is untouched', () => {
    const html =
      '<p>Hi <a href="https://shop.example/a?x=1&amp;y=2" class="btn">Shop</a>, <A HREF=\'http://b.example\'>b</A> and <a href="https://shop.example/a?x=1&amp;y=2">again</a></p>';
    const r = rewriteHtml(html, opts({ opens: false }));
    assert.deepEqual(r.links, ['https://shop.example/a?x=1&y=2', 'http://b.example/']);
    assert.equal(
      r.html,
      '<p>Hi <a href="https://t.example/t/c/TOKEN0" class="btn">Shop</a>, <A href="https://t.example/t/c/TOKEN1">b</A> and <a href="https://t.example/t/c/TOKEN0">again</a></p>',
    );
    assert.equal(r.pixel, false);
  });

  test('mailto:, tel:, anchors, relative and javascript: links are left alone', () => {
    const html =
      '<a href="mailto:help@acme.example">m</a><a href="tel:+34911234567">t</a><a href="#top">a</a><a href="/relative">r</a><a href="javascript:alert(1)">j</a><a name="x">n</a>';
    const r = rewriteHtml(html, opts({ opens: false }));
    assert.equal(r.html, html);
    assert.deepEqual(r.links, []);
  });

  test('links inside the unsubscribe block (any depth) and data-cartero-notrack links are left alone', () => {
    const html =
      '<p><a href="https://acme.example/news">news</a></p><div data-cartero-unsubscribe><p>Not interested? <b><a href="https://acme.example/unsub?u=1">Unsubscribe</a></b></p></div><a data-cartero-notrack href="https://acme.example/raw">raw</a>';
    const r = rewriteHtml(html, opts({ opens: false }));
    assert.deepEqual(r.links, ['https://acme.example/news']);
    assert.match(r.html, /href="https:\/\/acme\.example\/unsub\?u=1"/);
    assert.match(r.html, /href="https:\/\/acme\.example\/raw"/);
    assert.match(r.html, /href="https:\/\/t\.example\/t\/c\/TOKEN0">news/);
  });

  test('the pixel goes right before </body>, or at the end of a fragment', () => {
    const doc = '<!doctype html><html><body><p>x</p></body></html>';
    const r = rewriteHtml(doc, opts({ clicks: false }));
    assert.ok(r.pixel);
    assert.match(r.html, /<p>x<\/p><img src="https:\/\/t\.example\/t\/o\/PIXEL" width="1" height="1" alt=""[^>]*><\/body><\/html>$/);
    const frag = rewriteHtml('<p>only a fragment</p>', opts({ clicks: false }));
    assert.match(frag.html, /^<p>only a fragment<\/p><img src="https:\/\/t\.example\/t\/o\/PIXEL"/);
  });

  test('opens only: links untouched; clicks only: no pixel', () => {
    const html = '<a href="https://a.example">a</a>';
    assert.deepEqual(rewriteHtml(html, opts({ clicks: false })).links, []);
    assert.match(rewriteHtml(html, opts({ clicks: false })).html, /href="https:\/\/a\.example"/);
    assert.doesNotMatch(rewriteHtml(html, opts({ opens: false })).html, /<img/);
  });

  test('malformed HTML and over-long URLs do not break anything', () => {
    const long = `https://a.example/${'x'.repeat(3000)}`;
    const r = rewriteHtml(`<p><a href="${long}">long</a><a href="https://ok.example">ok</a><div><span>unclosed`, opts());
    assert.deepEqual(r.links, ['https://ok.example/']);
    assert.ok(r.html.includes(long));
    assert.ok(
      r.html.endsWith(
        '<img src="https://t.example/t/o/PIXEL" width="1" height="1" alt="" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">',
      ),
    );
  });

  test('trackableUrl accepts only absolute http(s)', () => {
    assert.equal(trackableUrl(' https://a.example/x '), 'https://a.example/x');
    assert.equal(trackableUrl('https://a.example/ñ?q=a b'), 'https://a.example/%C3%B1?q=a%20b');
    for (const u of ['mailto:a@b.example', 'tel:1', '#x', '/x', 'ftp://a.example', 'https://', 'javascript:void(0)'])
      assert.equal(trackableUrl(u), null, u);
  });
});
