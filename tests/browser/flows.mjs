// Real-browser tests of the customer-facing pages (spec 4.11 and 4.2): Debian's
// chromium (/usr/bin/chromium), driven by playwright-core, against the running
// test stack named by $PAY_STACK_ENV (tests/stack.sh writes that file).
//
//   (a) payment link: created through the API, opened, checked (owner,
//       description, amount), screenshotted at desktop and phone width, paid
//       with the Pay button, "processing" seen turning into the receipt once
//       the collection engine has the provider's answer, payment and new
//       balance verified through the API; a double-click on Pay pays exactly
//       once; a payment the sandbox fails (amount ending in 13) shows the
//       failure and a Try again button.
//   (b) mandate: a site payment mandate whose returnURL is a tiny HTTP server
//       this script runs on 127.0.0.1; the hosted form is filled in (a wrong
//       sort code first), submitted, the browser lands on returnURL, and the
//       mandate has its mandateReference through the API.
//   Every page: no horizontal scroll at 375 px, no console errors (a CSP
//   violation would show there).
//
// Customers written (no other test touches them): 66 (payment links) and 68
// (site 90, mandate). Every expectation is computed from the state read first,
// so the script passes when run again on the same stack.
//
// Over HTTPS (a stack started with PAY_TLS=1: its env file names PAY_TLS_CA)
// nothing skips certificate checks: Chromium trusts the stack's test CA through
// an NSS database in the HOME it is given (certutil, package libnss3-tools,
// trust "C,,": a CA for server certificates), and this script's own requests
// (fetch, Playwright's request context) through NODE_EXTRA_CA_CERTS, which
// node reads at start-up only: the script runs itself again with it set.
//
// Screenshots go to $PAY_SCREENSHOT_DIR (default: <dir of $PAY_BIN>/screenshots,
// i.e. the build directory). The run ends with the line "N passed, N failed";
// the exit status is 1 when anything failed.
//
//   PAY_STACK_ENV=/tmp/stack/env node tests/browser/flows.mjs
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';

import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 375, height: 740 };
const CUSTOMER_PAY = 66;
const CUSTOMER_MANDATE = 68;
const SITE_MANDATE = 90;

// ---------------------------------------------------------------- results

let passed = 0;
let failed = 0;

function check(cond, what, detail) {
  if (cond) {
    passed++;
  } else {
    failed++;
    console.log(`FAIL: ${what}${detail === undefined ? '' : ' -- ' + JSON.stringify(detail)}`);
  }
  return cond;
}

function eq(got, want, what) {
  return check(got === want, what, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}

// ---------------------------------------------------------------- stack

function loadEnv(file) {
  if (!file || !fs.existsSync(file)) {
    console.log('PAY_STACK_ENV is not set or missing: the stack is not running');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  const env = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = line.match(/^([A-Z_]+)=(.*)$/);
    if (m) env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
  }
  return env;
}

const ENV = loadEnv(process.env.PAY_STACK_ENV);
const BASE = ENV.PAY_BASE_URL;
const TLS_CA = ENV.PAY_TLS_CA || null;
if (TLS_CA && process.env.NODE_EXTRA_CA_CERTS !== TLS_CA) {
  const r = spawnSync(process.execPath, process.argv.slice(1), {
    stdio: 'inherit', env: { ...process.env, NODE_EXTRA_CA_CERTS: TLS_CA },
  });
  process.exit(r.status === null ? 1 : r.status);
}

// A HOME whose NSS database trusts the test CA, for Chromium.
function nssHomeTrusting(home, caFile) {
  const db = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'pay-api test CA', '-t', 'C,,', '-i', caFile]);
  const list = execFileSync('certutil', ['-L', '-d', `sql:${db}`], { encoding: 'utf8' });
  if (!/pay-api test CA\s+C,,/.test(list)) throw new Error(`test CA not trusted in ${db}: ${list}`);
  return home;
}
const SHOTS = process.env.PAY_SCREENSHOT_DIR ||
  path.join(path.dirname(ENV.PAY_BIN), 'screenshots');

function mintToken() {
  return execFileSync(ENV.PAY_BIN, ['--config', ENV.PAY_CONFIG, 'token', '--sub', 'browser',
    '--scope', 'payments:read payments:write', '--contract-owners', '1,2'],
  { encoding: 'utf8' }).trim();
}

