// OpenFeature in the browser: loads @openfeature/web-sdk with
// @openfeature/ofrep-web-provider (bundled here with esbuild, nothing fetched from the
// network) into the example site's /pricing page, and reads pricing-layout through it,
// next to what the page shows and what /bandits/flags.json says for the same browser.
// Usage: node ofrep.mjs http://127.0.0.1:<port>
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { run, layoutOf, flagsJson } from './lib.mjs';

const bundle = await build({
  entryPoints: [fileURLToPath(new URL('./openfeature-entry.mjs', import.meta.url))],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  write: false,
  logLevel: 'error',
});

await run(async (page, site) => {
  await page.goto(`${site}/pricing`);
  const layout = await layoutOf(page);
  const flags = await flagsJson(page);
  await page.addScriptTag({ content: bundle.outputFiles[0].text });
  const openFeature = await page.evaluate(
    ([baseUrl, key]) => window.readThroughOpenFeature(baseUrl, key),
    [site, 'pricing-layout'],
  );
  // A second read, after OpenFeature's: the visitor did not change.
  const after = await flagsJson(page);
  return { layout, flagsJson: flags, openFeature, after };
});
