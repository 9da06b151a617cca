// Small DOM helpers shared by the pages.

/** The element with this id. */
export const $ = (id) => document.getElementById(id);

/** The page's query parameters. */
export const params = new URLSearchParams(location.search);

/** A query flag: `?name=1` (or `true`, `yes`). */
export function flag(name) {
  return ['1', 'true', 'yes'].includes((params.get(name) || '').toLowerCase());
}

/**
 * Shows `text` in the status line (an aria-live region) and records `state` on `<body data-state>`, which
 * styles and tests read. `kind` is '', 'ok', 'warn' or 'error'. `code`, the machine-readable error code
 * (e.g. `code_unknown`), is not shown: it is kept on the status line's `data-code` for support and tests.
 */
export function status(text, state, kind = '', code = '') {
  const el = $('status');
  el.textContent = text;
  if (code) el.dataset.code = code;
  else delete el.dataset.code;
  for (const k of ['ok', 'warn', 'error']) el.classList.toggle(k, k === kind);
  if (state) document.body.dataset.state = state;
}

/** Shows an error (an ApiError or any Error) in the status line: its message in words, its code (if any) in
 * the console and on `data-code`. */
export function showError(prefix, e) {
  console.warn(prefix, e.code ? `(${e.code})` : '', e);
  status(`${prefix}: ${e.message || e}`, 'error', 'error', typeof e.code === 'string' ? e.code : '');
}

/** Appends a line to a chat log (`<ol>`), keeping the newest in view. */
export function logLine(list, who, text, kind = '') {
  const li = document.createElement('li');
  if (kind) li.className = kind;
  if (who) {
    const b = document.createElement('strong');
    b.textContent = `${who}: `;
    li.append(b);
  }
  li.append(document.createTextNode(text));
  list.append(li);
  while (list.children.length > 500) list.firstElementChild.remove();
  li.scrollIntoView({ block: 'nearest' });
}

/** Wires a chat form: its text field's value goes to `send(text)`, which returns whether it went. */
export function chatForm(form, input, send) {
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (send(text)) input.value = '';
    input.focus();
  });
}

/** Shows or hides elements (the `hidden` attribute). */
export function show(el, on = true) {
  el.hidden = !on;
}

/** Keeps the overlay `draw()` in step with the element's size. */
export function onResize(el, draw) {
  if (window.ResizeObserver) new ResizeObserver(() => draw()).observe(el);
  else window.addEventListener('resize', draw);
}
