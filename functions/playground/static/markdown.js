// A Markdown subset rendered straight to DOM nodes with textContent and createElement: paragraphs,
// headings, lists, block quotes, fenced code, inline code, bold, italic, and links to http(s) only.
// Nothing is ever parsed as HTML, so this is a sanitizer by construction: a "<script>" in a model's
// answer is the text "<script>".

import { codeBlock } from './highlight.js';

const FENCE = /^\s*(```|~~~)\s*([\w+-]*)\s*$/;
const HEADING = /^(#{1,6})\s+(.*)$/;
const BULLET = /^\s*[-*+]\s+(.*)$/;
const ORDERED = /^\s*(\d{1,9})[.)]\s+(.*)$/;
const QUOTE = /^\s*>\s?(.*)$/;
const RULE = /^\s*([-*_])(\s*\1){2,}\s*$/;

export function renderMarkdown(text) {
  const fragment = document.createDocumentFragment();
  const lines = String(text).replace(/\r\n?/g, '\n').split('\n');
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const fence = FENCE.exec(line);
    if (fence) {
      const body = [];
      i += 1;
      while (i < lines.length && !(lines[i].trim().startsWith(fence[1]) && lines[i].trim().replace(/`|~/g, '') === '')) {
        body.push(lines[i]);
        i += 1;
      }
      i += 1; // the closing fence (or the end of an answer still streaming)
      fragment.append(codeBlock(body.join('\n'), fence[2]));
      continue;
    }
    if (!line.trim()) { i += 1; continue; }
    const heading = HEADING.exec(line);
    if (heading) {
      const element = document.createElement(`h${Math.min(6, heading[1].length + 2)}`);
      inline(heading[2], element);
      fragment.append(element);
      i += 1;
      continue;
    }
    if (RULE.test(line)) { fragment.append(document.createElement('hr')); i += 1; continue; }
    if (BULLET.test(line) || ORDERED.test(line)) {
      const ordered = !BULLET.test(line);
      const pattern = ordered ? ORDERED : BULLET;
      const list = document.createElement(ordered ? 'ol' : 'ul');
      if (ordered) {
        const start = Number(ORDERED.exec(line)[1]);
        if (start !== 1) list.start = start;
      }
      while (i < lines.length && pattern.test(lines[i])) {
        const match = pattern.exec(lines[i]);
        const item = document.createElement('li');
        inline(ordered ? match[2] : match[1], item);
        list.append(item);
        i += 1;
      }
      fragment.append(list);
      continue;
    }
    if (QUOTE.test(line)) {
      const quoted = [];
      while (i < lines.length && QUOTE.test(lines[i])) { quoted.push(QUOTE.exec(lines[i])[1]); i += 1; }
      const quote = document.createElement('blockquote');
      quote.append(renderMarkdown(quoted.join('\n')));
      fragment.append(quote);
      continue;
    }
    const paragraph = [];
    while (i < lines.length && lines[i].trim() && !FENCE.test(lines[i]) && !HEADING.test(lines[i])
           && !BULLET.test(lines[i]) && !ORDERED.test(lines[i]) && !QUOTE.test(lines[i])) {
      paragraph.push(lines[i]);
      i += 1;
    }
    const element = document.createElement('p');
    paragraph.forEach((part, n) => {
      if (n) element.append(document.createElement('br'));
      inline(part, element);
    });
    fragment.append(element);
  }
  return fragment;
}