const TOKEN = mintToken();

// SQL is only used to make sure the payment providers exist while the e2e
// fixture may not have them yet (the same rule as tests/e2e/test_*.py).
function sql(query) {
  const [cmd, ...args] = ENV.MYSQL_CMD.split(/\s+/);
  const out = execFileSync(cmd, [...args, '-N', '-B', '-e', query], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l !== '').map((l) => l.split('\t'));
}

// The collection engine: the e2e stack runs no collector process, so the
// test moves it (pay-api attempts run), as tests/e2e/paytest.py run_engine.
function runEngine() {
  execFileSync(ENV.PAY_BIN, ['--config', ENV.PAY_CONFIG, 'attempts', 'run', '--until-idle', '15',
    '--customers', String(CUSTOMER_PAY)],
    { encoding: 'utf8', timeout: 90000 });
}

function sqlOne(query) {
  const rows = sql(query);
  return rows.length ? rows[0][0] : null;
}

// Provider 1 of the fixture: ACTIVE GO_CARDLESS serving contract owner 1.
function provider1() {
  const name = 'e2e browser provider 1';
  sql(`INSERT IGNORE INTO payment_providers (id, type, name, status)
       VALUES (1, 'GO_CARDLESS', '${name}', 'ACTIVE')`);
  if (sqlOne('SELECT name FROM payment_providers WHERE id = 1') === name) {
    sql('INSERT IGNORE INTO payment_provider_owners VALUES (1, 1)');
  }
  const ok = sqlOne(`SELECT COUNT(*) FROM payment_providers p JOIN payment_provider_owners o
       ON o.provider_id = p.id WHERE p.id = 1 AND p.type = 'GO_CARDLESS' AND p.status = 'ACTIVE'
       AND o.contract_owner_id = 1`);
  if (ok === '1') return 1;
  let alt = sqlOne(`SELECT MIN(id) FROM payment_providers WHERE name = '${name} (alt)'`);
  if (alt === null || alt === 'NULL') {
    sql(`INSERT INTO payment_providers (type, name, status)
         VALUES ('GO_CARDLESS', '${name} (alt)', 'ACTIVE')`);
    alt = sqlOne(`SELECT MAX(id) FROM payment_providers WHERE name = '${name} (alt)'`);
    sql(`INSERT IGNORE INTO payment_provider_owners VALUES (${alt}, 1)`);
  }
  return Number(alt);
}

// ---------------------------------------------------------------- API

