// The meeting page joins as a guest with the meeting code, having ticked "I will share my screen" (a synthetic
// screen), waits until the tile labelled "<PRESENTER>'s screen" has shown FRAMES frames and until its own
// screen is being sent (the host made it a presenter), draws a stroke on that tile with the pointer, waits
// for the relay's echo of it, then stays until the meeting ends (or TIMEOUT).
//   node meeting.mjs BASE_URL CODE NAME PRESENTER [FRAMES=20] [TIMEOUT=60]
// Prints {"ok":true,"participant":N,"frames":N,"track":N,"stroke":{"from":[x,y],"to":[x,y]},"drawn_pixels":N,
// "final_status":...}: `stroke` holds the normalised coordinates (0..65535) of the stroke's ends computed here,
// independently of the page, from the picture's displayed rectangle.

import { launch, done, fail, deadline, run, watch, until, intArg } from './lib.mjs';

const [base, code, name, presenter, framesArg, timeoutArg] = process.argv.slice(2);
if (!base || !code || !name || !presenter) fail('usage: node meeting.mjs BASE_URL CODE NAME PRESENTER [FRAMES] [TIMEOUT]');
const want = intArg(framesArg, 'FRAMES', 20);
const timeout = intArg(timeoutArg, 'TIMEOUT', 60);
const label = `${presenter}'s screen`;

let page = null;
let log = null;
let last = {};
const snapshot = async () => page?.evaluate((label) => {
  const b = document.body.dataset;
  const tiles = [...document.querySelectorAll('#tiles figure')].map((f) => ({
    label: f.querySelector('figcaption').textContent,
    hidden: f.hidden,
    track: f.dataset.track === undefined ? null : Number(f.dataset.track),
    frames: Number(f.dataset.frames || 0),
  }));
  const tile = tiles.find((t) => !t.hidden && t.label === label);
  return {
    state: b.state,
    status: document.getElementById('status').textContent,
    participant: Number(b.participant || 0),
    role: b.role,
    sharing: b.sharing,
    annotations: Number(b.annotations || 0),
    frames: tile ? tile.frames : 0,
    track: tile ? tile.track : null,
    tiles,
    chat: [...document.querySelectorAll('#chat li')].map((li) => li.textContent),
  };
}, label).catch(() => null);
deadline(timeout, () => ({ ...last, log }));

const over = (s) => s.state === 'error' || s.state === 'ended';

run(async () => {
  const browser = await launch();
  page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  log = watch(page, 'meeting');
  const q = new URLSearchParams({ code, name, synthetic: '1', share: '1', autostart: '1' });
  await page.goto(`${base}/meeting?${q}`);
  const poll = setInterval(async () => { last = (await snapshot()) || last; }, 500);
  await until(page, () => ['joined', 'error', 'ended'].includes(document.body.dataset.state), null, timeout * 1000);
  last = await snapshot();
  if (last.state !== 'joined') return fail(`the page did not join: ${last.status}`, { ...last, log });

  // The presenter's share, labelled with their name, shows frames.
  await until(page, ([label, n]) => {
    const s = document.body.dataset.state;
    const tile = [...document.querySelectorAll('#tiles figure')]
      .find((f) => !f.hidden && f.querySelector('figcaption').textContent === label);
    return s === 'error' || s === 'ended' || Number(tile?.dataset.frames || 0) >= n;
  }, [label, want], timeout * 1000);
  last = await snapshot();
  if (over(last) || last.frames < want) return fail(`no frames in "${label}": ${last.status}`, { ...last, log });

  // The host makes this guest a presenter: the page starts sending its screen.
  await until(page, () => document.body.dataset.sharing === 'sending' || ['error', 'ended'].includes(document.body.dataset.state),
    null, timeout * 1000);
  last = await snapshot();
  if (last.sharing !== 'sending') return fail(`the page is not sharing: ${last.status}`, { ...last, log });

  // Draw on the presenter's tile: a drag from 25 %/25 % to 60 %/50 % of the picture.
  await page.getByLabel('Draw on the screens', { exact: true }).check();
  const tile = page.locator('#tiles figure', { has: page.locator('figcaption', { hasText: label }) }).first();
  await tile.scrollIntoViewIfNeeded();
  const box = await tile.evaluate((f) => {
    const v = f.querySelector('video');
    const r = v.getBoundingClientRect();
    const s = v.videoWidth && v.videoHeight ? Math.min(r.width / v.videoWidth, r.height / v.videoHeight) : 0;
    if (!s) return { left: r.left, top: r.top, w: r.width, h: r.height };
    const w = v.videoWidth * s;
    const h = v.videoHeight * s;
    return { left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, w, h };
  });
  const at = (fx, fy) => {
    const px = fx * (box.w - 1);
    const py = fy * (box.h - 1);
    return { x: box.left + px, y: box.top + py, nx: Math.round((px * 65535) / (box.w - 1)), ny: Math.round((py * 65535) / (box.h - 1)) };
  };
  const from = at(0.25, 0.25);
  const to = at(0.6, 0.5);
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  for (let i = 1; i <= 10; i++) {
    await page.mouse.move(from.x + ((to.x - from.x) * i) / 10, from.y + ((to.y - from.y) * i) / 10);
  }
  await page.mouse.up();
  // The relay echoes the stroke to its sender too (docs/PROTOCOL.md section 8.1).
  await until(page, () => Number(document.body.dataset.annotations || 0) >= 1 || ['error', 'ended'].includes(document.body.dataset.state),
    null, timeout * 1000);
  const drawn = await tile.evaluate((f) => {
    const c = f.querySelector('canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n += 1;
    return n;
  });
  last = await snapshot();
  if (last.annotations < 1) return fail(`the stroke was not echoed: ${last.status}`, { ...last, log });
  const result = { ...last, stroke: { from: [from.nx, from.ny], to: [to.nx, to.ny] }, drawn_pixels: drawn, picture: box };

  // Stay in the meeting, sharing, until it ends.
  await until(page, () => ['error', 'ended'].includes(document.body.dataset.state), null, timeout * 1000);
  clearInterval(poll);
  last = await snapshot();
  return done({ ...result, state: last.state, final_status: last.status, chat: last.chat, console_errors: log.errors });
});
