// DOM building without HTML strings: every piece of text becomes a text node, so nothing the
// model or the code wrote can ever be parsed as markup. Attribute names are always literals here.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

export function byId(id) {
  return document.getElementById(id);
}

export function when(timestamp) {
  if (timestamp === undefined || timestamp === null) return '';
  const date = typeof timestamp === 'number' ? new Date(timestamp * 1000) : new Date(timestamp);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString();
}

// A "Copy" button for the text ``text()`` returns when clicked; it says "Copied" for a moment.
export function copyButton(text, what) {
  const button = h('button', { type: 'button', class: 'copy', 'aria-label': `Copy ${what}` }, 'Copy');
  button.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(text());
      button.textContent = 'Copied';
    } catch {
      button.textContent = 'Copy failed';
    }
    setTimeout(() => { button.textContent = 'Copy'; }, 1500);
  });
  return button;
}

// Puts a Copy button on every code block under ``root`` that has none yet.
export function addCopyButtons(root) {
  for (const pre of root.querySelectorAll('pre')) {
    if (pre.parentElement && pre.parentElement.classList.contains('block')) continue;
    const block = h('div', { class: 'block' });
    pre.replaceWith(block);
    block.append(pre, copyButton(() => pre.textContent, pre.classList.contains('output') ? 'output' : 'code'));
    if (!pre.hasAttribute('tabindex')) pre.tabIndex = 0; // a block that scrolls is reachable by keyboard
  }
  return root;
}
