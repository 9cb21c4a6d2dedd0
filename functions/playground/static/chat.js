// Conversations: history, the transcript (rendered from stored entries and, while a turn runs,
// from its SSE events as they arrive), attachments, and restarts.

import { addCopyButtons, byId, clear, copyButton, h, when } from './dom.js';
import { codeBlock } from './highlight.js';
import { renderMarkdown } from './markdown.js';

// Shown inline. Not SVG: an SVG is a document that can carry script, and its object URL opened
// in a tab of its own (copy the image address) would run it at this page's origin, without the
// page's CSP. SVGs are offered as downloads, like any other file.
const IMAGE_TYPES = { png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', gif: 'image/gif', webp: 'image/webp' };

// Streamed text re-renders at most once per frame: a delta at a time, a long answer would be
// parsed again for every token.
function perFrame(fn) {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => { pending = false; fn(); });
  };
}

// The code inside a partial `{"code": "..."}` argument string, as far as it has arrived.
export function partialCode(args) {
  const start = /"code"\s*:\s*"/.exec(args);
  if (!start) return '';
  const escapes = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f' };
  let out = '';
  let i = start.index + start[0].length;
  while (i < args.length && args[i] !== '"') {
    if (args[i] !== '\\') { out += args[i]; i += 1; continue; }
    const next = args[i + 1];
    if (next === undefined) break;
    if (next === 'u') {
      const hex = args.slice(i + 2, i + 6);
      if (hex.length < 4) break;
      out += String.fromCharCode(parseInt(hex, 16));
      i += 6;
    } else {
      out += escapes[next] ?? next;
      i += 2;
    }
  }
  return out;
}

// What each execution status means to a reader: a label, and whether it is a failure. A cell cut
// at its output limit did what it was asked: its label says so, without the colour of an error.
const CELL_STATES = {
  ok: null,
  output_truncated: { label: 'Output cut at its size limit', kind: 'warn' },
  error: { label: 'Error', kind: 'bad' },
  timeout: { label: 'Stopped at its time limit', kind: 'bad' },
  memory: { label: 'Stopped: out of memory', kind: 'bad' },
  crashed: { label: 'Crashed', kind: 'bad' },
  unavailable: { label: 'Not run', kind: 'bad' },
};
const TITLES_STORAGE = 'agents-playground-titles'; // renamed conversations: id -> title, in this browser

export const EXAMPLES = [
  'Plot the function sin(x) / x between -20 and 20, and tell me where it crosses zero.',
  'Simulate 10,000 rolls of two dice and show the distribution of their sum as a table and a bar chart.',
  'Which of the numbers below 1000 are both prime and palindromic?',
];

// A title people can tell apart: the first line of prose, else "Python: " and the first line of
// code; never the fences of a code block.
export function titleFrom(text, files = []) {
  const lines = String(text || '').split('\n');
  let inCode = false;
  let firstCode = '';
  for (const line of lines) {
    const trimmed = line.trim();
    if (trimmed.startsWith('```')) { inCode = !inCode; continue; }
    if (!trimmed) continue;
    if (!inCode) return trimmed.slice(0, 80);
    if (!firstCode) firstCode = trimmed;
  }
  if (firstCode) return `Python: ${firstCode}`.slice(0, 80);
  return files.length ? `Files: ${files.join(', ')}`.slice(0, 80) : 'Untitled';
}

