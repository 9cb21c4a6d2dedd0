// A small Python highlighter: a tokenizer that wraps tokens in <span class="tok-..."> with
// textContent. It colours what a reader scans for; it is not a parser.

const KEYWORDS = new Set(('False None True and as assert async await break class continue def del elif else except ' +
  'finally for from global if import in is lambda nonlocal not or pass raise return try while with yield match case').split(' '));
const BUILTINS = new Set(('print len range sum min max abs int float str list dict set tuple sorted enumerate zip map ' +
  'filter open isinstance type round any all repr super object Exception ValueError TypeError KeyError').split(' '));

const TOKEN = new RegExp([
  String.raw`(?<comment>#[^\n]*)`,
  String.raw`(?<string>[rRbBuUfF]{0,2}(?:"""[\s\S]*?(?:"""|$)|'''[\s\S]*?(?:'''|$)|"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?))`,
  // One way to split a digit run only ("\d[\d_]*\.?\d*" split it n ways, and failed n times,
  // before a letter: 30,000 digits then "x" took seconds).
  String.raw`(?<number>\b(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?j?)(?![\w]))`,
  String.raw`(?<decorator>@[A-Za-z_][\w.]*)`,
  String.raw`(?<name>[A-Za-z_]\w*)`,
].join('|'), 'g');

export function highlightPython(code) {
  const fragment = document.createDocumentFragment();
  let last = 0;
  let previous = '';
  for (const match of code.matchAll(TOKEN)) {
    if (match.index > last) fragment.append(code.slice(last, match.index));
    const text = match[0];
    let kind = Object.keys(match.groups).find((group) => match.groups[group] !== undefined);
    if (kind === 'name') {
      if (KEYWORDS.has(text)) kind = 'keyword';
      else if (previous === 'def' || previous === 'class') kind = 'definition';
      else if (BUILTINS.has(text)) kind = 'builtin';
      else kind = null;
      previous = text;
    }
    if (kind) {
      const span = document.createElement('span');
      span.className = `tok-${kind}`;
      span.textContent = text;
      fragment.append(span);
    } else {
      fragment.append(text);
    }
    last = match.index + text.length;
  }
  if (last < code.length) fragment.append(code.slice(last));
  return fragment;
}

export function codeBlock(code, language) {
  const element = document.createElement('code');
  const lang = (language || '').toLowerCase();
  if (lang === 'python' || lang === 'py' || lang === 'python3') element.append(highlightPython(code));
  else element.textContent = code;
  const pre = document.createElement('pre');
  pre.className = 'code';
  pre.append(element);
  return pre;
}
