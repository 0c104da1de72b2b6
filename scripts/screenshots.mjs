// Screenshots of the admin for README: signs in on a running example site and saves PNGs.
// Run by scripts/screenshots.sh, which starts the site on seeded data.
import { chromium } from "playwright-core";

const base = process.env.SITE ?? "http://127.0.0.1:8123";
const token = process.env.TOKEN ?? "example-site-admin-token";
const out = process.env.OUT ?? "docs/images";

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
async function signedIn(viewport) {
  const page = await browser.newPage({ viewport });
  await page.goto(`${base}/bandits/admin/login`);
  await page.fill("#secret", token);
  await page.click("button[type=submit]");
  await page.waitForURL(`${base}/bandits/admin/`);
  return page;
}
const desktop = await signedIn({ width: 1280, height: 800 });
await desktop.screenshot({ path: `${out}/admin-flags.png`, fullPage: true });
await desktop.goto(`${base}/bandits/admin/flags/headline-flag`);
await desktop.screenshot({ path: `${out}/admin-statistics.png`, fullPage: true });
const phone = await signedIn({ width: 390, height: 844 });
await phone.goto(`${base}/bandits/admin/flags/headline-flag`);
await phone.screenshot({ path: `${out}/admin-statistics-phone.png`, fullPage: true });
await browser.close();
