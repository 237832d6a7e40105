// Browser tabs on the live page for bench/web_load: node web_tabs.mjs URL TABS SECONDS.
// Opens TABS pages in Debian's chromium (playwright-core from tests/npm),
// prints "measuring" once every tab has drawn, then after SECONDS one JSON
// line: per tab, snapshots drawn per second and animation frames per second.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '../tests/npm/package.json'));
const { chromium } = require('playwright-core');
const [url, tabs, seconds] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.KAIROS_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
// A window each (its own context): Chromium throttles the animation frames
// of tabs behind another in one window, and a user's tabs side by side are not.
const pages = [];
for (let i = 0; i < Number(tabs); i++) {
  const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
  const page = await context.newPage();
  await page.goto(url);
  await page.waitForFunction(() => window.kairosStats && window.kairosStats.frames >= 3, null, { timeout: 60000 });
  pages.push(page);
}
const read = () => Promise.all(pages.map((p) => p.evaluate(() => ({ ...window.kairosStats, at: performance.now() }))));
const before = await read();
console.log('measuring');
await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
const after = await read();
const out = after.map((a, i) => {
  const s = (a.at - before[i].at) / 1000;
  return { draws_per_s: (a.frames - before[i].frames) / s, ticks_per_s: (a.ticks - before[i].ticks) / s,
           snapshots_per_s: (a.snapshots - before[i].snapshots) / s, errors: a.errors.length };
});
console.log(JSON.stringify({ tabs: out }));
await browser.close();