async function api(method, p, body) {
  const res = await fetch(BASE + p, {
    method,
    headers: { Authorization: `Bearer ${TOKEN}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body,
  });
  const raw = await res.text();
  let json = null;
  try { json = JSON.parse(raw); } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, raw, json };
}

// Money as an integer count of minor units, from the JSON text (never a float).
function minorOf(raw, field) {
  const m = raw.match(new RegExp(`"${field}"\\s*:\\s*(-?)(\\d+)\\.(\\d{2})\\b`));
  if (!m) return null;
  return (m[1] ? -1 : 1) * (Number(m[2]) * 100 + Number(m[3]));
}

async function balanceMinor(cid) {
  const r = await api('GET', `/v1/customer-balances?customer_id=${cid}`);
  return minorOf(r.raw, 'balance');
}

async function ledgerCount(cid) {
  const r = await api('GET', `/v1/customer-payments?customer_id=${cid}&page=1&pageSize=1`);
  return Number(r.headers.get('x-total-count'));
}

async function newestLedgerRow(cid) {
  const r = await api('GET', `/v1/customer-payments?customer_id=${cid}&page=1&pageSize=1&sort=id:desc`);
  return { row: (r.json || [])[0] || {}, raw: r.raw };
}

// ---------------------------------------------------------------- browser helpers

const consoleErrors = [];

function watch(page, label) {
  // HTTP statuses are checked one by one; "Failed to load resource" only
  // repeats them (a 422 or 410 page is expected where it is checked).
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
      consoleErrors.push(`${label}: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => consoleErrors.push(`${label}: ${e.message}`));
}

const shots = [];

async function shoot(page, name) {
  const file = path.join(SHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  shots.push(file);
  check(fs.statSync(file).size > 1000, `screenshot ${name}.png written`);
}

// Screenshots at both widths; the phone width must not scroll sideways.
// A page that reloads itself ("processing": Refresh every 2 s) may navigate
// in the middle on a slow machine; it is the same page again, so the pair
// is taken again.
async function bothWidths(page, name) {
  for (let tries = 1; ; tries++) {
    try {
      await page.setViewportSize(DESKTOP);
      await shoot(page, `${name}-desktop`);
      await page.setViewportSize(PHONE);
      const sw = await page.evaluate(() => document.scrollingElement.scrollWidth);
      check(sw <= PHONE.width, `${name}: no horizontal scroll at 375 px`, sw);
      await shoot(page, `${name}-phone`);
      await page.setViewportSize(DESKTOP);
      return;
    } catch (e) {
      if (tries >= 5 || !/context was destroyed|navigat/i.test(String(e && e.message))) throw e;
      await page.waitForLoadState('load');
    }
  }
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent() || '').trim();
}

// ---------------------------------------------------------------- (a) payment link

async function createLink(provider, amount, description) {
  const r = await api('POST', '/v1/payment-provider-payment-link',
    `{"paymentProviderId":${provider},"amountInMajorCurrency":${amount},` +
    `"description":${JSON.stringify(description)},"customerId":${CUSTOMER_PAY}}`);
  eq(r.status, 201, `create payment link ${amount}`);
  return r.json || {};
}

async function paymentLinkFlow(context, provider) {
  const bal0 = await balanceMinor(CUSTOMER_PAY);
  const rows0 = await ledgerCount(CUSTOMER_PAY);
  const desc = 'Browser test: March energy bill';
  const link = await createLink(provider, '12.34', desc);
  check(typeof link.paymentLink === 'string' && link.paymentLink.startsWith(`${BASE}/pay/`),
    'paymentLink is on the stack', link.paymentLink);

  const page = await context.newPage();
  watch(page, 'pay');
  const resp = await page.goto(link.paymentLink);
  eq(resp.status(), 200, 'payment page: 200');
  const body = await page.locator('main').innerText();
  check(body.includes('Acme Energy'), 'payment page shows the owner', body);
  check(body.includes(desc), 'payment page shows the description', body);
  check(body.includes('GBP 12.34'), 'payment page shows the amount with its currency', body);
  const button = page.getByRole('button', { name: /Pay/ });
  eq(await button.count(), 1, 'payment page has one Pay button');
  check(await button.isVisible(), 'Pay button visible');
  const csp = resp.headers()['content-security-policy'] || '';
  check(/style-src 'nonce-[^']+'/.test(csp) && !csp.includes('unsafe-inline'),
    'payment page: CSP with a nonce, no unsafe-inline', csp);
  const styled = await page.evaluate(() => getComputedStyle(document.querySelector('button')).backgroundColor);
  eq(styled, 'rgb(0, 112, 60)', 'the nonce-allowed style sheet is applied (Pay button is green)');
  await bothWidths(page, 'pay');

  // Pay: the POST makes a collection attempt and sends the browser to the
  // page (303), which shows "processing" and reloads itself until the
  // provider's answer (COLLECTION.md 3); the engine runs here (the e2e stack
  // has no collector process).
  const [payResp] = await Promise.all([
    page.waitForResponse((x) => x.request().method() === 'POST'),
    button.click(),
  ]);
  if (!eq(payResp.status(), 303, 'Pay: the POST answers 303 to the page')) {
    const h = await payResp.request().allHeaders();
    console.log(`  (the browser sent Origin: ${h.origin}, Sec-Fetch-Site: ${h['sec-fetch-site']};`
      + ` page title: ${await page.title()})`);
    await shoot(page, 'pay-refused');
    return;
  }
  await page.locator('#processing').waitFor();
  check(/Processing your payment/.test(await page.locator('main').innerText()),
    'after Pay: the page shows processing');
  await bothWidths(page, 'processing');
  runEngine();
  await page.locator('#receipt-reference').waitFor({ timeout: 20000 });
  const ref = await text(page, '#receipt-reference');
  check(ref.length > 0, 'processing turned into the receipt (the page reloaded itself)', ref);
  const receipt = await page.locator('main').innerText();
  check(/Payment received/.test(receipt) && receipt.includes('GBP 12.34') && receipt.includes(desc),
    'receipt shows payment received, amount and description', receipt);
  await bothWidths(page, 'receipt');

  // Through the API
  eq(await balanceMinor(CUSTOMER_PAY), bal0 + 1234, 'balance grew by exactly 12.34');
  eq(await ledgerCount(CUSTOMER_PAY), rows0 + 1, 'exactly one new ledger row');
  const { row, raw } = await newestLedgerRow(CUSTOMER_PAY);
  eq(row.txnType, 'PAYMENT', 'newest ledger row is a PAYMENT');
  eq(minorOf(raw, 'amountInMajorCurrency'), 1234, 'ledger row amount 12.34');
  eq(row.reference, ref, 'ledger row reference = receipt reference');
  eq(minorOf(raw, 'resultingCustomerBalance'), bal0 + 1234, 'ledger row resulting balance');

  // Reload: the receipt again, no second payment
  await page.reload();
  eq(await text(page, '#receipt-reference'), ref, 'reloading shows the same receipt');
  eq(await ledgerCount(CUSTOMER_PAY), rows0 + 1, 'reloading pays nothing');
  await page.close();

  // A double-click on Pay pays once.
  const bal1 = await balanceMinor(CUSTOMER_PAY);
  const rows1 = await ledgerCount(CUSTOMER_PAY);
  const link2 = await createLink(provider, '1.11', 'Browser test: double click');
  const p2 = await context.newPage();
  watch(p2, 'pay-dblclick');
  await p2.goto(link2.paymentLink);
  const posts = [];
  p2.on('request', (r) => { if (r.method() === 'POST') posts.push(r.url()); });
  // Chromium coalesces a double-click into one navigation; a second POST from
  // the same session (same cookie jar, same form value) at the same moment
  // makes sure the server really sees two.
  const csrf = await p2.locator('input[name=csrf]').getAttribute('value');
  const [, extra] = await Promise.all([
    p2.getByRole('button', { name: /Pay/ }).dblclick(),
    context.request.post(link2.paymentLink, {
      form: { csrf }, headers: { Origin: BASE, 'Sec-Fetch-Site': 'same-origin' }, maxRedirects: 0,
    }),
  ]);
  await p2.locator('#processing').waitFor({ timeout: 10000 }).catch(() => {});
  await p2.waitForTimeout(500); // let a second POST, if any, finish
  check(posts.length >= 1, 'double-click: the form was posted', posts.length);
  eq(extra.status(), 303, 'the simultaneous second POST finds the payment in progress (303)');
  eq(Number(sqlOne(`SELECT COUNT(*) FROM attempts WHERE payment_link_id = ${link2.id}`)), 1,
    'double-click + second POST: one attempt');
  runEngine();
  await p2.locator('#receipt-reference').waitFor({ timeout: 20000 }).catch(() => {});
  if (!eq(await p2.locator('#receipt-reference').count(), 1, 'double-click: the receipt is shown')) {
    return;
  }
  const ref2 = await text(p2, '#receipt-reference');
  check(ref2.length > 0 && ref2 !== ref, 'double-click: a receipt with its own reference', ref2);
  eq(await ledgerCount(CUSTOMER_PAY), rows1 + 1, `double-click + second POST (${posts.length + 1} POSTs): exactly one payment`);
  eq(await balanceMinor(CUSTOMER_PAY), bal1 + 111, 'double-click: balance grew by 1.11 once');
  await p2.reload();
  eq(await text(p2, '#receipt-reference'), ref2, 'double-click: reload shows the same receipt');
  await p2.close();

  // A payment the sandbox fails (amount ending in 13): the failure, and the
  // customer can try again (a new attempt).
  const bal3 = await balanceMinor(CUSTOMER_PAY);
  const link3 = await createLink(provider, '0.13', 'Browser test: failing payment');
  const p3 = await context.newPage();
  watch(p3, 'pay-failing');
  await p3.goto(link3.paymentLink);
  await p3.getByRole('button', { name: /Pay/ }).click();
  await p3.locator('#processing').waitFor();
  runEngine();
  await p3.locator('#payment-failed').waitFor({ timeout: 20000 }).catch(() => {});
  if (eq(await p3.locator('#payment-failed').count(), 1, 'failing payment: the failure is shown')) {
    await bothWidths(p3, 'pay-failed');
    const again = p3.getByRole('button', { name: /Try again/ });
    eq(await again.count(), 1, 'failing payment: a Try again button');
    await again.click();
    await p3.locator('#processing').waitFor();
    check(true, 'trying again: processing again');
    runEngine();
    await p3.locator('#payment-failed').waitFor({ timeout: 20000 }).catch(() => {});
    eq(Number(sqlOne(`SELECT COUNT(*) FROM attempts WHERE payment_link_id = ${link3.id}`)), 2,
      'failing payment tried again: a second attempt');
  }
  eq(await balanceMinor(CUSTOMER_PAY), bal3, 'failing payment: no money moved');
  await p3.close();
}

// ---------------------------------------------------------------- (b) mandate

function startReturnServer() {
  const hits = [];
  const server = http.createServer((req, res) => {
    hits.push({ method: req.method, url: req.url });
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Back at the shop</title>'
      + '<meta name="viewport" content="width=device-width,initial-scale=1"></head>'
      + '<body><h1 id="back">Back at the shop</h1></body></html>');
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve({ server, hits, port: server.address().port }));
  });
}

