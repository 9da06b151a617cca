// The technician's page connects with a technician token, waits until at least FRAMES video frames of the
// customer's screen were shown and the customer allows control, then makes the picture's frame 4:3 (so a
// 16:9 picture is letterboxed) and clicks the picture at the given fractions of its width and height
// (default: the centre and two points near corners); then presses "Request keyframe" and "End session".
//   node technician.mjs BASE_URL TOKEN [FRAMES=20] [CLICKS="0.5,0.5;0.1,0.1;0.9,0.8"] [TIMEOUT=60]
// Prints {"ok":true,"frames":N,"clicks":[{"fx","fy","x","y"}],"chat":[...],"state":"ended",...}, x and y being
// the normalised coordinates (0..65535) of each click computed here, independently of the page, from the
// picture's displayed rectangle.

import { launch, done, fail, deadline, run, watch, until, intArg } from './lib.mjs';

const [base, token, framesArg, clicksArg, timeoutArg] = process.argv.slice(2);
if (!base || !token) fail('usage: node technician.mjs BASE_URL TOKEN [FRAMES] [CLICKS] [TIMEOUT]');
const want = intArg(framesArg, 'FRAMES', 20);
const timeout = intArg(timeoutArg, 'TIMEOUT', 60);
const clicks = (clicksArg || '0.5,0.5;0.1,0.1;0.9,0.8').split(';').map((p) => {
  const [fx, fy] = p.split(',').map(Number);
  if (!(fx >= 0 && fx <= 1 && fy >= 0 && fy <= 1)) fail(`bad click ${p}: CLICKS is x,y pairs in 0..1 separated by ";", e.g. 0.5,0.5;0.1,0.1`);
  return { fx, fy };
});

let page = null;
let log = null;
let last = {};
const snapshot = async () => page?.evaluate(() => ({
  state: document.body.dataset.state,
  control: document.body.dataset.control,
  frames: Number(document.body.dataset.frames || 0),
  status: document.getElementById('status').textContent,
  chat: [...document.querySelectorAll('#chat li')].map((li) => li.textContent),
})).catch(() => ({}));
deadline(timeout, () => ({ ...last, log }));

run(async () => {
  const browser = await launch();
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  log = watch(page, 'technician');
  await page.goto(`${base}/technician?${new URLSearchParams({ token, autostart: '1' })}`);
  const poll = setInterval(async () => { last = (await snapshot()) || last; }, 500);
  await until(page, (n) => {
    const s = document.body.dataset.state;
    return s === 'error' || s === 'ended' || Number(document.body.dataset.frames) >= n;
  }, want, timeout * 1000);
  last = await snapshot();
  if (last.frames < want) return fail(`no video: ${last.status}`, { ...last, log });
  await until(page, () => document.body.dataset.control === 'allowed' || document.body.dataset.state === 'ended',
    null, timeout * 1000);
  last = await snapshot();
  if (last.control !== 'allowed') return fail(`control is not allowed: ${last.status}`, { ...last, log });

  // A 4:3 stage letterboxes the 16:9 picture: the page must map clicks to the picture, not to the element.
  await page.evaluate(() => { document.querySelector('.stage').style.aspectRatio = '4 / 3'; });
  await page.waitForTimeout(300);
  // The picture's rectangle on the page (object-fit: contain inside the video element's box).
  const box = await page.evaluate(() => {
    const v = document.getElementById('remote');
    const r = v.getBoundingClientRect();
    // No picture size yet (FRAMES=0): the whole element, as the page assumes too.
    const s = v.videoWidth && v.videoHeight ? Math.min(r.width / v.videoWidth, r.height / v.videoHeight) : 0;
    if (!s) return { left: r.left, top: r.top, w: r.width, h: r.height, vw: 0, vh: 0 };
    const w = v.videoWidth * s;
    const h = v.videoHeight * s;
    return { left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2, w, h, vw: v.videoWidth, vh: v.videoHeight };
  });
  const done_clicks = [];
  for (const { fx, fy } of clicks) {
    const px = Math.min(box.w - 1, fx * (box.w - 1));
    const py = Math.min(box.h - 1, fy * (box.h - 1));
    await page.mouse.click(box.left + px, box.top + py);
    done_clicks.push({ fx, fy, x: Math.round((px * 65535) / (box.w - 1)), y: Math.round((py * 65535) / (box.h - 1)) });
    await page.waitForTimeout(200);
  }
  // Let the clicks leave, then ask for a keyframe and end the session.
  await page.waitForTimeout(500);
  await page.getByRole('button', { name: 'Request keyframe', exact: true }).click();
  await page.waitForTimeout(500);
  await page.getByRole('button', { name: 'End session', exact: true }).click();
  await until(page, () => document.body.dataset.state === 'ended', null, 10000);
  // The page waits for the relay's close (or 1.5 s) before it lets go of the connection.
  await page.waitForTimeout(1000);
  clearInterval(poll);
  last = await snapshot();
  return done({ ...last, clicks: done_clicks, picture: box, console_errors: log.errors });
});
