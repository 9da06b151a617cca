// The customer's page shares a synthetic screen (an animated canvas) with the code given, allowing control,
// waits until the technician is connected, keeps sharing for SECONDS, then closes the browser.
//   node customer.mjs BASE_URL CODE [SECONDS=10] [TIMEOUT=60]
// Prints {"ok":true,"state":...,"inputs":N,"annotations":N,"drawn_pixels":N,"chat":[...],"shared_seconds":S}:
// INPUT events and ANNOTATIONs the page received, the pixels drawn on the overlay over the preview, and the
// chat log's lines.

import { launch, done, fail, deadline, run, watch, until, intArg } from './lib.mjs';

const [base, code, secondsArg, timeoutArg] = process.argv.slice(2);
if (!base || !code) fail('usage: node customer.mjs BASE_URL CODE [SECONDS] [TIMEOUT]');
const seconds = intArg(secondsArg, 'SECONDS', 10);
const timeout = intArg(timeoutArg, 'TIMEOUT', 60);

let page = null;
let log = null;
const snapshot = async () => page?.evaluate(() => ({
  state: document.body.dataset.state,
  status: document.getElementById('status').textContent,
  inputs: Number(document.body.dataset.inputs || 0),
  annotations: Number(document.body.dataset.annotations || 0),
  drawn_pixels: (() => {
    const c = document.getElementById('overlay');
    if (!c.width || !c.height) return 0;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) n += 1;
    return n;
  })(),
  chat: [...document.querySelectorAll('#chat li')].map((li) => li.textContent),
})).catch(() => ({}));

let last = {};
deadline(timeout, () => ({ ...last, log }));

run(async () => {
  const browser = await launch();
  page = await browser.newPage({ viewport: { width: 1024, height: 768 } });
  log = watch(page, 'customer');
  const q = new URLSearchParams({ code, synthetic: '1', autostart: '1', allow_control: '1' });
  await page.goto(`${base}/customer?${q}`);
  // Connected, or failed: either ends the wait.
  await until(page, () => ['connected', 'error', 'ended'].includes(document.body.dataset.state), null, timeout * 1000);
  last = await snapshot();
  if (last.state !== 'connected') return fail(`the technician did not connect: ${last.status}`, { ...last, log });
  const started = Date.now();
  while (Date.now() - started < seconds * 1000) {
    await page.waitForTimeout(250);
    last = await snapshot();
    if (last.state === 'ended' || last.state === 'error') {
      return fail(`the session ended while sharing: ${last.status}`, { ...last, log });
    }
  }
  return done({ ...last, shared_seconds: (Date.now() - started) / 1000, console_errors: log.errors });
});
