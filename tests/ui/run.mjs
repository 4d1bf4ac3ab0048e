// End-to-end browser test of Veritrain's web UI, driving Debian's chromium
// with playwright-core (no browser download). Run against a `veritrain
// serve` in dev mode (the embedded default):
//
//   node tests/ui/run.mjs http://127.0.0.1:8080 [screenshot-dir]
//
// Flow: dev sign-in, a client-side refusal, a server 422 shown at its field,
// submitting the quickstart example, watching it train to `succeeded` with
// curves drawn, the model card, the integrity check, downloading the bundle,
// verifying it on the Verify page (every check passes), verifying a copy
// with one byte of outputs/model.keras flipped (the failure names the file),
// and the Trust page's root fingerprint. Screenshots of every page go to
// docs/screenshots/ (laptop 1366x900; phone 390x844 for jobs, job detail and
// verify). Exit status 0 means every step passed.

import { chromium } from 'playwright-core';
import { createHash, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, '../..');
const base = (process.argv[2] || '').replace(/\/$/, '');
if (!base) { console.error('usage: node tests/ui/run.mjs URL [screenshot-dir]'); process.exit(2); }
const shots = resolve(process.argv[3] || join(repo, 'docs/screenshots'));
mkdirSync(shots, { recursive: true });
const example = (f) => join(repo, 'examples/quickstart', f);
const work = mkdtempSync(join(tmpdir(), 'veritrain-ui-'));
const LAPTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };

function step(msg) { console.log(`ui: ${msg}`); }
function check(cond, msg) { if (!cond) throw new Error(`assertion failed: ${msg}`); }

// CRC-32 (ZIP's), to keep the tampered archive readable: the point is that
// the verifier's digest check catches the change, not the ZIP reader.
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// Flips one byte inside `name`'s data in a stored (uncompressed) ZIP and
// rewrites its CRC in the local header and the central directory.
function tamper(zip, name) {
  const out = Buffer.from(zip);
  let local = -1; let dataStart = 0; let size = 0;
  for (let i = 0; i < out.length - 30; i += 1) {
    if (out.readUInt32LE(i) !== 0x04034b50) continue;
    const n = out.readUInt16LE(i + 26); const x = out.readUInt16LE(i + 28);
    if (out.toString('utf8', i + 30, i + 30 + n) !== name) continue;
    check(out.readUInt16LE(i + 8) === 0, `${name} is stored uncompressed in the bundle`);
    check((out.readUInt16LE(i + 6) & 0x08) === 0, `${name} has no data descriptor`);
    local = i; size = out.readUInt32LE(i + 18); dataStart = i + 30 + n + x;
    if (size === 0xffffffff) {
      // ZIP64 (the bundle writer always uses it): the sizes are in the
      // extra field 0x0001, uncompressed then compressed, 8 bytes each.
      for (let e = i + 30 + n; e < dataStart - 4;) {
        const id = out.readUInt16LE(e); const len = out.readUInt16LE(e + 2);
        if (id === 0x0001) size = Number(out.readBigUInt64LE(e + 4 + 8));
        e += 4 + len;
      }
    }
    break;
  }
  check(local >= 0 && size > 0 && dataStart + size <= out.length, `${name} found in the bundle ZIP`);
  out[dataStart + Math.floor(size / 2)] ^= 0x01;
  const crc = crc32(out.subarray(dataStart, dataStart + size));
  out.writeUInt32LE(crc, local + 14);
  for (let i = 0; i < out.length - 46; i += 1) {
    if (out.readUInt32LE(i) !== 0x02014b50) continue;
    const n = out.readUInt16LE(i + 28);
    if (out.toString('utf8', i + 46, i + 46 + n) === name) out.writeUInt32LE(crc, i + 16);
  }
  return out;
}

const problems = [];
const context = await chromium.launchPersistentContext(join(work, 'profile'), {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: LAPTOP,
  acceptDownloads: true,
});
const page = context.pages()[0] || await context.newPage();
page.setDefaultTimeout(30000);
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('console', (m) => {
  // A CSP violation or a script error is a defect; a failed request the
  // test provoked on purpose (401, 422) is logged by Chromium too.
  if (m.type() === 'error' && !/status of (401|404|422)/.test(m.text())) problems.push(`console: ${m.text()}`);
});
// A value the page forgot to handle shows up as the text "null" or "undefined".
const noStrayNull = async (where) => {
  const stray = await page.evaluate(() => {
    const walk = document.createTreeWalker(document.getElementById('main'), NodeFilter.SHOW_TEXT);
    const out = [];
    for (let n = walk.nextNode(); n; n = walk.nextNode()) if (/^\s*(null|undefined|NaN)\s*$/.test(n.textContent)) out.push(n.parentElement.outerHTML.slice(0, 80));
    return out;
  });
  check(stray.length === 0, `no stray null/undefined on the ${where} page: ${stray.join(' | ')}`);
};
const shot = async (name, opts = {}) => { await page.screenshot({ path: join(shots, `${name}.png`), ...opts }); step(`screenshot ${name}.png`); };

