// The API client: every call carries the key (Authorization header, never a URL or a cookie).
// Streams are read with fetch() and parsed here: EventSource cannot send an Authorization header.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function describe(status, body) {
  let detail = '';
  if (body && typeof body === 'object') {
    const message = body.message ?? body.detail;
    if (typeof message === 'string') detail = message;
    else if (message && Array.isArray(message.detail)) {
      detail = message.detail.map((d) => `${(d.loc || []).join('.')}: ${d.msg}`).join('; ');
    } else if (Array.isArray(message)) detail = message.map((d) => `${(d.loc || []).join('.')}: ${d.msg}`).join('; ');
    else if (message) detail = JSON.stringify(message);
  } else if (typeof body === 'string') detail = body.slice(0, 300);
  if (status === 401) {
    return `The API key was refused (HTTP 401): ${detail || 'invalid or missing key'}. Check the API key field.`;
  }
  if (status === 429) return `Too many requests (HTTP 429): ${detail} Wait a moment and try again.`;
  return `${detail || 'request failed'} (HTTP ${status})`;
}

async function failure(response) {
  const text = await response.text();
  let body = text;
  try { body = JSON.parse(text); } catch { /* not JSON: keep the text */ }
  return new ApiError(response.status, describe(response.status, body));
}

// base: where the API is (beside the page). streamBase: where turns are streamed from, when not
// from base (in AWS, the function URL: API Gateway would deliver the whole stream at the end).
export function createApi(base, getKey, streamBase = null) {
  function url(path, query, root = base) {
    const target = new URL(path.replace(/^\//, ''), root);
    for (const [name, value] of Object.entries(query || {})) target.searchParams.set(name, String(value));
    return target;
  }

  function headers(extra) {
    const key = getKey();
    if (!key) throw new ApiError(401, 'Type your API key in the API key field first.');
    return { Authorization: `Bearer ${key}`, ...extra };
  }

  async function request(method, path, { json, form, query } = {}) {
    const init = { method, headers: headers(json !== undefined ? { 'Content-Type': 'application/json' } : {}) };
    if (json !== undefined) init.body = JSON.stringify(json);
    if (form !== undefined) init.body = form;
    let response;
    try {
      response = await fetch(url(path, query), init);
    } catch (error) {
      throw new ApiError(0, `The server did not answer (${error.message}). Is it running?`);
    }
    if (!response.ok) throw await failure(response);
    if (response.status === 204) return null;
    return response.json();
  }

  async function blob(path) {
    const response = await fetch(url(path), { headers: headers({ Accept: 'application/octet-stream' }) });
    if (!response.ok) throw await failure(response);
    return response.blob();
  }

  // POSTs a turn with stream: true and calls onEvent({event, data}) for each SSE block as it arrives.
  // Aborting ``signal`` closes the stream: the server cancels the turn and stores none of it.
  async function stream(path, body, onEvent, signal) {
    let response;
    try {
      response = await fetch(url(path, undefined, streamBase || base), {
        method: 'POST',
        headers: headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
        body: JSON.stringify({ ...body, stream: true }),
        signal,
      });
    } catch (error) {
      if (error.name === 'AbortError') throw error;
      throw new ApiError(0, `The server did not answer (${error.message}). Is it running?`);
    }
    if (!response.ok) throw await failure(response);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (value) buffer += value;
      let end;
      while ((end = blockEnd(buffer)) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end).replace(/^(\r?\n){2}/, '');
        const event = parseBlock(block);
        if (event) onEvent(event);
      }
      if (done) break;
    }
    const last = parseBlock(buffer);
    if (last) onEvent(last);
  }

  return {
    get: (path, query) => request('GET', path, { query }),
    post: (path, json, query) => request('POST', path, { json, query }),
    patch: (path, json, query) => request('PATCH', path, { json, query }),
    del: (path) => request('DELETE', path),
    upload: (path, form) => request('POST', path, { form }),
    blob,
    stream,
  };
}

function blockEnd(buffer) {
  const match = /\r?\n\r?\n/.exec(buffer);
  return match ? match.index : -1;
}

// One SSE block: "event:" and "data:" lines; comments (":") and other fields are ignored.
export function parseBlock(block) {
  let event = 'message';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  if (!data.length) return null;
  try {
    return { event, data: JSON.parse(data.join('\n')) };
  } catch {
    return { event: 'conversation.response.error', data: { message: `unreadable event from the server: ${data.join(' ').slice(0, 200)}` } };
  }
}
