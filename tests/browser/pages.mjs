// Loads every page (at a desktop and at a phone's width) and checks: served with the right headers, no
// console error, no uncaught exception, no Content-Security-Policy violation, no failed request, no sideways
// scrolling on a phone, every control named for assistive technology, the main controls found by role and
// name, the keyboard reaches them; the control-message codec against docs/PROTOCOL.md section 12; and the
// error paths a person meets (a wrong code, a wrong password, an account whose setup is pending). With a
// technician's login it signs in, lists the tickets and starts remote assistance on one; with the operator
// key it creates a session.
//   node pages.mjs BASE_URL
// Optional environment: TECH_LOGIN, TECH_PASSWORD, TICKET (a ticket number assigned to that technician);
// SETUP_LOGIN, SETUP_PASSWORD (an account that must first change its password); OPERATOR_KEY; TIMEOUT (s).
// Prints {"ok":true,"pages":[...],"flows":{...}}, or {"ok":false,"error":...,"problems":[...]}.

import { launch, done, fail, deadline, run, watch, until } from './lib.mjs';

const base = process.argv[2];
if (!base) fail('usage: node pages.mjs BASE_URL');
const env = process.env;
const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); return ok; };
deadline(Number(env.TIMEOUT || 90), () => ({ problems }));

const PAGES = {
  '/': [['link', 'Customer'], ['link', 'Technician'], ['link', 'Meeting']],
  '/customer': [['textbox', 'Code from the technician'], ['radio', 'Allow control (mouse and keyboard)'],
    ['radio', 'View only'], ['button', 'Share screen'], ['status', null]],
  '/technician': [['textbox', 'Employee id or e-mail'], ['label', 'Password'], ['button', 'Sign in'],
    ['label', 'Operator key'], ['button', 'Create session'], ['status', null]],
  '/meeting': [['radio', 'With the meeting code (guest)'], ['radio', 'With a join token (staff)'],
    ['textbox', 'Meeting code'], ['textbox', 'Your name'], ['checkbox', 'I will share my screen (presenters and hosts)'],
    ['button', 'Join'], ['status', null]],
};

/** Every interactive element without an accessible name (a simplified computation; getByRole checks more). */
function unnamedControls() {
  const name = (el) => {
    if (el.getAttribute('aria-label')?.trim()) return true;
    const by = el.getAttribute('aria-labelledby');
    if (by && by.split(/\s+/).some((id) => document.getElementById(id)?.textContent.trim())) return true;
    if (el.labels && [...el.labels].some((l) => l.textContent.trim())) return true;
    if (el.tagName === 'BUTTON' || el.tagName === 'A') return el.textContent.trim() !== '';
    return Boolean(el.title?.trim());
  };
  const sel = 'a[href], button, input:not([type=hidden]), select, textarea, [tabindex]:not([tabindex="-1"]), output';
  return [...document.querySelectorAll(sel)].filter((el) => !name(el)).map((el) => el.outerHTML.slice(0, 120));
}

async function loadPage(browser, path, viewport) {
  const page = await browser.newPage({ viewport });
  const log = watch(page, `${path} @${viewport.width}px`);
  const res = await page.goto(base + path, { waitUntil: 'load' });
  await page.waitForTimeout(300); // module scripts run after load
  return { page, log, res };
}

function clean(log, what, allowFailedLoads = false) {
  const errors = allowFailedLoads ? log.errors.filter((e) => !/Failed to load resource/.test(e)) : log.errors;
  check(errors.length === 0, `${what}: console errors ${JSON.stringify(errors)}`);
  check(log.csp.length === 0, `${what}: CSP violations ${JSON.stringify(log.csp)}`);
  if (!allowFailedLoads) check(log.failed.length === 0, `${what}: failed requests ${JSON.stringify(log.failed)}`);
}

