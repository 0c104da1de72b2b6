// What the browser tests' scripts share: headless Chromium through playwright-core, a
// deadline, and one line of JSON on stdout for tests/tests/browser_pricing.rs to read.
import { chromium } from 'playwright-core';

/** How long a script may take in all before it gives up (the Rust side has its own limit). */
const DEADLINE_MS = 90_000;
/** How long one browser action (a navigation, a wait for an element) may take. */
export const STEP_MS = 20_000;
/**
 * How long Chromium may take to start: a first start on a busy machine (CI right after
 * a cold build) was seen to take over 20 s.
 */
const LAUNCH_MS = 60_000;

/**
 * Runs `test(page, site)` in a fresh headless browser (no cookies, no storage) on the
 * site at `process.argv[2]`, prints its result as one line of JSON and exits 0; on any
 * failure prints the error on stderr and exits 1. The browser is closed on every path.
 */
export async function run(test) {
  const site = process.argv[2];
  if (!site || !/^http:\/\/127\.0\.0\.1:\d+$/.test(site)) {
    console.error(`usage: node ${process.argv[1]} http://127.0.0.1:<port>`);
    process.exit(2);
  }
  let browser = null;
  const deadline = setTimeout(() => {
    console.error(`gave up after ${DEADLINE_MS} ms`);
    const closing = browser ? browser.close() : Promise.resolve();
    closing.finally(() => process.exit(1));
  }, DEADLINE_MS);
  try {
    browser = await chromium.launch({
      executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
      headless: true,
      timeout: LAUNCH_MS,
      // Containers often run without a user namespace for Chromium's sandbox.
      args: ['--no-sandbox'],
    });
    const context = await browser.newContext();
    context.setDefaultTimeout(STEP_MS);
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (error) => errors.push(String(error)));
    const result = await test(page, site);
    result.pageErrors = errors;
    process.stdout.write(JSON.stringify(result) + '\n');
    process.exitCode = 0;
  } catch (error) {
    console.error(error && error.stack ? error.stack : String(error));
    process.exitCode = 1;
  } finally {
    clearTimeout(deadline);
    if (browser) await browser.close().catch(() => {});
  }
}

/** The layout `/pricing` shows: `#plans[data-layout]`, once the page's script set it. */
export async function layoutOf(page) {
  const plans = page.locator('#plans[data-layout]');
  await plans.waitFor({ state: 'attached' });
  return plans.getAttribute('data-layout');
}

/** `GET /bandits/flags.json` from inside the page: the same browser, the same cookie. */
export async function flagsJson(page) {
  return page.evaluate(async () => {
    const response = await fetch('/bandits/flags.json', { credentials: 'same-origin' });
    return { status: response.status, body: await response.json() };
  });
}
