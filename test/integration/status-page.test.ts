/**
 * The status page as a person sees it, in a real headless Chromium (Debian's chromium driven by
 * playwright-core): token prompt, fleet counts, the two per-minute charts, recent errors, and the
 * device table with search, against a proxy with simulated devices.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { Fleet } from '../../src/tools/sim/fleet.js';
import { startTestProxy, type TestProxy } from '../helpers/test-proxy.js';
import { STRICT_SIM } from '../helpers/sim.js';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'status-page-test-token';
const dir = mkdtempSync(path.join(os.tmpdir(), 'cup-status-'));
let tp: TestProxy | null = null;
let fleets: Fleet[] = [];
let browser: Browser | null = null;

before(async () => {
  if (!existsSync(CHROMIUM)) return;
  tp = await startTestProxy({ 'admin.token': TOKEN }, { dataDir: dir, admin: true });
  const acsUrl = tp.acsUrl;
  fleets = [
    new Fleet({ quirks: STRICT_SIM, acsUrl, count: 4, model: 'tr181', serialPrefix: 'PAGE', periodicIntervalS: null }),
    new Fleet({ quirks: STRICT_SIM, acsUrl, count: 1, model: 'tr098', serialPrefix: 'LEGACY', periodicIntervalS: null }),
  ];
  for (const f of fleets) await f.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

after(async () => {
  await browser?.close();
  for (const f of fleets) await f.stop();
  await tp?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('the status page shows the fleet, its activity and a searchable device table', async (t) => {
  if (!browser || !tp) return t.skip(`${CHROMIUM} not installed (apt-get install chromium; .ci/run does)`);
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`${tp.adminUrl}/`);

  // A wrong token is refused with a message; the right one opens the page.
  await page.fill('input[name=token]', 'wrong');
  await page.click('button[type=submit]');
  await page.waitForSelector('text=the token was refused');
  await page.fill('input[name=token]', TOKEN);
  await page.click('button[type=submit]');

  await page.waitForSelector('[data-count=total] .n');
  assert.equal(await page.textContent('[data-count=total] .n'), '5');
  assert.equal(await page.textContent('[data-count=online] .n'), '5');
  assert.equal(await page.textContent('[data-model=Device] .n'), '4');
  assert.equal(await page.textContent('[data-model=InternetGatewayDevice] .n'), '1');
  // The Informs/min chart saw the five boot sessions.
  const informs = await page.textContent('[data-chart="Informs/min"] h2');
  assert.match(informs ?? '', /— ([5-9]|\d{2,}) in total/);
  assert.equal(await page.locator('[data-chart="USP requests/min"] svg polyline').count(), 1);

  // Device table: every device, then search narrows it to the TR-098 one.
  assert.equal(await page.locator('tbody tr').count(), 5);
  await page.fill('input[type=search]', 'LEGACY');
  await page.waitForFunction(() => document.querySelectorAll('tbody tr').length === 1);
  const row = page.locator('tbody tr').first();
  assert.match((await row.textContent()) ?? '', /LEGACY000001/);
  assert.match((await row.textContent()) ?? '', /InternetGatewayDevice/);
  assert.match((await row.locator('td').nth(6).textContent()) ?? '', /online/);

  await page.screenshot({ path: process.env.STATUS_SHOT ?? path.join(dir, 'status.png'), fullPage: true });
  assert.equal(await page.locator('text=Loading…').count(), 0, 'the placeholder is gone once data is shown');
  assert.deepEqual(errors, [], 'no script errors on the page');
  await page.close();
});