async function pageChecks(browser) {
  const results = [];
  for (const [path, controls] of Object.entries(PAGES)) {
    for (const viewport of [{ width: 1280, height: 900 }, { width: 360, height: 740 }]) {
      const what = `${path} at ${viewport.width}px`;
      const { page, log, res } = await loadPage(browser, path, viewport);
      const h = res.headers();
      check(res.status() === 200, `${what}: status ${res.status()}`);
      check(h['content-type'] === 'text/html; charset=utf-8', `${what}: content-type ${h['content-type']}`);
      check(h['cache-control'] === 'no-cache', `${what}: cache-control ${h['cache-control']}`);
      const csp = h['content-security-policy'] || '';
      check(csp.includes("default-src 'self'") && csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'),
        `${what}: content-security-policy ${csp}`);
      for (const [role, name] of controls) {
        const loc = role === 'label' ? page.getByLabel(name, { exact: true })
          : page.getByRole(role, name === null ? {} : { name, exact: true });
        check(await loc.count() === 1, `${what}: no single ${role} named ${JSON.stringify(name)}`);
      }
      const unnamed = await page.evaluate(unnamedControls);
      check(unnamed.length === 0, `${what}: controls without a name ${JSON.stringify(unnamed)}`);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      check(overflow <= 0, `${what}: scrolls sideways by ${overflow}px`);
      clean(log, what);
      results.push({ path, width: viewport.width, title: await page.title() });
      await page.close();
    }
  }
  return results;
}

async function keyboard(browser) {
  // The keyboard alone reaches the share button; Enter with no code asks for it.
  const { page, log } = await loadPage(browser, '/customer', { width: 1280, height: 900 });
  let reached = false;
  for (let i = 0; i < 12 && !reached; i++) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(() => document.activeElement?.id === 'share');
  }
  check(reached, '/customer: Tab does not reach the Share screen button');
  await page.keyboard.press('Enter');
  const focused = await page.evaluate(() => document.activeElement?.id);
  check(focused === 'code', `/customer: Enter without a code should focus the code field, focus is on ${focused}`);
  clean(log, '/customer keyboard');
  await page.close();
}

async function assets() {
  const get = (p) => fetch(base + p);
  for (const [p, type] of [['/assets/protocol.js', 'text/javascript'], ['/assets/app.css', 'text/css'], ['/assets/icon.svg', 'image/svg+xml']]) {
    const r = await get(p);
    check(r.status === 200 && (r.headers.get('content-type') || '').startsWith(type), `${p}: ${r.status} ${r.headers.get('content-type')}`);
    check(r.headers.get('cache-control') === 'no-cache', `${p}: cache-control ${r.headers.get('cache-control')}`);
  }
  const r = await get('/assets/no-such-file.js');
  const body = await r.json().catch(() => null);
  check(r.status === 404 && body?.error?.code === 'not_found', `unknown asset: ${r.status} ${JSON.stringify(body)}`);
}