async function mandateFlow(context) {
  const { server, hits, port } = await startReturnServer();
  try {
    const returnURL = `http://127.0.0.1:${port}/return?from=mandate`;
    const r = await api('POST', '/v1/site-payment-mandates',
      JSON.stringify({ siteId: SITE_MANDATE, returnURL }));
    eq(r.status, 201, 'create site payment mandate');
    const m = r.json || {};
    eq(m.redirectURL, `${BASE}/mandate/${m.flowToken}`, 'redirectURL is the hosted page');

    const page = await context.newPage();
    watch(page, 'mandate');
    const resp = await page.goto(m.redirectURL);
    eq(resp.status(), 200, 'mandate page: 200');
    const body = await page.locator('main').innerText();
    check(body.includes('Acme Energy') && body.includes('Site 90'), 'mandate page: owner and site', body);
    for (const label of ['Account holder name', 'Sort code', 'Account number']) {
      eq(await page.getByLabel(label).count(), 1, `mandate page: field labelled "${label}"`);
    }
    await page.getByLabel('Account holder name').fill('Jane Browser');
    await page.getByLabel('Sort code').fill('12-34-56');
    await page.getByLabel('Account number').fill('12345678');
    await bothWidths(page, 'mandate');

    // A wrong sort code first: the form comes back with a message.
    await page.getByLabel('Sort code').fill('12-34-5');
    const [bad] = await Promise.all([
      page.waitForResponse((x) => x.request().method() === 'POST'),
      page.getByRole('button', { name: /Direct Debit/ }).click(),
    ]);
    if (!eq(bad.status(), 422, 'wrong sort code: 422')) {
      const h = await bad.request().allHeaders();
      console.log(`  (the browser sent Origin: ${h.origin}, Sec-Fetch-Site: ${h['sec-fetch-site']};`
        + ` page title: ${await page.title()})`);
      await shoot(page, 'mandate-refused');
      return;
    }
    await page.locator('[role=alert]').waitFor();
    check(/sort code/i.test(await text(page, '[role=alert]')), 'wrong sort code: the message says so');
    eq(await page.getByLabel('Account holder name').inputValue(), 'Jane Browser',
      'wrong sort code: the name is kept');
    await bothWidths(page, 'mandate-error');

    // Now right: the browser ends up on returnURL, served by the local server.
    await page.getByLabel('Sort code').fill('12-34-56');
    await page.getByLabel('Account number').fill('12345678');
    await Promise.all([
      page.waitForURL(returnURL),
      page.getByRole('button', { name: /Direct Debit/ }).click(),
    ]);
    eq(page.url(), returnURL, 'after the form: the browser is at returnURL');
    eq(await text(page, '#back'), 'Back at the shop', 'returnURL page loaded');
    check(hits.some((h) => h.method === 'GET' && h.url === '/return?from=mandate'),
      'the local return server got GET /return?from=mandate', hits);

    // Through the API
    const list = await api('GET', `/v1/site-payment-mandates?page=1&pageSize=1000&siteId=${SITE_MANDATE}`);
    const mine = (list.json || []).find((x) => x.id === m.id) || {};
    check(typeof mine.mandateReference === 'string' && mine.mandateReference.length > 0,
      'the mandate has a mandateReference', mine);
    const pm = await api('GET', `/v1/payment-provider-mandates/GO_CARDLESS/${encodeURIComponent(mine.mandateReference || 'x')}`);
    eq(pm.status, 200, 'provider mandate found');
    eq((pm.json || {}).status, 'ACTIVE', 'provider mandate ACTIVE');
    eq((pm.json || {}).lastName, 'Browser', 'provider mandate: last name from the form');

    // The flow is single use.
    const again = await page.goto(m.redirectURL);
    eq(again.status(), 410, 'the used mandate link answers 410');
    await page.setViewportSize(PHONE);
    const sw = await page.evaluate(() => document.scrollingElement.scrollWidth);
    check(sw <= PHONE.width, '410 page: no horizontal scroll at 375 px', sw);
    await page.close();
  } finally {
    server.close();
  }
}

