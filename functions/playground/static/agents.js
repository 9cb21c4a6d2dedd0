// Agents: list, create, edit (each save is a new version), versions and the active one.

import { byId, h, when } from './dom.js';

const ARGS = [['agent-temperature', 'temperature', Number], ['agent-top-p', 'top_p', Number],
  ['agent-max-tokens', 'max_tokens', (v) => parseInt(v, 10)], ['agent-seed', 'random_seed', (v) => parseInt(v, 10)]];

export function mountAgents(ctx) {
  const { api } = ctx;
  const list = byId('agent-list');
  const form = byId('agent-form');
  const versions = byId('agent-versions');
  const versionList = byId('version-list');
  const chat = byId('agent-chat');
  let agents = [];
  let current = null; // the agent being edited, or null for a new one

  async function refresh() {
    try {
      agents = await api.get('v1/agents', { page: 0, page_size: 100 });
    } catch (error) {
      ctx.notify(error);
      return agents;
    }
    list.replaceChildren(...agents.map((agent) => h('li', { class: current && current.id === agent.id ? 'current' : '' },
      h('button', { type: 'button', class: 'open', onclick: () => edit(agent.id) },
        h('span', { class: 'name' }, agent.name), h('span', { class: 'when' }, `${agent.model} · v${agent.version}`)))));
    ctx.agentsChanged(agents);
    return agents;
  }

  function fill(agent) {
    byId('agent-form-title').textContent = agent ? `Agent ${agent.name} (version ${agent.version})` : 'New agent';
    byId('agent-name').value = agent ? agent.name : '';
    byId('agent-model').value = agent ? agent.model : 'mistral-medium-latest';
    byId('agent-description').value = (agent && agent.description) || '';
    byId('agent-instructions').value = (agent && agent.instructions) || '';
    byId('agent-code-interpreter').checked = agent ? (agent.tools || []).some((t) => t.type === 'code_interpreter') : true;
    const args = (agent && agent.completion_args) || {};
    for (const [id, name] of ARGS) byId(id).value = args[name] ?? '';
    byId('agent-save').textContent = agent ? 'Save as a new version' : 'Create agent';
    chat.hidden = !agent;
  }

  async function edit(id) {
    try {
      current = await api.get(`v1/agents/${encodeURIComponent(id)}`);
    } catch (error) {
      ctx.notify(error);
      return;
    }
    fill(current);
    await showVersions();
    for (const item of list.querySelectorAll('li')) item.classList.remove('current');
  }

  async function showVersions() {
    versions.hidden = !current;
    if (!current) return;
    const all = await api.get(`v1/agents/${encodeURIComponent(current.id)}/versions`, { page: 0, page_size: 100 });
    versionList.replaceChildren(...all.map((v) => h('li', {},
      h('span', {}, `Version ${v.version} · ${v.model} · ${when(v.updated_at || v.created_at)}`),
      v.instructions ? h('span', { class: 'muted' }, ` · ${v.instructions.slice(0, 80)}`) : null,
      v.version === current.version
        ? h('strong', { class: 'active' }, ' (active)')
        : h('button', { type: 'button', class: 'link', onclick: () => activate(v.version) },
          `Make version ${v.version} active`))));
  }

  async function activate(version) {
    try {
      current = await api.patch(`v1/agents/${encodeURIComponent(current.id)}/version`, undefined, { version });
      fill(current);
      await showVersions();
      await refresh();
      ctx.say(`Version ${current.version} of ${current.name} is now active.`); // not the last save's message
    } catch (error) {
      ctx.notify(error);
    }
  }

  function request() {
    const others = current ? (current.tools || []).filter((t) => t.type !== 'code_interpreter') : [];
    const tools = byId('agent-code-interpreter').checked ? [...others, { type: 'code_interpreter' }] : others;
    const completionArgs = {};
    for (const [id, name, parse] of ARGS) {
      const raw = byId(id).value.trim();
      if (raw !== '') completionArgs[name] = parse(raw);
    }
    const body = { name: byId('agent-name').value.trim(), model: byId('agent-model').value.trim(),
      instructions: byId('agent-instructions').value, tools, completion_args: completionArgs };
    const description = byId('agent-description').value.trim();
    if (description || current) body.description = description;
    return body;
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    ctx.clearNotice();
    try {
      current = current
        ? await api.patch(`v1/agents/${encodeURIComponent(current.id)}`, request())
        : await api.post('v1/agents', request());
      fill(current);
      await showVersions();
      await refresh();
      ctx.say(`Saved agent ${current.name}, version ${current.version}.`);
    } catch (error) {
      ctx.notify(error);
    }
  });
  byId('new-agent').addEventListener('click', () => { current = null; fill(null); versions.hidden = true; byId('agent-name').focus(); });
  chat.addEventListener('click', () => current && ctx.chatWithAgent(current.id));

  return { refresh };
}
