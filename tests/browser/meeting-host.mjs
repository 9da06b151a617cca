// Two meeting pages in one browser, both sharing a synthetic screen: the host (join token) and a guest
// (meeting code). The host's page makes the guest a presenter; each page then shows the other's screen,
// labelled with its name, for FRAMES frames; the host mutes the guest's share (the guest's page says so), and
// ends the meeting for everyone (the guest's page says so).
//   node meeting-host.mjs BASE_URL HOST_TOKEN CODE [FRAMES=10] [TIMEOUT=60]
// Prints {"ok":true,"host":{...},"guest":{...}} with each page's final state.

import { launch, done, fail, deadline, run, watch, until, intArg } from './lib.mjs';

const [base, token, code, framesArg, timeoutArg] = process.argv.slice(2);
if (!base || !token || !code) fail('usage: node meeting-host.mjs BASE_URL HOST_TOKEN CODE [FRAMES] [TIMEOUT]');
const want = intArg(framesArg, 'FRAMES', 10);
const timeout = intArg(timeoutArg, 'TIMEOUT', 60);
const HOST = 'Dana (browser)';
const GUEST = 'Ana (browser)';

const pages = {};
const logs = {};
const snapshot = (page) => page.evaluate(() => ({
  state: document.body.dataset.state,
  role: document.body.dataset.role,
  sharing: document.body.dataset.sharing,
  status: document.getElementById('status').textContent,
  tiles: [...document.querySelectorAll('#tiles figure')].filter((f) => !f.hidden)
    .map((f) => ({ label: f.querySelector('figcaption').textContent, frames: Number(f.dataset.frames || 0) })),
  chat: [...document.querySelectorAll('#chat li')].map((li) => li.textContent),
})).catch(() => null);
const report = async () => ({
  host: pages.host && (await snapshot(pages.host)),
  guest: pages.guest && (await snapshot(pages.guest)),
  logs,
});
let last = {};
deadline(timeout, () => last);

/** Waits until `page` shows a tile labelled `label` with at least `n` frames. */
const tileFrames = (page, label, n) => until(page, ([label, n]) => {
  const f = [...document.querySelectorAll('#tiles figure')]
    .find((t) => !t.hidden && t.querySelector('figcaption').textContent === label);
  return Number(f?.dataset.frames || 0) >= n || ['error', 'ended'].includes(document.body.dataset.state);
}, [label, n], timeout * 1000);

run(async () => {
  const browser = await launch();
  const poll = setInterval(async () => { last = await report(); }, 1000);
  for (const [who, q] of [
    ['host', { token, name: HOST }],
    ['guest', { code, name: GUEST }],
  ]) {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    logs[who] = watch(page, who);
    await page.goto(`${base}/meeting?${new URLSearchParams({ ...q, synthetic: '1', share: '1', autostart: '1' })}`);
    await until(page, () => ['joined', 'error', 'ended'].includes(document.body.dataset.state), null, timeout * 1000);
    pages[who] = page;
  }
  const { host, guest } = pages;
  last = await report();
  if (last.host.state !== 'joined' || last.guest.state !== 'joined') return fail('a page did not join', last);
  if (last.host.role !== 'host' || last.host.sharing !== 'sending') return fail('the host is not sharing', last);
  if (last.guest.sharing !== 'waiting') return fail('a guest shares only once it presents', last);

  await host.getByRole('button', { name: `Make ${GUEST} a presenter`, exact: true }).click();
  await until(guest, () => document.body.dataset.sharing === 'sending', null, timeout * 1000);
  await tileFrames(host, `${GUEST}'s screen`, want);
  await tileFrames(guest, `${HOST}'s screen`, want);
  last = await report();
  const shows = (s, label) => s.tiles.some((t) => t.label === label && t.frames >= want);
  if (!shows(last.host, `${GUEST}'s screen`)) return fail(`the host does not see ${GUEST}'s screen`, last);
  if (!shows(last.guest, `${HOST}'s screen`)) return fail(`the guest does not see ${HOST}'s screen`, last);

  await host.getByRole('button', { name: new RegExp(`^Mute ${GUEST.replace(/[()]/g, '\\$&')}'s screen \\d+$`) }).click();
  await until(guest, () => [...document.querySelectorAll('#tiles figure')]
    .some((f) => !f.hidden && f.querySelector('figcaption').textContent === 'Your screen (muted by the host)'), null, 10000);

  await host.getByRole('button', { name: 'End the meeting for everyone', exact: true }).click();
  await until(guest, () => document.body.dataset.state === 'ended', null, 10000);
  clearInterval(poll);
  last = await report();
  if (!/ended by the host/.test(last.guest.status)) return fail('the guest was not told who ended the meeting', last);
  const errors = [...logs.host.errors, ...logs.guest.errors, ...logs.host.csp, ...logs.guest.csp];
  if (errors.length) return fail('console errors', { ...last, errors });
  return done({ host: last.host, guest: last.guest });
});