function textOf(content) {
  if (typeof content === 'string') return content;
  return (content || []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
}

export function mountChat(ctx) {
  const { api } = ctx;
  const transcript = byId('transcript');
  const list = byId('conversation-list');
  const form = byId('composer');
  const message = byId('message');
  const attach = byId('attach');
  const attachmentList = byId('attachments');
  const status = byId('turn-status');
  const send = byId('send');
  const agentSelect = byId('agent-select');
  const settings = byId('chat-settings');
  const title = byId('conversation-title');
  const restartBanner = byId('restart-banner');
  const stop = byId('stop');
  const subtitle = byId('conversation-subtitle');
  const renameButton = byId('rename');
  let controller = null; // aborts the running turn's stream (Stop)
  let known = new Map(); // conversation id -> its listing (for titles)

  const imageBlobs = new Map(); // file id -> Promise of its bytes as a typed Blob (fetched once, with the key)
  let conversationId = null;
  let restartFrom = null; // {entryId, label} while the next message restarts from an entry
  let attachments = [];
  let busy = false;
  let shownFiles = new Set(); // files already shown in the transcript (an execution's, then the answer's)

  // -- files -------------------------------------------------------------------------------------
  // The bytes are fetched once per file; each picture gets an object URL of its own, revoked as
  // soon as it has loaded (the picture stays), so no URL to a file outlives its <img>.
  function imageBlob(fileId, type) {
    if (!imageBlobs.has(fileId)) {
      const pending = api.blob(`v1/files/${encodeURIComponent(fileId)}/content`)
        .then((blob) => new Blob([blob], { type }));
      pending.catch(() => imageBlobs.delete(fileId));
      imageBlobs.set(fileId, pending);
    }
    return imageBlobs.get(fileId);
  }

  const download = (fileId, name) => ctx.download(fileId, name);

  function fileView(file) {
    const name = file.file_name || file.file_id;
    const type = String(file.file_type || name.split('.').pop() || '').toLowerCase();
    shownFiles.add(file.file_id);
    if (IMAGE_TYPES[type]) {
      const img = h('img', { alt: name, class: 'plot', title: 'Click to see it whole' });
      img.addEventListener('click', () => img.classList.toggle('whole'));
      const figure = h('figure', { class: 'file' }, img,
        h('figcaption', {}, h('button', { type: 'button', class: 'link', onclick: () => download(file.file_id, name) },
          `Download ${name}`)));
      imageBlob(file.file_id, IMAGE_TYPES[type])
        .then((blob) => {
          const url = URL.createObjectURL(blob);
          img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
          img.src = url;
        })
        .catch((error) => img.replaceWith(h('p', { class: 'error' }, `${name} could not be shown: ${error.message}`)));
      return figure;
    }
    return h('div', { class: 'file' },
      h('button', { type: 'button', class: 'download', onclick: () => download(file.file_id, name) }, `Download ${name}`));
  }

  // -- entries ------------------------------------------------------------------------------------
  function entryShell(kind, who, id) {
    const body = h('div', { class: 'body' });
    const actions = h('div', { class: 'actions' });
    const state = h('span', { class: 'state', hidden: true });
    const item = h('li', { class: `entry entry-${kind}`, dataset: id ? { entryId: id } : {} },
      h('div', { class: 'entry-head' }, h('div', { class: 'who' }, who), state), body, actions);
    if (id) addRestart(item, id);
    function setState(text, stateKind) {
      state.hidden = !text;
      state.textContent = text || '';
      state.className = `state ${stateKind || ''}`;
    }
    return { item, body, actions, setState };
  }

  function addRestart(item, id) {
    item.dataset.entryId = id;
    const actions = item.querySelector('.actions');
    if (actions.querySelector('.restart')) return;
    actions.append(h('button', { type: 'button', class: 'restart link', onclick: () => startRestart(id, item) },
      'Restart from here'));
  }

  function userEntry(entry) {
    const shell = entryShell('user', entry.role === 'assistant' ? 'Assistant (given)' : 'You', entry.id);
    shell.body.append(addCopyButtons(renderMarkdown(textOf(entry.content))));
    const files = Array.isArray(entry.content) ? entry.content.filter((c) => c.type === 'tool_file' || c.type === 'file') : [];
    if (files.length) {
      shell.body.append(h('ul', { class: 'chips', 'aria-label': 'Attached files' },
        files.map((f) => h('li', {}, `📎 ${f.file_name || f.file_id} (in the working directory)`))));
    }
    return shell.item;
  }

  function executionView(id) {
    const shell = entryShell('tool', 'Code interpreter', id);
    const code = h('div', { class: 'code-slot' });
    const output = h('pre', { class: 'output pending', tabindex: 0 }, 'Running…');
    let streamed = false; // the cell has printed something while it ran
    const notice = h('p', { class: 'notice', hidden: true });
    const table = h('div', { class: 'table-slot' });
    const files = h('div', { class: 'files' });
    shell.body.append(code, h('div', { class: 'label' }, 'Output'), notice,
      h('div', { class: 'block' }, output, copyButton(() => output.textContent, 'output')), table, files);
    let partial = '';
    let finished = false; // a frame scheduled before the end must not put the partial code back
    const showPartial = perFrame(() => { if (!finished) code.replaceChildren(codeBlock(partial, 'python')); });
    const showCode = (text) => code.replaceChildren(addCopyButtons(h('div', {}, codeBlock(text, 'python'))));
    return {
      item: shell.item,
      setCode(text) { partial = text; if (!finished) showPartial(); },
      addOutput(text) {
        if (finished) return;
        if (!streamed) { output.classList.remove('pending'); output.textContent = ''; streamed = true; }
        output.append(text); // appended, not the whole output set again at each line
        output.scrollTop = output.scrollHeight;
      },
      finish(info) {
        finished = true;
        if (typeof info.code === 'string') showCode(info.code);
        output.classList.remove('pending');
        let text = info.code_output ?? textOf(info.result);
        const frame = info.display_table;
        if (frame && typeof frame.text === 'string' && text.includes(frame.text)) {
          text = text.replace(frame.text, '').replace(/\n{2,}$/, '\n'); // the table shows it; the text stays in the API
          table.replaceChildren(frameTable(frame));
        }
        output.textContent = text.trim() ? text : (frame ? '(no printed output)' : '(no output)');
        const state = CELL_STATES[info.status] ?? (info.status ? { label: info.status, kind: 'bad' } : null);
        shell.setState(state && state.label, state && state.kind);
        if (state && state.kind === 'bad') output.classList.add('error');
        if (info.status === 'output_truncated') {
          notice.hidden = false;
          notice.textContent = 'The cell printed more than the output limit: below is its beginning, and the reason at its end.';
        }
        for (const file of info.files || []) files.append(fileView(file));
      },
    };
  }

  // A DataFrame (the sandbox's table of a trailing value) as an HTML table, every cell as text.
  function frameTable(frame) {
    const head = h('tr', {}, h('th', { scope: 'col' }, frame.index_name || ''),
      (frame.columns || []).map((c) => h('th', { scope: 'col' }, c)));
    const rows = (frame.rows || []).map((row, n) => h('tr', {}, h('th', { scope: 'row' }, (frame.index || [])[n] ?? ''),
      row.map((cell) => h('td', {}, cell))));
    const [total, width] = frame.shape || [rows.length, (frame.columns || []).length];
    const shown = rows.length < total || (frame.columns || []).length < width;
    return h('div', {},
      h('table', { class: 'frame', tabindex: 0, 'aria-label': `Table, ${total} rows × ${width} columns` },
        h('thead', {}, head), h('tbody', {}, rows)),
      h('p', { class: 'frame-note' }, `${total} rows × ${width} columns${shown ? ` (the first ${rows.length} rows and ${(frame.columns || []).length} columns shown)` : ''}`));
  }

  function executionEntry(entry) {
    const view = executionView(entry.id);
    const info = entry.info || {};
    if (typeof info.code !== 'string') {
      try { info.code = JSON.parse(entry.arguments || '{}').code ?? entry.arguments; } catch { info.code = entry.arguments; }
    }
    view.finish(info);
    return view.item;
  }

  function answerView(id, who) {
    const shell = entryShell('assistant', who || 'Assistant', id);
    const parts = [];
    const renderSoon = perFrame(() => render());
    function render() {
      const nodes = [];
      for (const part of parts) {
        if (part.type === 'text') nodes.push(addCopyButtons(renderMarkdown(part.text)));
        else if (part.type === 'tool_file') {
          if (!shownFiles.has(part.file_id) || part.view) part.view = part.view || fileView(part);
          if (part.view) nodes.push(part.view);
        } else nodes.push(h('p', { class: 'muted' }, `[${part.type} chunk]`));
      }
      shell.body.replaceChildren(...nodes);
    }
    return {
      item: shell.item,
      add(content) {
        const last = parts[parts.length - 1];
        if (typeof content === 'string') {
          if (last && last.type === 'text') last.text += content; else parts.push({ type: 'text', text: content });
        } else if (content && content.type === 'text') {
          parts.push({ type: 'text', text: content.text });
        } else if (content) parts.push({ ...content });
        renderSoon();
      },
      render,
    };
  }

  function answerEntry(entry) {
    const view = answerView(entry.id, entry.agent_id ? 'Agent' : 'Assistant');
    if (typeof entry.content === 'string') view.add(entry.content);
    else for (const chunk of entry.content || []) view.add(chunk);
    view.render(); // a stored entry is shown whole at once
    return view.item;
  }

  function otherEntry(entry) {
    const labels = { 'function.call': `Function call: ${entry.name}`, 'function.result': 'Function result',
      'agent.handoff': `Handoff: ${entry.previous_agent_name} → ${entry.next_agent_name}` };
    const shell = entryShell('other', labels[entry.type] || entry.type, entry.id);
    const detail = entry.type === 'function.call' ? entry.arguments : entry.type === 'function.result' ? entry.result : '';
    if (detail) shell.body.append(h('pre', { class: 'output' }, typeof detail === 'string' ? detail : JSON.stringify(detail, null, 2)));
    return shell.item;
  }

  function renderEntry(entry) {
    switch (entry.type) {
      case 'message.input': return userEntry(entry);
      case 'message.output': return answerEntry(entry);
      case 'tool.execution': return executionEntry(entry);
      default: return otherEntry(entry);
    }
  }

  function renderHistory(entries) {
    shownFiles = new Set();
    transcript.replaceChildren(...entries.map(renderEntry));
    scrollDown();
  }

  function scrollDown() {
    transcript.scrollTop = transcript.scrollHeight;
  }

  // -- a live turn --------------------------------------------------------------------------------
  function liveTurn() {
    const outputs = new Map(); // output_index -> view
    const args = new Map();
    const cellStates = []; // each finished cell's status
    let sawError = false;
    function view(index, make) {
      if (!outputs.has(index)) {
        const made = make();
        outputs.set(index, made);
        transcript.append(made.item);
      }
      return outputs.get(index);
    }
    return {
      get failed() { return sawError; },
      handle({ event, data }) {
        const index = data.output_index ?? 0;
        switch (event) {
          case 'conversation.response.started':
            setConversation(data.conversation_id);
            break;
          case 'tool.execution.started':
            view(index, () => executionView(data.id));
            setStatus('Running code…');
            break;
          case 'tool.execution.delta': {
            if (data.output) { // a line the cell printed, as it printed it
              view(index, () => executionView(data.id)).addOutput(data.output.text || '');
              setStatus('Running code… (Stop ends it)');
              break;
            }
            const text = (args.get(index) || '') + (data.arguments || '');
            args.set(index, text);
            view(index, () => executionView(data.id)).setCode(partialCode(text));
            break;
          }
          case 'tool.execution.done':
            view(index, () => executionView(data.id)).finish(data.info || {});
            cellStates.push((data.info || {}).status || 'ok');
            setStatus('Thinking…');
            break;
          case 'message.output.delta':
            view(index, () => answerView(data.id, data.agent_id ? 'Agent' : 'Assistant')).add(data.content);
            setStatus('Answering…');
            break;
          case 'function.call.delta': {
            const text = (args.get(index) || '') + (data.arguments || '');
            args.set(index, text);
            const shown = view(index, () => {
              const shell = entryShell('other', `Function call: ${data.name}`, data.id);
              const pre = h('pre', { class: 'output' });
              shell.body.append(pre);
              return { item: shell.item, pre };
            });
            shown.pre.textContent = text;
            break;
          }
          case 'agent.handoff.done':
            view(index, () => entryShell('other', `Handoff to ${data.next_agent_name}`, data.id));
            break;
          case 'conversation.response.done': {
            const usage = data.usage || {};
            const runs = (usage.connectors || {}).code_interpreter;
            // "Done" says the turn ended; what went wrong in its cells is said too, not hidden behind it.
            const failed = cellStates.filter((st) => CELL_STATES[st] && CELL_STATES[st].kind === 'bad');
            const labels = [...new Set(failed.map((st) => CELL_STATES[st].label.toLowerCase()))];
            const trouble = failed.length
              ? ` · ${failed.length} of ${cellStates.length} cell${cellStates.length > 1 ? 's' : ''} failed (${labels.join(', ')})` : '';
            setStatus(`Done · ${usage.total_tokens ?? 0} tokens${runs ? ` · ${runs} code run${runs > 1 ? 's' : ''}` : ''}${trouble}`);
            break;
          }
          case 'conversation.response.error':
            sawError = true;
            setStatus('Failed');
            transcript.append(h('li', { class: 'entry entry-error', role: 'alert' }, `The turn failed: ${data.message}`));
            break;
          default:
            break;
        }
        scrollDown();
      },
    };
  }

  function setStatus(text) {
    status.textContent = text;
  }

  function setBusy(value) {
    busy = value;
    transcript.dataset.state = value ? 'streaming' : 'idle';
    // How many turns this page has finished: what a test waits on, rather than on a label that
    // the previous turn also showed.
    if (!value) transcript.dataset.turns = String(Number(transcript.dataset.turns || 0) + 1);
    send.disabled = value;
    stop.hidden = !value;
    if (!value) controller = null;
  }

  // -- sending ------------------------------------------------------------------------------------
  async function uploadAttachments() {
    const chunks = [];
    for (const item of attachments) {
      if (!item.id) {
        setStatus(`Uploading ${item.file.name}…`);
        const form = new FormData();
        form.append('purpose', 'code_interpreter');
        form.append('file', item.file, item.file.name);
        item.id = (await api.upload('v1/files', form)).id;
      }
      chunks.push({ type: 'tool_file', tool: 'code_interpreter', file_id: item.id, file_name: item.file.name });
    }
    return chunks;
  }

  async function submit() {
    const text = message.value;
    if (busy) { // said, not silently ignored
      setStatus('A turn is still running: press Stop to end it, or wait for it');
      return;
    }
    if (!text.trim() && !attachments.length) return;
    ctx.clearNotice();
    setBusy(true);
    let turn = null;
    let pending = null;
    const before = conversationId;
    controller = new AbortController();
    const { signal } = controller;
    try {
      const files = await uploadAttachments();
      const inputs = files.length
        ? [{ role: 'user', content: [...(text.trim() ? [{ type: 'text', text }] : []), ...files] }]
        : text;
      const shown = { type: 'message.input', role: 'user', content: files.length ? inputs[0].content : text };
      let path;
      let body;
      if (restartFrom) {
        // The new conversation keeps the history up to and including the entry.
        const keep = transcript.querySelector(`[data-entry-id="${CSS.escape(restartFrom.entryId)}"]`);
        while (keep && keep.nextSibling) keep.nextSibling.remove();
        path = `v1/conversations/${encodeURIComponent(conversationId)}/restart`;
        // Marked as a branch, so that the history tells it from its original.
        body = { from_entry_id: restartFrom.entryId, inputs,
          metadata: { ...((known.get(conversationId) || {}).metadata || {}), branch_of: conversationId } };
      } else if (conversationId) {
        path = `v1/conversations/${encodeURIComponent(conversationId)}`;
        body = { inputs };
      } else {
        path = 'v1/conversations';
        body = { inputs, name: titleFrom(text, files.map((f) => f.file_name)) };
        if (agentSelect.value) body.agent_id = agentSelect.value;
        else {
          body.model = byId('model').value.trim() || 'mistral-medium-latest';
          body.tools = byId('code-interpreter').checked ? [{ type: 'code_interpreter' }] : [];
        }
      }
      pending = { item: userEntry(shown), attachments, restart: restartFrom };
      transcript.append(pending.item);
      message.value = '';
      attachments = [];
      renderAttachments();
      setRestart(null);
      setStatus('Waiting for the model…');
      turn = liveTurn();
      await api.stream(path, body, (event) => {
        pending = null; // the server took the turn
        turn.handle(event);
      }, signal);
    } catch (error) {
      if (signal.aborted) { // Stop: the server cancelled the turn and kept none of it
        setBusy(false);
        setStatus('Stopped: the turn was cancelled, and nothing of it was saved');
        message.value = text;
        if (before && !restartFrom) await openConversation(before, { keepStatus: true });
        else { setConversation(before); if (!before) showWelcome(); }
        await refreshList();
        return;
      }
      ctx.notify(error);
      setStatus('Failed');
      if (pending) { // refused before the turn began (a wrong key, a bad setting): give the message back
        pending.item.remove();
        message.value = text;
        attachments = pending.attachments;
        renderAttachments();
        if (pending.restart) { // the entries after the restart point were hidden: show them again
          await openConversation(conversationId, { keepStatus: true });
          setRestart(pending.restart);
        }
        turn = null;
      }
    } finally {
      setBusy(false);
    }
    if (conversationId && turn && !turn.failed) {
      // The stored entries have ids the stream does not give (inputs): show them as stored.
      await openConversation(conversationId, { keepStatus: true });
    }
    await refreshList();
  }

  // -- conversations ------------------------------------------------------------------------------
  function savedTitles() {
    try { return JSON.parse(localStorage.getItem(TITLES_STORAGE) || '{}'); } catch { return {}; }
  }

  function titleOf(c) {
    return savedTitles()[c.id] || c.name || (c.agent_id ? `Agent ${c.agent_id}` : c.model) || c.id;
  }

  // Who answers in a conversation, in a line under its title.
  function describe(c) {
    if (!c) return '';
    const tools = (c.tools || []).map((t) => (t.type === 'code_interpreter' ? 'code interpreter' : t.type));
    const who = c.agent_id ? `Agent ${(agentNames.get(c.agent_id) || c.agent_id)}` : `Model ${c.model}`;
    const branch = c.metadata && c.metadata.branch_of ? ` · branch of “${titleOf(known.get(c.metadata.branch_of) || { id: c.metadata.branch_of })}”` : '';
    return `${who}${tools.length ? ` · tools: ${tools.join(', ')}` : ''}${branch}`;
  }

  function setConversation(id, listing) {
    conversationId = id;
    if (listing) known.set(id, listing);
    const c = id ? known.get(id) : null;
    settings.hidden = Boolean(id);
    title.textContent = id ? (c ? titleOf(c) : 'Conversation') : 'New conversation';
    title.dataset.conversationId = id || '';
    renameButton.hidden = !id;
    subtitle.hidden = !c;
    subtitle.textContent = describe(c);
    for (const item of list.querySelectorAll('li')) item.classList.toggle('current', item.dataset.id === id);
  }

  function rename() {
    if (!conversationId) return;
    const id = conversationId;
    const field = h('input', { 'aria-label': 'New title', value: title.textContent });
    const save = h('button', { type: 'button', class: 'primary' }, 'Save title');
    const box = h('div', { class: 'row' }, field, save);
    title.parentElement.after(box);
    field.focus();
    field.select();
    const done = async (keep) => {
      if (keep && field.value.trim()) {
        const titles = savedTitles();
        titles[id] = field.value.trim().slice(0, 120);
        localStorage.setItem(TITLES_STORAGE, JSON.stringify(titles));
      }
      box.remove();
      setConversation(conversationId);
      await refreshList();
      renameButton.focus();
    };
    save.addEventListener('click', () => done(true));
    field.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') { event.preventDefault(); done(true); }
      if (event.key === 'Escape') done(false);
    });
  }

  async function openConversation(id, { keepStatus = false } = {}) {
    try {
      const [history, listing] = await Promise.all([
        api.get(`v1/conversations/${encodeURIComponent(id)}/history`),
        api.get(`v1/conversations/${encodeURIComponent(id)}`)]);
      setRestart(null);
      setConversation(id, listing);
      if (!keepStatus) setStatus('');
      renderHistory(history.entries || []);
    } catch (error) {
      ctx.notify(error);
    }
  }

  function newConversation(agentId) {
    setConversation(null);
    setRestart(null);
    shownFiles = new Set();
    showWelcome();
    setStatus('');
    if (agentId !== undefined) agentSelect.value = agentId;
    syncSettings();
    message.focus();
  }

  async function refreshList() {
    let conversations;
    try {
      conversations = await api.get('v1/conversations', { page: 0, page_size: 50 });
    } catch (error) {
      ctx.notify(error);
      return;
    }
    known = new Map(conversations.map((c) => [c.id, c]));
    // A batch's requests are conversations too, but not ones a person had: the Batches tab has them.
    const chats = conversations.filter((c) => !(c.metadata && c.metadata.batch_job_id));
    if (conversationId && known.has(conversationId)) setConversation(conversationId);
    list.replaceChildren(...chats.map((c) => {
      const label = titleOf(c);
      const branchOf = c.metadata && c.metadata.branch_of;
      let armed = false;
      const remove = h('button', { type: 'button', class: 'delete link', 'aria-label': `Delete ${label}` }, 'Delete');
      remove.addEventListener('click', async () => {
        if (!armed) { armed = true; remove.textContent = 'Confirm delete'; return; }
        try {
          await api.del(`v1/conversations/${encodeURIComponent(c.id)}`);
          if (c.id === conversationId) newConversation();
          await refreshList();
        } catch (error) {
          ctx.notify(error);
        }
      });
      remove.addEventListener('blur', () => { armed = false; remove.textContent = 'Delete'; });
      return h('li', { class: c.id === conversationId ? 'current' : '', dataset: { id: c.id } },
        h('button', { type: 'button', class: 'open', title: c.id, onclick: () => openConversation(c.id) },
          h('span', { class: 'name' }, label),
          branchOf ? h('span', { class: 'branch' }, `↳ branch of “${titleOf(known.get(branchOf) || { id: branchOf })}”`) : null,
          h('span', { class: 'when' }, when(c.created_at))),
        remove);
    }));
  }

  function startRestart(entryId, item) {
    setRestart({ entryId });
    for (const other of transcript.querySelectorAll('.restart-point')) other.classList.remove('restart-point');
    item.classList.add('restart-point');
    message.focus();
  }

  function setRestart(value) {
    restartFrom = value;
    restartBanner.hidden = !value;
    if (value) {
      byId('restart-text').textContent = `Your next message restarts from entry ${value.entryId}, as a new conversation.`;
    } else {
      for (const other of transcript.querySelectorAll('.restart-point')) other.classList.remove('restart-point');
    }
  }

  // -- attachments and settings --------------------------------------------------------------------
  function renderAttachments() {
    attachmentList.replaceChildren(...attachments.map((item, n) => h('li', {},
      `📎 ${item.file.name}`,
      h('button', { type: 'button', class: 'link', 'aria-label': `Remove ${item.file.name}`,
        onclick: () => { attachments.splice(n, 1); renderAttachments(); } }, '×'))));
  }

  function syncSettings() {
    const usingAgent = Boolean(agentSelect.value);
    byId('model-field').hidden = usingAgent;
    byId('tools-field').hidden = usingAgent;
  }

  // What a first visit (and a new conversation) shows: which model answers, how to connect a real
  // one, and prompts to start from.
  function showWelcome() {
    const provider = (ctx.config && ctx.config.model_provider) || 'offline';
    const offline = provider === 'offline';
    const examples = EXAMPLES.map((text) => h('button', { type: 'button', class: 'link example',
      onclick: () => { message.value = text; message.focus(); } }, text));
    transcript.replaceChildren(h('li', { class: 'welcome', id: 'welcome' },
      h('h3', {}, offline ? 'No model is connected: the offline model answers' : `Connected to ${provider === 'mistral' ? "Mistral's API" : 'an OpenAI-compatible server'}`),
      offline ? h('p', {}, 'It runs the ```python blocks of your message in the sandbox and shows what they printed, so you can try the interpreter now. To talk to a real model, start the server with a key:') : null,
      offline ? h('pre', { tabindex: 0 }, 'MISTRAL_API_KEY=... make serve\n# or any OpenAI-compatible server:\nLLM_BASE_URL=http://127.0.0.1:11434/v1 make serve') : null,
      h('p', {}, 'Try one of these:'), h('div', { class: 'examples' }, examples)));
  }

  const agentNames = new Map();

  function showAgents(agents) {
    for (const a of agents) agentNames.set(a.id, a.name);
    const chosen = agentSelect.value;
    agentSelect.replaceChildren(h('option', { value: '' }, 'none: a model with the tools below'),
      ...agents.map((a) => h('option', { value: a.id }, `${a.name} (${a.model}, v${a.version})`)));
    agentSelect.value = agents.some((a) => a.id === chosen) ? chosen : '';
    syncSettings();
  }

  form.addEventListener('submit', (event) => { event.preventDefault(); submit(); });
  message.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); submit(); }
  });
  attach.addEventListener('change', () => {
    attachments.push(...Array.from(attach.files).map((file) => ({ file })));
    attach.value = '';
    renderAttachments();
  });
  agentSelect.addEventListener('change', syncSettings);
  stop.addEventListener('click', () => { if (controller) controller.abort(); });
  renameButton.addEventListener('click', rename);
  // Files dropped on the composer are attached, as the file picker attaches them.
  form.addEventListener('dragover', (event) => { event.preventDefault(); form.classList.add('dragging'); });
  form.addEventListener('dragleave', () => form.classList.remove('dragging'));
  form.addEventListener('drop', (event) => {
    event.preventDefault();
    form.classList.remove('dragging');
    const dropped = Array.from((event.dataTransfer && event.dataTransfer.files) || []);
    if (!dropped.length) return;
    attachments.push(...dropped.map((file) => ({ file })));
    renderAttachments();
  });
  byId('new-conversation').addEventListener('click', () => newConversation());
  byId('restart-cancel').addEventListener('click', () => { setRestart(null); message.focus(); });

  showWelcome();
  return { refreshList, newConversation, showAgents, focus: () => message.focus() };
}