export function safeHref(href) {
  try {
    const url = new URL(href, document.baseURI);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

// Inline constructs, found in one left-to-right pass. Model text is hostile: a regular expression
// that scans to the end of the line from every "[" or "*" takes time growing with the square of
// the line ('[a ' * 9000 froze the tab for a minute), so each closing delimiter is looked up in
// a table of next occurrences built once per text, and every attempt costs O(1).
function nextTable(text, test) {
  // next[i] = the first index >= i where test(text, index) holds, or text.length.
  const next = new Int32Array(text.length + 2);
  next[text.length] = text.length;
  next[text.length + 1] = text.length;
  for (let i = text.length - 1; i >= 0; i -= 1) next[i] = test(text, i) ? i : next[i + 1];
  return next;
}

const isSpace = (c) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f' || c === '\v';
const isWord = (c) => c !== undefined && /\w/.test(c);

function scanner(text) {
  const at = (ch) => nextTable(text, (t, i) => t[i] === ch);
  const table = {
    newline: at('\n'), tick: at('`'), bracket: at(']'), paren: at(')'), star: at('*'), under: at('_'),
    space: nextTable(text, (t, i) => isSpace(t[i])),
    // a closing ** or __: the delimiter, preceded by a character that is not a space
    strongStar: nextTable(text, (t, i) => t[i] === '*' && t[i + 1] === '*' && i > 0 && !isSpace(t[i - 1])),
    strongUnder: nextTable(text, (t, i) => t[i] === '_' && t[i + 1] === '_' && i > 0 && !isSpace(t[i - 1])),
  };
  const lineEnd = (i) => table.newline[i];
  return {
    code(i) {
      if (text[i] !== '`') return null;
      const close = table.tick[i + 1];
      return close < lineEnd(i) && close > i + 1 ? { end: close + 1, inner: text.slice(i + 1, close) } : null;
    },
    bracketed(i) { // [text](url): the parts, for links and images
      const close = table.bracket[i + 1];
      if (close >= lineEnd(i) || text[close + 1] !== '(') return null;
      const paren = table.paren[close + 2];
      if (paren >= text.length || table.space[close + 2] < paren) return null;
      return { end: paren + 1, inner: text.slice(i + 1, close), url: text.slice(close + 2, paren) };
    },
    strong(i) {
      const ch = text[i];
      if ((ch !== '*' && ch !== '_') || text[i + 1] !== ch || isSpace(text[i + 2]) || i + 2 >= text.length) return null;
      const close = (ch === '*' ? table.strongStar : table.strongUnder)[i + 3];
      return close < lineEnd(i) ? { end: close + 2, inner: text.slice(i + 2, close) } : null;
    },
    em(i) {
      const ch = text[i];
      if (ch !== '*' && ch !== '_') return null;
      if (ch === '_' && isWord(text[i - 1])) return null;
      const first = text[i + 1];
      if (first === undefined || isSpace(first) || first === ch) return null;
      const close = (ch === '*' ? table.star : table.under)[i + 1];
      if (close >= lineEnd(i) || isSpace(text[close - 1])) return null;
      if (ch === '_' && isWord(text[close + 1])) return null;
      return { end: close + 1, inner: text.slice(i + 1, close) };
    },
  };
}

function inline(text, parent) {
  const scan = scanner(text);
  let plain = 0; // start of the text not yet appended
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch !== '`' && ch !== '!' && ch !== '[' && ch !== '*' && ch !== '_') { i += 1; continue; }
    let node = null;
    let found = null;
    if ((found = scan.code(i))) {
      node = document.createElement('code');
      node.textContent = found.inner;
    } else if (ch === '!' && text[i + 1] === '[' && (found = scan.bracketed(i + 1))) {
      // Never load an image a model names (it could track the reader): its alt text stands in.
      node = document.createTextNode(`[image: ${found.inner || found.url}]`);
    } else if (ch === '[' && (found = scan.bracketed(i)) && found.inner) {
      const href = safeHref(found.url);
      if (href && /^https?:/i.test(found.url)) {
        node = document.createElement('a');
        node.href = href;
        node.rel = 'noopener noreferrer';
        node.target = '_blank';
        inline(found.inner, node);
      } else {
        node = document.createTextNode(text.slice(i, found.end));
      }
    } else if ((found = scan.strong(i))) {
      node = document.createElement('strong');
      inline(found.inner, node);
    } else if ((found = scan.em(i))) {
      node = document.createElement('em');
      inline(found.inner, node);
    }
    if (!node) { i += 1; continue; }
    if (i > plain) parent.append(text.slice(plain, i));
    parent.append(node);
    i = found.end;
    plain = i;
  }
  if (plain < text.length) parent.append(text.slice(plain));
}
