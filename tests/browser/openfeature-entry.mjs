// Bundled by ofrep.mjs (esbuild, one IIFE) into a page of the site: OpenFeature's web SDK
// with its OFREP provider, as a site would ship them.
import { OpenFeature } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

/** Reads flag `key` through OpenFeature, the OFREP provider pointed at `baseUrl`. */
window.readThroughOpenFeature = async (baseUrl, key) => {
  const provider = new OFREPWebProvider({ baseUrl, cacheMode: 'disabled', changeDetection: 'none' });
  await OpenFeature.setProviderAndWait(provider);
  const client = OpenFeature.getClient();
  const details = client.getObjectDetails(key, { fallback: true });
  const missing = client.getBooleanDetails('no-such-flag', false);
  await OpenFeature.close();
  return { details, missing };
};