/** The codec against the byte examples of docs/PROTOCOL.md section 12 (without their 4-byte length). */
async function codec(browser) {
  const { page, log } = await loadPage(browser, '/', { width: 800, height: 600 });
  const out = await page.evaluate(async () => {
    const P = await import('/assets/protocol.js');
    const bytes = (hex) => Uint8Array.from(hex.split(' ').map((b) => parseInt(b, 16)));
    const r = {};
    r.move = P.hex(P.input({ kind: 'move', x: 32768, y: 16384 }));
    r.key = P.hex(P.input({ kind: 'key', pressed: true, modifiers: 3, code: 'KeyA' }));
    r.button = P.hex(P.input({ kind: 'button', button: 1, pressed: false, x: 65535, y: 0 }));
    r.wheel = P.hex(P.input({ kind: 'wheel', dx: -120, dy: 240 }));
    r.text = P.hex(P.input({ kind: 'text', text: 'é' }));
    r.arrow = P.hex(P.annotate({ kind: 'arrow', track: 16, color: 0xff0000ff, width: 655, points: [[16384, 16384], [49152, 32768]] }));
    r.chat = P.hex(P.chat('hi'));
    r.setControl = P.hex(P.setControl(false));
    r.keyframe = P.hex(P.keyframeRequest(0));
    r.end = P.hex(P.endSession());
    r.subscribe = P.hex(P.subscribe(16, true));
    r.fileAnswer = P.hex(P.fileAnswer(1, true, 0));
    const welcome = '81 0f 1e 2d 3c 4b 5a 69 78 87 96 a5 b4 c3 d2 e1 f0 02 00 56 41 51 49 43 44 78 34 74 50 45 74 61 61 58 69 48 6c 71 57 30 77 39 4c 68 38 41 41 41 41 41 45 41 41 41 47 62 65 4a 4b 52 4d 41 2e 77 64 4e 53 6c 78 52 66 39 56 52 79 69 62 47 4c 4b 66 50 5a 4e 30 7a 37 68 34 57 6e 48 33 72 4f 46 76 57 33 45 31 42 41 58 54 41 01 00 00 00 75 30 00 40 00 00 00 01 00 00';
    r.welcome = P.decode(bytes(welcome));
    r.participant = P.decode(bytes('86 00 00 00 02 03 01 00 03 41 6e 61'));
    r.track = P.decode(bytes('87 00 00 00 10 00 00 00 01 01'));
    r.annotation = P.decode(bytes('88 00 00 00 00 00 00 00 01 00 00 00 01 04 00 00 00 10 ff 00 00 ff 02 8f 00 02 40 00 40 00 c0 00 80 00 00 00'));
    r.input = P.decode(bytes('10 04 01 03 00 04 4b 65 79 41'));
    r.trackMid = P.decode(bytes('a0 00 00 00 10 00 01 31'));
    r.close = P.decode(bytes('a1 00 00 00 02 00 05 62 79 65 21 21'));
    r.notice = P.decode(bytes('84 00 00 00 30 00 00 00 03 00 02 6f 6b'));
    r.unknown = P.decode(bytes('7f 01 02'));
    try { P.decode(bytes('87 00 00 00 10')); r.truncated = 'accepted'; } catch { r.truncated = 'refused'; }
    try { P.decode(bytes('83 00 00')); r.trailing = 'accepted'; } catch { r.trailing = 'refused'; }
    return r;
  });
  const want = {
    move: '10 01 80 00 40 00',
    key: '10 04 01 03 00 04 4b 65 79 41',
    button: '10 02 01 00 ff ff 00 00',
    wheel: '10 03 ff 88 00 f0',
    text: '10 05 00 02 c3 a9',
    arrow: '17 04 00 00 00 10 ff 00 00 ff 02 8f 00 02 40 00 40 00 c0 00 80 00 00 00',
    chat: '11 00 02 68 69',
    setControl: '13 00',
    keyframe: '14 00 00 00 00',
    end: '15',
    subscribe: '16 00 00 00 10 01',
    fileAnswer: '19 00 00 00 01 01 00 00 00 00 00 00 00 00',
  };
  for (const [k, v] of Object.entries(want)) check(out[k] === v, `codec ${k}: ${out[k]} != ${v}`);
  const w = out.welcome;
  check(w.name === 'welcome' && w.session === '0f1e2d3c4b5a69788796a5b4c3d2e1f0' && w.role === 'customer'
    && w.resumeToken === 'AQICDx4tPEtaaXiHlqW0w9Lh8AAAAAEAAAGbeJKRMA.wdNSlxRf9VRyibGLKfPZN0z7h4WnH3rOFvW3E1BAXTA'
    && w.controlAllowed === true && w.peerPresent === false && w.resumeGraceMs === 30000
    && w.maxFrameBytes === 4194304 && w.maxMessageBytes === 65536, `codec WELCOME: ${JSON.stringify(w)}`);
  const p = out.participant;
  check(p.participant === 2 && p.role === 'participant' && p.state === 'present' && p.displayName === 'Ana',
    `codec PARTICIPANT: ${JSON.stringify(p)}`);
  check(out.track.track === 16 && out.track.publisher === 1 && out.track.state === 'live', `codec TRACK: ${JSON.stringify(out.track)}`);
  const a = out.annotation;
  check(a.seq === 1 && a.from === 1 && a.annotation.kind === 'arrow' && a.annotation.track === 16
    && a.annotation.color === 0xff0000ff && a.annotation.width === 655
    && JSON.stringify(a.annotation.points) === '[[16384,16384],[49152,32768]]' && a.annotation.text === '',
  `codec ANNOTATION: ${JSON.stringify(a)}`);
  check(JSON.stringify(out.input.event) === '{"kind":"key","pressed":true,"modifiers":3,"code":"KeyA"}', `codec INPUT: ${JSON.stringify(out.input)}`);
  check(out.trackMid.track === 16 && out.trackMid.mid === '1', `codec TRACK_MID: ${JSON.stringify(out.trackMid)}`);
  check(out.close.code === 2 && out.close.codeName === 'session_ended' && out.close.reason === 'bye!!', `codec CLOSE: ${JSON.stringify(out.close)}`);
  check(out.notice.codeName === 'input_view_only' && out.notice.count === 3 && out.notice.message === 'ok', `codec NOTICE: ${JSON.stringify(out.notice)}`);
  check(out.unknown === null, 'codec: an unknown type must decode to null');
  check(out.truncated === 'refused' && out.trailing === 'refused', `codec: malformed bodies ${out.truncated} ${out.trailing}`);
  // Pointer positions map to the picture, not to the letterboxed element (object-fit: contain): a 640x360
  // stream in a 400x400 video shows as 400x225 from y = 87.5.
  const map = await page.evaluate(async () => {
    const B = await import('/assets/board.js');
    const c = document.createElement('canvas');
    c.width = 640;
    c.height = 360;
    const g = c.getContext('2d');
    const v = document.createElement('video');
    v.muted = true;
    Object.assign(v.style, { position: 'fixed', left: '0px', top: '0px', width: '400px', height: '400px', objectFit: 'contain', border: '0', padding: '0', margin: '0' });
    document.body.append(v);
    v.srcObject = c.captureStream(10);
    const paint = setInterval(() => g.fillRect(Math.random() * 600, 0, 5, 5), 50);
    await new Promise((res) => { v.onloadedmetadata = res; });
    clearInterval(paint);
    return {
      rect: B.contentRect(v), centre: B.normalise(v, 200, 199.5), topLeft: B.normalise(v, 0, 87.5),
      bar: B.normalise(v, 200, 50), clamped: B.normalise(v, 200, 50, true), bottomRight: B.normalise(v, 399, 311.5),
    };
  });
  const wantMap = JSON.stringify({
    rect: { x: 0, y: 87.5, w: 400, h: 225 }, centre: { x: 32850, y: 32768 }, topLeft: { x: 0, y: 0 }, bar: null,
    clamped: { x: 32850, y: 0 }, bottomRight: { x: 65535, y: 65535 },
  });
  check(JSON.stringify(map) === wantMap, `letterboxed coordinates: ${JSON.stringify(map)} != ${wantMap}`);
  clean(log, 'codec');
  await page.close();
}

