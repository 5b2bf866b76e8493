// A real browser sets a mandate up on GoCardless's hosted page (served by the
// double over HTTPS; Chromium trusts the double's test CA through an NSS
// database in a HOME made here): the site mandate's redirectURL, the bank
// details typed into the hosted page, back through this service's
// /mandate/{token} to a returnURL served by this script; then the mandate is
// read through the API. Debian's chromium driven by playwright-core from
// tests/browser/node_modules. Customer 105's site (after gocardless.e2e, whose
// flow there was left on the exit button).
// Then customer 110's invoice is paid through a payment link of the
// GC_INSTANT_BANK_PAYMENTS provider (2): Pay leads to GoCardless's hosted
// page, the payer confirms, comes back to the link's page; GoCardless
// confirms and pays out the payment (the double's simulator): CONFIRMED,
// then PAID_OUT, one payment in the ledger, the receipt on the page.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { check, env, finish } from './lib.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const { chromium } = await import(path.join(here, '..', '..', 'browser', 'node_modules',
  'playwright-core', 'index.mjs'));


const token = execFileSync(env.PAY_BIN, ['--config', env.PAY_CONFIG, 'token', '--sub', 'gc-browser',
  '--scope', 'payments:read payments:write', '--contract-owners', '1'], { encoding: 'utf8' }).trim();
