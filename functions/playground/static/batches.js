// Batch jobs: submit inline requests or a JSONL file, watch progress, download results, cancel.

import { byId, h, when } from './dom.js';

const TERMINAL = new Set(['SUCCESS', 'FAILED', 'TIMEOUT_EXCEEDED', 'CANCELLED']);
const POLL_MS = 1000;

// The job's state as a person reads it, from the status and the counts Mistral's API reports. In a
// cancelled job the requests that never ran count as failed there: they are said as such, in grey.
export function jobState(job) {
  const total = job.total_requests || 0;
  const ok = job.succeeded_requests || 0;
  const failed = job.failed_requests || 0;
  const done = job.completed_requests ?? ok + failed;
  const cancelled = job.status === 'CANCELLED' || job.status === 'CANCELLATION_REQUESTED';
  const label = {
    QUEUED: 'Queued', RUNNING: 'Running', CANCELLATION_REQUESTED: 'Cancelling',
    CANCELLED: 'Cancelled', TIMEOUT_EXCEEDED: 'Timed out',
    FAILED: 'Failed', SUCCESS: failed ? 'Finished with failures' : 'Finished',
  }[job.status] || job.status;
  const parts = [`${ok} of ${total} succeeded`];
  if (failed) parts.push(cancelled ? `${failed} failed or cancelled` : `${failed} failed`);
  if (done < total) parts.push(`${total - done} ${cancelled ? 'not run' : 'to go'}`);
  return { label, counts: parts.join(' · '), bad: job.status === 'FAILED' || (!cancelled && failed > 0), cancelled };
}

export function parseRequests(text) {
  const requests = [];
  text.split('\n').forEach((line, n) => {
    if (!line.trim()) return;
    let parsed;
    try { parsed = JSON.parse(line); } catch { throw new Error(`line ${n + 1} is not JSON`); }
    if (!parsed || typeof parsed !== 'object' || typeof parsed.body !== 'object') {
      throw new Error(`line ${n + 1}: each line is an object with a "body" (and a "custom_id")`);
    }
    requests.push(parsed);
  });
  if (!requests.length) throw new Error('give at least one request, or a JSONL file');
  return requests;
}

export function mountBatches(ctx) {
  const { api } = ctx;
  const list = byId('batch-list');
  const agentSelect = byId('batch-agent');
  let timer = null;

  function progress(job) {
    const total = job.total_requests || 0;
    const ok = job.succeeded_requests || 0;
    const failed = job.failed_requests || 0;
    const { cancelled } = jobState(job);
    const bar = h('div', { class: 'progress', role: 'progressbar', 'aria-label': `Progress of ${job.id}`,
      'aria-valuemin': 0, 'aria-valuemax': total, 'aria-valuenow': ok + failed,
      'aria-valuetext': jobState(job).counts });
    const okBar = h('span', { class: 'ok' });
    const failedBar = h('span', { class: cancelled ? 'cancelled' : 'failed' });
    okBar.style.width = `${total ? (100 * ok) / total : 0}%`; // CSSOM, not a style attribute: CSP allows it
    failedBar.style.width = `${total ? (100 * failed) / total : 0}%`;
    bar.append(okBar, failedBar);
    return bar;
  }

  function row(job) {
    const download = (fileId, label) => h('button', { type: 'button', class: 'link',
      onclick: () => ctx.download(fileId, `${job.id}-${label}.jsonl`) }, `Download ${label}`);
    const state = jobState(job);
    return h('li', { class: 'job', dataset: { id: job.id, status: job.status } },
      h('div', { class: 'job-head' }, h('strong', { class: state.bad ? 'state bad' : 'state' }, state.label), ' ',
        h('code', {}, job.id),
        h('span', { class: 'when' }, ` ${job.agent_id ? `agent ${job.agent_id}` : job.model} · ${when(job.created_at)}`)),
      progress(job),
      h('div', { class: 'counts' }, state.counts),
      h('div', { class: 'row' },
        job.output_file ? download(job.output_file, 'output') : null,
        job.error_file ? download(job.error_file, 'errors') : null,
        TERMINAL.has(job.status) || job.status === 'CANCELLATION_REQUESTED' ? null
          : h('button', { type: 'button', onclick: () => cancel(job.id) }, 'Cancel')));
  }

  async function refresh() {
    clearTimeout(timer);
    let page;
    try {
      page = await api.get('v1/batch/jobs', { page: 0, page_size: 20 });
    } catch (error) {
      ctx.notify(error);
      return;
    }
    const jobs = page.data || [];
    list.replaceChildren(...jobs.map(row));
    if (jobs.some((job) => !TERMINAL.has(job.status))) timer = setTimeout(refresh, POLL_MS);
  }

  async function cancel(id) {
    try {
      await api.post(`v1/batch/jobs/${encodeURIComponent(id)}/cancel`);
    } catch (error) {
      ctx.notify(error);
    }
    await refresh();
  }

  byId('batch-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    ctx.clearNotice();
    const body = { endpoint: '/v1/conversations' };
    try {
      const file = byId('batch-file').files[0];
      if (file) {
        const form = new FormData();
        form.append('purpose', 'batch');
        form.append('file', file, file.name);
        body.input_files = [(await api.upload('v1/files', form)).id];
      } else {
        body.requests = parseRequests(byId('batch-requests').value);
      }
      if (agentSelect.value) body.agent_id = agentSelect.value;
      else {
        body.model = byId('batch-model').value.trim() || 'mistral-medium-latest';
        if (byId('batch-code-interpreter').checked && body.requests) {
          for (const r of body.requests) if (!r.body.tools) r.body.tools = [{ type: 'code_interpreter' }];
        }
      }
      const job = await api.post('v1/batch/jobs', body);
      ctx.say(`Started batch ${job.id} (${job.total_requests} requests).`);
      byId('batch-file').value = '';
      await refresh();
    } catch (error) {
      ctx.notify(error);
    }
  });

  function showAgents(agents) {
    const chosen = agentSelect.value;
    agentSelect.replaceChildren(h('option', { value: '' }, 'none: a model'),
      ...agents.map((a) => h('option', { value: a.id }, `${a.name} (${a.model}, v${a.version})`)));
    agentSelect.value = agents.some((a) => a.id === chosen) ? chosen : '';
  }

  return { refresh, showAgents };
}