// ---------------------------------------------------------------- TLS

// Over HTTPS: the browser that runs the flows sees the stack's certificate
// (issued under the test CA) and HSTS; a browser without the test CA in its
// NSS database refuses the very same URL, so the trust really comes from the
// CA and certificate errors are not being ignored.
async function tlsChecks(context) {
  const page = await context.newPage();
  const res = await page.goto(`${BASE}/healthz`);
  eq(res.status(), 200, 'HTTPS: GET /healthz through Chromium');
  const sec = await res.securityDetails();
  eq(sec && sec.issuer, 'pay-api test intermediate CA', 'HTTPS: certificate issued under the test CA');
  check(sec && ['TLS 1.2', 'TLS 1.3'].includes(sec.protocol), 'HTTPS: TLS 1.2 or 1.3', sec && sec.protocol);
  eq((await res.allHeaders())['strict-transport-security'], 'max-age=63072000', 'HTTPS: HSTS header');
  await page.close();

  const bare = fs.mkdtempSync(path.join(os.tmpdir(), 'pay-chromium-untrusting-'));
  let other;
  try {
    other = await chromium.launchPersistentContext(bare, {
      executablePath: CHROMIUM, headless: true, env: { ...process.env, HOME: bare },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60000,
    });
    const p = await other.newPage();
    let err = '';
    try { await p.goto(`${BASE}/healthz`); } catch (e) { err = String(e.message || e); }
    check(/ERR_CERT_AUTHORITY_INVALID/.test(err),
      'HTTPS: Chromium without the test CA refuses the certificate', err.split('\n')[0]);
  } finally {
    if (other) await other.close().catch(() => {});
    fs.rmSync(bare, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------- main

async function main() {
  fs.mkdirSync(SHOTS, { recursive: true });
  const provider = provider1();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'pay-chromium-'));
  let context;
  try {
    const env = TLS_CA ? { ...process.env, HOME: nssHomeTrusting(profile, TLS_CA) } : process.env;
    check(BASE.startsWith(TLS_CA ? 'https://' : 'http://'),
      TLS_CA ? 'the stack is served over HTTPS' : 'the stack is plain HTTP', BASE);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: DESKTOP,
      env,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60000,
    });
    context.setDefaultTimeout(20000);
    const flows = [['payment link', () => paymentLinkFlow(context, provider)],
      ['mandate', () => mandateFlow(context)]];
    if (TLS_CA) flows.unshift(['TLS', () => tlsChecks(context)]);
    for (const [name, fn] of flows) {
      try {
        await fn();
      } catch (e) {
        check(false, `${name} flow raised`, String(e && e.stack || e));
      }
    }
    check(consoleErrors.length === 0, 'no console errors (CSP violations) on any page', consoleErrors);
  } catch (e) {
    check(false, 'browser start', String(e && e.stack || e));
  } finally {
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }
  for (const f of shots) console.log(`screenshot: ${f}`);
}

const guard = setTimeout(() => {
  console.log('FAIL: the browser test did not finish within 240 s');
  console.log(`${passed} passed, ${failed + 1} failed`);
  process.exit(1);
}, 240000);

await main();
clearTimeout(guard);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
