// The playground: wires the API client (with the key from the API key field), the tabs, and the
// three views. No framework, no build step: ES modules served as files.

import { createApi } from './api.js';
import { mountAgents } from './agents.js';
import { mountBatches } from './batches.js';
import { mountChat } from './chat.js';
import { byId, h } from './dom.js';

const KEY_STORAGE = 'agents-playground-api-key';
// Where the server takes any bearer token (make serve's default), the page uses this one, so the
// SDK can see the same workspace: Mistral(api_key="playground", server_url=...).
const OPEN_MODE_KEY = 'playground';

async function loadConfig() {
  try {
    const response = await fetch('config.json', { cache: 'no-store' });
    if (response.ok) return await response.json();
  } catch { /* fall through: ask for a key, the safe default */ }
  return { keys_required: true };
}

function setupTabs(onShow) {
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  function show(tab) {
    for (const other of tabs) {
      const selected = other === tab;
      other.setAttribute('aria-selected', String(selected));
      other.tabIndex = selected ? 0 : -1;
      byId(other.getAttribute('aria-controls')).hidden = !selected;
    }
    onShow(tab.id);
  }
  tabs.forEach((tab, n) => {
    tab.addEventListener('click', () => show(tab));
    tab.addEventListener('keydown', (event) => { // arrow keys move between tabs (WAI-ARIA tabs pattern)
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step) return;
      const next = tabs[(n + step + tabs.length) % tabs.length];
      next.focus();
      show(next);
    });
  });
  return (id) => show(byId(id));
}

async function main() {
  const config = await loadConfig();
  const keyInput = byId('api-key');
  const alertBox = byId('alert');
  if (config.keys_required) {
    byId('key-box').hidden = false;
    keyInput.value = sessionStorage.getItem(KEY_STORAGE) || '';
  }
  const getKey = () => (config.keys_required ? keyInput.value.trim() : OPEN_MODE_KEY);
  // The API lives beside the page's folder: /v1/... locally, /prod/v1/... behind API Gateway.
  // Turns stream from config.stream_url when the server names one (in AWS, the function URL).
  const streamBase = config.stream_url ? new URL(config.stream_url) : null;
  const api = createApi(new URL('../', window.location.href), getKey, streamBase);

  const ctx = {
    api,
    config,
    notify(error) {
      alertBox.hidden = false;
      alertBox.className = 'alert error';
      alertBox.textContent = error && error.message ? error.message : String(error);
    },
    say(text) {
      alertBox.hidden = false;
      alertBox.className = 'alert info';
      alertBox.textContent = text;
    },
    clearNotice() {
      alertBox.hidden = true;
      alertBox.textContent = '';
    },
    async download(fileId, name) {
      try {
        const blob = await api.blob(`v1/files/${encodeURIComponent(fileId)}/content`);
        const url = URL.createObjectURL(blob);
        const link = h('a', { href: url, download: name || fileId });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
      } catch (error) {
        ctx.notify(error);
      }
    },
    agentsChanged(agents) {
      chat.showAgents(agents);
      batches.showAgents(agents);
    },
    chatWithAgent(agentId) {
      showTab('tab-chat');
      chat.newConversation(agentId);
    },
  };

  const chat = mountChat(ctx);
  const agents = mountAgents(ctx);
  const batches = mountBatches(ctx);
  const showTab = setupTabs((id) => {
    if (id === 'tab-agents') agents.refresh();
    if (id === 'tab-batches') batches.refresh();
  });

  async function loadAll() {
    if (!getKey()) {
      ctx.say('Type your API key in the API key field to start.');
      keyInput.focus();
      return;
    }
    ctx.clearNotice();
    await chat.refreshList();
    await agents.refresh();
    chat.focus(); // where a person starts: the message box
  }

  keyInput.addEventListener('change', () => {
    sessionStorage.setItem(KEY_STORAGE, keyInput.value.trim());
    loadAll();
  });
  await loadAll();
  document.body.dataset.ready = 'true';
}

main();
