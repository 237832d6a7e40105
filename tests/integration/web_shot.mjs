// A screenshot of the live page (docs/WEB.md) in Debian's chromium, through
// playwright-core (tests/npm): node web_shot.mjs URL OUT.png [WIDTH HEIGHT].
// Waits until the page has drawn a few snapshots. Used by tools/web-screenshots.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '../npm/package.json'));
const { chromium } = require('playwright-core');
const [url, out, width = '1440', height = '1000'] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.KAIROS_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const page = await browser.newPage({ viewport: { width: Number(width), height: Number(height) } });
await page.goto(url);
await page.waitForFunction(() => window.kairosStats && window.kairosStats.frames >= 20, null, { timeout: 60000 });
await page.screenshot({ path: out, fullPage: true });
await browser.close();
