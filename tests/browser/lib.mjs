// Shared by the browser scripts: loads playwright-core (installed by .ci/browser-setup into
// target/browser-node, or where $PLAYWRIGHT_CORE points), launches Debian's Chromium headless, enforces a
// hard deadline, and prints one JSON result line on stdout (exit 0 on success, 1 on failure).

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The playwright-core module (CommonJS, loaded by absolute path: ESM ignores NODE_PATH). */
export function playwright() {
  const where = process.env.PLAYWRIGHT_CORE || path.join(root, 'target', 'browser-node', 'node_modules', 'playwright-core');
  return createRequire(import.meta.url)(where);
}

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

export const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-default-apps',
  '--disable-quic', '--use-fake-ui-for-media-stream', '--autoplay-policy=no-user-gesture-required',
  // Keep timers and rendering running at full speed for every page, visible or not.
  '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

let browser = null;
let finished = false;

/** Launches Chromium (headless). */
export async function launch() {
  const { chromium } = playwright();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  return browser;
}

async function closeBrowser() {
  const b = browser;
  browser = null;
  if (b) await Promise.race([b.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
}

/** Prints the success line and exits 0. */
export async function done(result = {}) {
  if (finished) return;
  finished = true;
  await closeBrowser();
  console.log(JSON.stringify({ ok: true, ...result }));
  process.exit(0);
}

/** Prints the failure line and exits 1. */
export async function fail(error, extra = {}) {
  if (finished) return;
  finished = true;
  await closeBrowser();
  console.log(JSON.stringify({ ok: false, error: String(error?.stack || error), ...extra }));
  process.exit(1);
}

/** Fails the script after `seconds`, whatever it is doing; `detail()` adds to the report. */
export function deadline(seconds, detail = () => ({})) {
  setTimeout(() => {
    let extra = {};
    try { extra = detail(); } catch { /* best effort */ }
    fail(`timed out after ${seconds} s`, extra);
  }, seconds * 1000);
}

/** Runs `main` and reports an exception as a failure. */
export function run(main) {
  process.on('unhandledRejection', (e) => fail(e));
  main().catch((e) => fail(e));
}

/**
 * Records what a page reports: console errors and warnings, uncaught exceptions, CSP violations, failed
 * requests. Returns the live log.
 */
export function watch(page, name) {
  const log = { errors: [], warnings: [], csp: [], failed: [] };
  page.on('console', (m) => {
    const text = `${name}: ${m.text()}`;
    if (/Content Security Policy|Refused to (load|execute|apply|connect|frame)/i.test(m.text())) log.csp.push(text);
    if (m.type() === 'error') log.errors.push(text);
    else if (m.type() === 'warning') log.warnings.push(text);
  });
  page.on('pageerror', (e) => log.errors.push(`${name}: uncaught ${e.message}`));
  page.on('requestfailed', (r) => log.failed.push(`${name}: ${r.url()} ${r.failure()?.errorText}`));
  return log;
}

/** Polls `fn` in the page until it returns a truthy value (or `timeout` ms pass). */
export async function until(page, fn, arg, timeout) {
  return (await page.waitForFunction(fn, arg, { timeout, polling: 100 })).jsonValue();
}

/** A positive integer argument. */
export function intArg(v, name, dflt) {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a number, not ${v}`);
  return n;
}