/** Fills `fields` ({id: value}), clicks `button`, waits for one of `states` on <body data-state>; `offers`
 * counts the page's requests to the relay's signaling endpoint. */
async function flow(browser, path, fields, button, states) {
  const { page, log } = await loadPage(browser, path, { width: 1280, height: 900 });
  for (const [id, v] of Object.entries(fields)) await page.fill(`#${id}`, v);
  let offers = 0;
  page.on('request', (r) => { if (new URL(r.url()).pathname === '/api/v1/rtc') offers += 1; });
  await page.click(`#${button}`);
  await until(page, (s) => s.includes(document.body.dataset.state), states, 30000);
  const state = await page.evaluate(() => {
    const el = document.getElementById('status');
    return { state: document.body.dataset.state, status: el.textContent, code: el.dataset.code || '' };
  });
  return { page, log, offers: () => offers, ...state };
}

async function flows(browser) {
  const f = {};
  // A wrong code: the relay's refusal is shown in words; its code is kept on data-code, not shown.
  const codeKept = (status, code) => /^[a-z_0-9]+$/.test(code) && !status.includes(code);
  {
    // Not a code at all: told on the page, before the screen picker and without asking the relay.
    const { page, log, state, status, offers } = await flow(browser, '/customer?synthetic=1', { code: '12' }, 'share', ['idle']);
    f.customer_malformed_code = status;
    check(state === 'idle' && status.startsWith('That is not a code'), `malformed customer code: ${state}: ${status}`);
    check(offers() === 0, `a malformed code reached the relay (${offers()} offers)`);
    clean(log, 'customer malformed code');
    await page.close();
  }
  {
    const { page, log, state, status, code, offers } = await flow(browser, '/customer?synthetic=1', { code: '0000 0000 0000' }, 'share', ['error', 'waiting', 'connected']);
    f.customer_wrong_code = status;
    check(offers() === 1, `a well-formed wrong code is offered to the relay once, not ${offers()} times`);
    check(state === 'error' && codeKept(status, code), `wrong customer code: ${state}: ${status} [${code}]`);
    clean(log, 'customer wrong code', true);
    await page.close();
  }
  {
    const { page, log, state, status, code } = await flow(browser, '/meeting?synthetic=1', { code: '0000 0000 0000', name: 'Ana' }, 'join-button', ['error', 'joined']);
    f.meeting_wrong_code = status;
    check(state === 'error' && codeKept(status, code), `wrong meeting code: ${state}: ${status} [${code}]`);
    clean(log, 'meeting wrong code', true);
    await page.close();
  }
  {
    const { page, log, state, status, code } = await flow(browser, '/technician', { login: 'nobody', password: 'wrong password' }, 'login-form button', ['error', 'signed-in']);
    f.wrong_password = status;
    check(state === 'error' && code === 'bad_credentials' && codeKept(status, code), `wrong password: ${state}: ${status} [${code}]`);
    clean(log, 'wrong password', true);
    await page.close();
  }
  if (env.SETUP_LOGIN) {
    const { page, log, state, status } = await flow(browser, '/technician', { login: env.SETUP_LOGIN, password: env.SETUP_PASSWORD }, 'login-form button', ['setup-required', 'signed-in', 'error']);
    f.setup_required = status;
    check(state === 'setup-required', `first login: ${state}: ${status}`);
    clean(log, 'setup required');
    await page.close();
  }
  if (env.TECH_LOGIN) {
    const { page, log, state, status } = await flow(browser, '/technician', { login: env.TECH_LOGIN, password: env.TECH_PASSWORD }, 'login-form button', ['signed-in', 'error', 'setup-required']);
    check(state === 'signed-in', `technician sign-in: ${state}: ${status}`);
    const start = page.getByRole('button', { name: `Start remote assistance for ticket ${env.TICKET}`, exact: true });
    await start.waitFor({ timeout: 10000 });
    await start.click();
    await until(page, () => document.getElementById('code').textContent !== '' || document.body.dataset.state === 'error', null, 10000);
    f.ticket_code = await page.textContent('#code');
    check(/^\d{4} \d{4} \d{4}$/.test(f.ticket_code), `remote assistance from a ticket: code ${f.ticket_code}`);
    // Then the page connects: waiting for the customer once WebRTC works, else the relay's error is shown.
    await until(page, () => ['waiting', 'error'].includes(document.body.dataset.state), null, 20000);
    f.ticket_connect = await page.evaluate(() => `${document.body.dataset.state}: ${document.getElementById('status').textContent}`);
    clean(log, 'technician with a ticket', true);
    await page.close();
  }
  if (env.OPERATOR_KEY) {
    const { page, log } = await flow(browser, '/technician', { 'operator-key': env.OPERATOR_KEY }, 'key-form button', ['waiting', 'connecting', 'error', 'connected']);
    f.operator_code = await page.textContent('#code');
    check(/^\d{4} \d{4} \d{4}$/.test(f.operator_code), `session with the operator key: code ${f.operator_code}`);
    clean(log, 'technician with the operator key', true);
    await page.close();
  }
  return f;
}

run(async () => {
  const browser = await launch();
  const pages = await pageChecks(browser);
  await keyboard(browser);
  await assets();
  await codec(browser);
  const f = await flows(browser);
  if (problems.length) return fail(`${problems.length} problem(s)`, { problems, flows: f });
  return done({ pages: pages.length, flows: f });
});
