// A visitor on the example site's /pricing page, rendered in the browser from
// /bandits/flags.js: the layout shown, the layout after a reload, then "Buy".
// Usage: node pricing.mjs http://127.0.0.1:<port>
import { run, layoutOf, flagsJson } from './lib.mjs';

await run(async (page, site) => {
  await page.goto(`${site}/pricing`);
  const first = await layoutOf(page);
  await page.reload();
  const reloaded = await layoutOf(page);
  await page.click('#buy');
  const thanks = page.locator('#thanks[data-converted]');
  await thanks.waitFor({ state: 'attached' });
  const flags = await flagsJson(page);
  const cookies = await page.context().cookies();
  return {
    first,
    reloaded,
    thanks: await thanks.textContent(),
    converted: Number(await thanks.getAttribute('data-converted')),
    flagsJson: flags,
    cookies: cookies.map((cookie) => cookie.name),
  };
});
