// The page's behaviour: loads /api/info, posts the form to /api/generate, shows the queue position while the
// request waits, then the streamed text and tokens/s; asks for the API key when the server needs one; stops a
// generation by aborting the request (the server then cancels it). Plain ES module.

const $ = (id) => document.getElementById(id);
const form = $('form');
const output = $('output');
const status = $('status');
let controller = null;

const KEY_MISSING = 'This server needs an API key. Enter it in the API key box, then press Generate.';
const KEY_REFUSED = 'The server did not accept that API key. Check it, enter it again, then press Generate.';

/** Shows the API key box and asks for the key in `message`. */
function askForKey(message) {
  $('key-row').hidden = false;
  showStatus(message, true);
  $('api_key').focus();
}

function showStatus(text, isError = false) {
  status.textContent = text;
  status.classList.toggle('error', isError);
}

function bindSliders() {
  for (const input of form.querySelectorAll('label.slider input')) {
    const out = input.parentElement.querySelector('output');
    const show = () => { out.textContent = input.value; };
    input.addEventListener('input', show);
    show();
  }
}

async function loadInfo() {
  const info = await (await fetch('/api/info')).json();
  for (const id of info.models) $('model').append(new Option(id, id, false, id === info.default_model));
  for (const [name, value] of Object.entries(info.defaults)) $(name).value = String(value);
  $('max_new_tokens').max = String(info.max_new_tokens);
  $('key-row').hidden = !info.needs_key;
  bindSliders();
}

function requestBody() {
  const number = (id) => Number($(id).value);
  return {
    instruction: $('instruction').value,
    input: $('input').value || undefined,
    model: $('model').value,
    temperature: number('temperature'),
    top_p: number('top_p'),
    top_k: number('top_k'),
    num_beams: number('num_beams'),
    max_new_tokens: number('max_new_tokens'),
    stream: $('stream').checked,
  };
}

/** Reads server-sent events from a fetch response, calling onEvent with each parsed `data:` payload. */
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = event.split('\n').filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
      if (data) onEvent(JSON.parse(data));
    }
  }
}

function rate(tokens, seconds) {
  return seconds > 0 ? `${tokens} tokens, ${(tokens / seconds).toFixed(1)} tokens/s` : `${tokens} tokens`;
}

async function generate(event) {
  event.preventDefault();
  if (!$('key-row').hidden && !$('api_key').value) return askForKey(KEY_MISSING);
  controller = new AbortController();
  $('generate').disabled = true;
  $('stop').disabled = false;
  output.value = '';
  showStatus('generating…');
  let last = { tokens: 0, seconds: 0 };
  try {
    const headers = { 'Content-Type': 'application/json' };
    if (!$('key-row').hidden) headers.Authorization = `Bearer ${$('api_key').value}`;
    const response = await fetch('/api/generate', { method: 'POST', headers, body: JSON.stringify(requestBody()), signal: controller.signal });
    if (response.status === 401) return askForKey($('api_key').value ? KEY_REFUSED : KEY_MISSING);
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error(body.error?.message ?? `HTTP ${response.status}`);
    }
    await readEvents(response, (data) => {
      if (data.error) throw new Error(data.error.message);
      if (data.queue_position) {
        showStatus(`waiting in the queue: position ${data.queue_position}`);
        return;
      }
      if (data.done) {
        output.value = data.text;
        showStatus(`${rate(data.tokens, data.seconds)} (${data.finish_reason})`);
        return;
      }
      output.value += data.text;
      output.scrollTop = output.scrollHeight;
      last = data;
      showStatus(`generating… ${rate(data.tokens, data.seconds)}`);
    });
  } catch (err) {
    if (err.name === 'AbortError') showStatus(`stopped: ${rate(last.tokens, last.seconds)}`);
    else showStatus(err.message, true);
  } finally {
    controller = null;
    $('generate').disabled = false;
    $('stop').disabled = true;
  }
}

form.addEventListener('submit', generate);
$('stop').addEventListener('click', () => controller?.abort());
loadInfo().catch((err) => showStatus(`could not load the server's settings: ${err.message}`, true));