const api = async (method, p, body) => {
  const r = await fetch(env.PAY_BASE_URL + p, { method, body: body && JSON.stringify(body),
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' } });
  return { status: r.status, json: await r.json().catch(() => null) };
};

const sql = (q) => {
  const [cmd, ...args] = env.MYSQL_CMD.split(' ');
  return execFileSync(cmd, [...args, '-N', '-B', '-e', q], { encoding: 'utf8' }).trim();
};
const double = (p, body) => new Promise((resolve, reject) => {
  const u = new URL(env.GC_DOUBLE_URL);
  const req = https.request({ host: u.hostname, port: Number(u.port), path: `/_double/${p}`,
    method: body ? 'POST' : 'GET', ca: fs.readFileSync(env.GC_DOUBLE_CA),
    headers: { 'Content-Type': 'application/json' } }, (res) => {
    let data = '';
    res.on('data', (c) => { data += c; });
    res.on('end', () => resolve(JSON.parse(data)));
  });
  req.on('error', reject);
  if (body) req.write(JSON.stringify(body));
  req.end();
});
// Polls fn() until truthy (a generous deadline: a loaded machine is slow).
async function until(fn, what, seconds = 90) {
  const end = Date.now() + seconds * 1000;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) return check(false, `in time: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function instantBankPayment(page) {
  const [iid, amount] = sql('SELECT id, amount FROM invoices WHERE customer_id = 110').split('\t').map(Number);
  const r = await api('POST', '/v1/payment-provider-payment-link', { paymentProviderId: 2,
    amountInMajorCurrency: amount / 100, description: 'Instant bank payment 110', invoiceId: iid });
  if (!check(r.status === 201, 'payment link of the instant bank payments provider', r)) return;
  const link = r.json.paymentLink;
  await page.goto(link);
  await Promise.all([page.waitForURL((u) => u.href.startsWith(env.GC_DOUBLE_URL), { timeout: 60000 }),
    page.click('button[type=submit]')]);
  check((await page.textContent('h1')) === 'Pay with your bank', 'Pay opens GoCardless\'s hosted page', page.url());
  check((await page.textContent('#amount')) === `GBP ${(amount / 100).toFixed(2)}`, 'it asks the link\'s amount');
  await Promise.all([page.waitForURL((u) => u.href === link, { timeout: 60000 }),
    page.click('button[value=confirm]')]);
  check(await page.isVisible('#processing'), 'back on the link\'s page: processing', page.url());
  const row = () => sql(`SELECT status, provider_reference, idempotency_key FROM attempts WHERE payment_link_id = ${r.json.id}`).split('\t');
  const [, brq, key] = row();
  const st = await double('state');
  const pm = st.billing_requests[brq] && st.billing_requests[brq].links.payment_request_payment;
  if (!check(/^BRQ/.test(brq) && pm, 'the attempt follows the fulfilled billing request', row())) return;
  check(st.creates[`billing_requests ${key}`] === 1, 'one billing request created for the key', st.creates);
  check(sql(`SELECT paid FROM invoices WHERE id = ${iid}`) === '0', 'nothing counted before GoCardless confirms');
  await double('simulate', { resource: 'payments', id: pm, action: 'confirmed' });
  await until(() => row()[0] === 'CONFIRMED', 'CONFIRMED');
  check(sql(`SELECT paid FROM invoices WHERE id = ${iid}`) === String(amount), 'the invoice paid on confirmed');
  await double('simulate', { resource: 'payments', id: pm, action: 'paid_out' });
  await until(() => row()[0] === 'PAID_OUT', 'PAID_OUT');
  check(sql("SELECT COUNT(*), SUM(amount) FROM ledger WHERE customer_id = 110 AND txn_type = 'PAYMENT'")
    === `1\t${amount}`, 'one payment in the ledger');
  const receipt = await page.goto(link);
  check(receipt.status() === 410 && (await page.textContent('h1')) === 'Payment received',
    'the link shows the receipt', receipt.status());
}

async function main() {
  // The site's returnURL: a page of this script.
  const shop = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end('<!doctype html><title>Shop</title><h1>Thank you</h1>');
  });
  await new Promise((r) => shop.listen(0, '127.0.0.1', r));
  const returnURL = `http://127.0.0.1:${shop.address().port}/done`;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'pay-gc-chromium-'));
  const db = path.join(home, '.pki', 'nssdb');
  fs.mkdirSync(db, { recursive: true });
  execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
  execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'gc double CA', '-t', 'C,,', '-i', env.GC_DOUBLE_CA]);
  let context;
  try {
    const r = await api('POST', '/v1/site-payment-mandates',
      { siteId: 105, returnURL, exitURL: `${returnURL}?exit` });
    if (!check(r.status === 201 && r.json.redirectURL.startsWith(env.GC_DOUBLE_URL),
      'site mandate with the hosted page as redirectURL', r)) return;
    context = await chromium.launchPersistentContext(path.join(home, 'profile'), {
      executablePath: '/usr/bin/chromium', headless: true, env: { ...process.env, HOME: home },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      timeout: 60000,
    });
    context.setDefaultTimeout(30000);
    const page = await context.newPage();
    const first = await page.goto(r.json.redirectURL);
    check(first.status() === 200, 'the hosted page opens over HTTPS (test CA trusted)', first.status());
    await page.fill('#holder', 'Grace Hopper');
    await page.fill('#sort', '20-00-00');
    await page.fill('#acct', '55779105');
    await Promise.all([page.waitForURL((u) => u.href.startsWith(returnURL), { timeout: 60000 }),
      page.click('button[value=confirm]')]);
    check(page.url() === returnURL, 'the browser lands on the returnURL', page.url());
    check((await page.textContent('h1')) === 'Thank you', 'the shop page shows');
    const sm = await api('GET', `/v1/site-payment-mandates/${r.json.id}`);
    const ref = sm.json && sm.json.mandateReference;
    check(sm.status === 200 && /^MD/.test(ref || ''), 'the site mandate has the GoCardless mandate', sm.json);
    const pm = await api('GET', `/v1/payment-provider-mandates/GO_CARDLESS/${ref}`);
    check(pm.status === 200, 'the mandate is readable', pm);
    await instantBankPayment(page);
  } finally {
    if (context) await context.close();
    shop.close();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

main().catch((e) => check(false, 'browser flow raised', String(e && e.stack || e))).finally(finish);
