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

const INLINE = [
  ['code', /`([^`\n]+)`/],
  ['image', /!\[([^\]\n]*)\]\(([^)\s]*)\)/],
  ['link', /\[([^\]\n]+)\]\(([^)\s]+)\)/],
  ['strong', /\*\*(?=\S)([^\n]*?\S)\*\*|__(?=\S)([^\n]*?\S)__/],
  ['em', /\*(?=[^\s*])([^*\n]*?[^\s*])\*|(?<![\w])_(?=[^\s_])([^_\n]*?[^\s_])_(?![\w])/],
];

export function safeHref(href) {
  try {
    const url = new URL(href, document.baseURI);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function inline(text, parent) {
  let rest = text;
  while (rest) {
    let best = null;
    for (const [kind, pattern] of INLINE) {
      const match = pattern.exec(rest);
      if (match && (!best || match.index < best.match.index)) best = { kind, match };
    }
    if (!best) { parent.append(rest); return; }
    const { kind, match } = best;
    if (match.index) parent.append(rest.slice(0, match.index));
    const inner = match[1] ?? match[2] ?? '';
    if (kind === 'code') {
      const code = document.createElement('code');
      code.textContent = inner;
      parent.append(code);
    } else if (kind === 'image') {
      // Never load an image a model names (it could track the reader): its alt text stands in.
      parent.append(`[image: ${inner || match[2]}]`);
    } else if (kind === 'link') {
      const href = safeHref(match[2]);
      if (href && /^https?:/i.test(match[2])) {
        const link = document.createElement('a');
        link.href = href;
        link.rel = 'noopener noreferrer';
        link.target = '_blank';
        inline(inner, link);
        parent.append(link);
      } else {
        parent.append(match[0]);
      }
    } else {
      const element = document.createElement(kind);
      inline(inner, element);
      parent.append(element);
    }
    rest = rest.slice(match.index + match[0].length);
  }
}