let ok = false;
try {
  // ---- sign-in
  await page.goto(`${base}/`);
  await page.waitForSelector('#dev-signin');
  check(await page.title() === 'Sign in · Veritrain', 'the sign-in page is shown to a signed-out visitor');
  // keyboard: the first Tab reaches the skip link
  await page.keyboard.press('Tab');
  check(await page.evaluate(() => document.activeElement.className) === 'skip', 'Tab reaches the skip link first');
  await shot('signin');
  await page.click('#dev-signin');
  await page.waitForSelector('h1:text("Jobs")');
  check((await page.textContent('#who')).includes('alice'), 'signed in as alice');
  step('dev sign-in ok');

  // ---- submit: client-side checks, then a server 422 next to its field
  await page.click('a[data-nav=submit]');
  await page.waitForSelector('#submit-job');
  await page.click('#submit-job');
  await page.waitForSelector('#name-error p');
  check((await page.textContent('#model-error')).includes('Choose the model file'), 'a missing file is refused before upload');
  await page.setInputFiles('#model', example('model.keras'));
  await page.setInputFiles('#definition', example('job.yaml'));
  await page.setInputFiles('#dataset', example('data.csv'));
  const fill = {
    name: 'quickstart-classifier', version: '1.0.0',
    description: 'A small MLP that tells a greenhouse plant\'s watering state from four sensor readings. A demo of Veritrain, trained on synthetic data.',
    authors: 'Veritrain Demo <demo@example.org>', license: 'Apache-2.0', task: 'classification',
    architecture_family: 'multilayer perceptron', tags: 'demo, quickstart, tabular, synthetic-data',
    base_name: 'quickstart-classifier-untrained', base_version: '1.0.0', base_source: 'examples/quickstart/make.py (random initial weights, seed 20240611)',
    intended_users: 'People trying out Veritrain', use_cases: 'Showing intake, sandboxed training and signed provenance end to end',
    out_of_scope: 'Real greenhouse or plant-care decisions (the training data is made up)',
    misuse: 'Presenting the demo model\'s accuracy as evidence about real plants | The dataset\'s description and licence say the data is synthetic',
    ds_description: 'Synthetic greenhouse sensor readings, 600 rows, three watering states.', ds_source: 'generated by examples/quickstart/make.py', ds_license: 'CC0-1.0',
    epochs: '10', batch_size: '32', seed: '7',
  };
  for (const [k, v] of Object.entries(fill)) await page.fill(`#${k}`, v);
  await page.selectOption('#approach', 'supervised');
  await page.click('#submit-job');
  await page.waitForSelector('#definition-error li');
  const defError = await page.textContent('#definition-error');
  check(defError.includes('definition.missing_key'), `the server's 422 code is shown at the definition field (got ${defError})`);
  check(await page.getAttribute('#definition', 'aria-invalid') === 'true', 'the refused field is marked invalid');
  await shot('submit-refused', { fullPage: true });
  step('422 shown next to the definition field');

  await page.setInputFiles('#definition', example('definition.yaml'));
  await page.click('#submit-job');
  await page.waitForURL(/#\/jobs\/[0-9a-f-]{36}$/);
  const jobId = page.url().split('/').pop();
  step(`submitted job ${jobId}`);

  // ---- job detail: live, then done
  await page.waitForSelector('#epoch-bar');
  try {
    await page.waitForSelector('#live-charts svg.chart', { timeout: 60000 });
    await shot('job-training');
  } catch { step('(the job finished before a live screenshot)'); }
  await page.waitForSelector('section.job[data-loaded=true]', { timeout: 240000 });
  const final = await page.getAttribute('section.job', 'data-done');
  check(final === 'succeeded', `the job succeeded (got ${final})`);
  const curves = await page.locator('#live-charts svg.chart').count();
  check(curves >= 2, `loss and metric curves drawn (${curves})`);
  check(await page.locator('#live-charts svg.chart[data-metric=loss] path.series.val').count() === 1, 'the loss chart has a validation curve');
  check((await page.textContent('#progress-text')).startsWith('Epoch 10 of 10'), 'the epoch bar reached 10 of 10');
  check((await page.locator('.log').textContent()).length > 0, 'the log tail is shown');
  await page.waitForSelector('#model-card');
  const cardText = await page.textContent('#model-card');
  for (const s of ['Purpose', 'Architecture', 'Datasets', 'Metrics', 'Environment', 'Sandbox', 'Intake scan', 'quickstart-greenhouse', 'bubblewrap', 'accepted by the intake scanner', 'Dense(16)']) {
    check(cardText.includes(s), `the model card shows ${s}`);
  }
  check(await page.locator('#model-card svg.chart').count() >= 2, 'the model card has curves from outputs/metrics.json');
  await page.click('#check-now');
  await page.waitForSelector('#integrity-verdict');
  check((await page.textContent('#integrity-verdict')).startsWith('✓'), 'the integrity check passes');
  await noStrayNull('job');
  await shot('job', { fullPage: true });
  step('job succeeded; curves, model card and integrity shown');

  // ---- bundle download
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('button:text("Download bundle (.zip)")')]);
  const bundlePath = join(work, 'bundle.zip');
  await dl.saveAs(bundlePath);
  const bundle = readFileSync(bundlePath);
  check(bundle.readUInt32LE(0) === 0x04034b50, 'the bundle download is a ZIP');
  step(`bundle downloaded (${bundle.length} bytes)`);

  // ---- jobs list
  await page.goto(`${base}/#/jobs`);
  await page.waitForSelector(`tr[data-job="${jobId}"]`);
  await page.waitForSelector(`tr[data-job="${jobId}"] td[data-label=Verification] .ok`);
  await page.fill('input[name=text]', 'no-such-model');
  check(await page.locator('tr[data-job]').count() === 0, 'the text filter hides non-matching jobs');
  await page.fill('input[name=text]', 'quickstart');
  check(await page.locator('tr[data-job]').count() >= 1, 'the text filter keeps matching jobs');
  await shot('jobs');

  // ---- verify: the real bundle, then a tampered copy (signed out works too)
  await page.click('a[data-nav=verify]');
  await page.setInputFiles('#bundle', bundlePath);
  await page.click('#verify-button');
  await page.waitForSelector('#verdict');
  check((await page.textContent('#verdict')).startsWith('✓'), 'the downloaded bundle verifies');
  check(await page.locator('.checks > li.bad').count() === 0, 'no check failed');
  check(await page.locator('.checks > li.ok').count() >= 5, 'every check is listed');
  await shot('verify', { fullPage: true });

  const tamperedPath = join(work, 'tampered.zip');
  writeFileSync(tamperedPath, tamper(bundle, 'outputs/model.keras'));
  await page.setInputFiles('#bundle', tamperedPath);
  await page.click('#verify-button');
  await page.waitForSelector('#verdict.bad');
  const failures = await page.locator('.checks > li.bad .failures').allTextContents();
  check(failures.some((t) => t.includes('outputs/model.keras')), `the failure names outputs/model.keras (got ${JSON.stringify(failures)})`);
  await noStrayNull('verify');
  await shot('verify-tampered', { fullPage: true });
  step('bundle verifies; the tampered copy fails naming outputs/model.keras');

  // ---- trust
  await page.click('a[data-nav=trust]');
  await page.waitForSelector('#root-fingerprint');
  const pem = await (await fetch(`${base}/.well-known/veritrain/root.pub`)).text();
  const der = createPublicKey(pem).export({ type: 'spki', format: 'der' });
  const fp = createHash('sha256').update(der).digest('hex');
  check((await page.textContent('#root-fingerprint')) === fp, 'the root fingerprint is the SHA-256 of root.pub\'s DER');
  check((await page.textContent('#offline-commands')).includes('veritrain verify --root-key root.pub --keyset keyset.dsse.json bundle.zip'), 'the offline command is shown');
  check(await page.locator('#keys .key-active').count() >= 1, 'the key set lists an active key');
  await noStrayNull('trust');
  await shot('trust', { fullPage: true });

  // ---- submit page, filled (for the screenshot)
  await page.click('a[data-nav=submit]');
  await page.waitForSelector('#submit-job');
  for (const [k, v] of Object.entries(fill)) await page.fill(`#${k}`, v);
  await shot('submit');

  // ---- phone
  await page.setViewportSize(PHONE);
  await page.click('a[data-nav=jobs]');
  await page.waitForSelector(`tr[data-job="${jobId}"] td[data-label=Verification] .ok`);
  await shot('phone-jobs');
  await page.click(`tr[data-job="${jobId}"] a`);
  await page.waitForSelector('section.job[data-loaded=true]', { timeout: 60000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 1, `the job page fits a phone's width (overflow ${overflow}px)`);
  await shot('phone-job');
  await page.click('a[data-nav=verify]');
  await page.waitForSelector('#verify-button');
  await shot('phone-verify');

  check(problems.length === 0, `no script errors or CSP violations: ${problems.join(' | ')}`);
  ok = true;
  step('all steps passed');
} catch (e) {
  console.error(`ui: FAILED: ${e.stack || e}`);
  if (problems.length) console.error(`ui: browser problems: ${problems.join(' | ')}`);
  try { await page.screenshot({ path: join(work, 'failure.png'), fullPage: true }); console.error(`ui: failure screenshot ${join(work, 'failure.png')}`); } catch { /* ignore */ }
} finally {
  await context.close();
  if (ok) rmSync(work, { recursive: true, force: true });
}
process.exit(ok ? 0 : 1);
