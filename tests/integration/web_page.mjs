// The live page (docs/WEB.md) in a real browser: Debian's chromium driven by
// playwright-core (tests/npm). Run by tests/integration/test_web.cpp against
// a live mesh:
//   node web_page.mjs URL NODES KILL_PID OPERATOR_KEY_HEX [SCREENSHOT_DIR]
// It prints one JSON line of what it saw; the C++ test judges it. It kills
// the node KILL_PID itself, so that the time to OFFLINE on the page is
// measured from the kill.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(join(dirname(fileURLToPath(import.meta.url)), '../npm/package.json'));
const { chromium } = require('playwright-core');

const [url, nodesArg, killPid, keyHex, shots] = process.argv.slice(2);
const nodes = Number(nodesArg);
const out = { console_errors: [], expected_errors: [], steps: [] };
let expectingRefusal = false;  // the wrong key's 403 is logged by the browser, as it should be
const started = Date.now();
const step = (name) => out.steps.push([name, Date.now() - started]);

const browser = await chromium.launch({
  executablePath: process.env.KAIROS_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1440, height: 1100 } });
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    (expectingRefusal && /403/.test(m.text()) ? out.expected_errors : out.console_errors).push(m.text());
  });
  page.on('pageerror', (e) => out.console_errors.push(String(e)));
  page.on('dialog', (d) => d.accept());

  await page.goto(url);
  // Every node in the table and on the circle.
  await page.waitForFunction((n) => document.querySelectorAll('#nodes tbody tr').length === n &&
    document.getElementById('circle').dataset.plotted === String(n), nodes, { timeout: 30000 });
  step('loaded');
  out.rows = await page.$$eval('#nodes tbody tr', (rows) => rows.map((r) => [r.dataset.id, r.children[3].dataset.state]));
  out.title = await page.title();

  // The coherence plot moves: its pixels change as snapshots arrive.
  const plot = () => page.$eval('#plot', (c) => c.toDataURL());
  const before = await plot();
  await page.waitForFunction(() => window.kairosStats.snapshots >= 6, null, { timeout: 20000 });
  const points0 = await page.$eval('#plot', (c) => Number(c.dataset.points));
  await page.waitForFunction((p) => Number(document.getElementById('plot').dataset.points) >= p + 3, points0,
    { timeout: 20000 });
  out.plot_moved = (await plot()) !== before;
  out.plot_points = await page.$eval('#plot', (c) => Number(c.dataset.points));
  step('plot');
  if (shots) await page.screenshot({ path: `${shots}/web-live.png`, fullPage: true });

  // A node killed turns OFFLINE on the page.
  const killed = Date.now();
  process.kill(Number(killPid), 'SIGKILL');
  out.offline_id = await page.waitForFunction(() => {
    const offline = document.querySelector('#nodes tbody td[data-state="OFFLINE"]');
    return offline ? offline.parentElement.dataset.id : null;
  }, null, { timeout: 30000, polling: 50 }).then((h) => h.jsonValue());
  out.offline_ms = Date.now() - killed;
  step('offline');

  // Read-only until signed in: no operator controls shown.
  out.controls_before = await page.isVisible('#signed');
  // A wrong key is refused.
  await page.fill('#op-name', 'operator');
  await page.fill('#op-key', 'ab'.repeat(32));
  expectingRefusal = true;
  await page.click('#signin button[type=submit]');
  await page.waitForFunction(() => /sign-in refused/.test(document.getElementById('notice').textContent), null,
    { timeout: 10000 });
  expectingRefusal = false;
  out.wrong_key = await page.textContent('#notice');
  // The right one signs in; a freeze freezes the nodes still online.
  await page.fill('#op-key', keyHex);
  await page.click('#signin button[type=submit]');
  await page.waitForSelector('#signed', { state: 'visible', timeout: 10000 });
  out.signed_in_as = await page.textContent('#who');
  await page.fill('#scope', 'all');
  await page.click('#freeze');
  await page.waitForFunction(() => /freeze: done|refused/.test(document.getElementById('notice').textContent), null,
    { timeout: 30000 });
  out.freeze_notice = await page.textContent('#notice');
  await page.waitForFunction((n) => document.querySelectorAll('#nodes tbody td[data-state="FROZEN"]').length === n,
    nodes - 1, { timeout: 20000 });
  out.rows_after = await page.$$eval('#nodes tbody tr', (rows) => rows.map((r) => [r.dataset.id, r.children[3].dataset.state]));
  step('frozen');
  if (shots) await page.screenshot({ path: `${shots}/web-signed-in.png`, fullPage: true });
  out.stats = await page.evaluate(() => ({ ...window.kairosStats }));
} catch (e) {
  out.error = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
