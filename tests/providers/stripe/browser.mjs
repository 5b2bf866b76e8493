// A payment link paid through Stripe Checkout in a real browser: Debian's
// chromium (/usr/bin/chromium) driven by playwright-core, against the Stripe
// stack (tests/providers/stripe/stack.sh). Chromium trusts the double's test
// CA through an NSS database in a HOME made here (certutil), nothing skips
// certificate checks. The customer presses Pay on the link's page, lands on
// Stripe's hosted page (the double's), pays with a test card, comes back to
// the link's page, which shows "processing" until the signed webhook (or
// the collector's fetch) confirms, then the receipt; the invoice is paid.
//
//   PAY_STACK_ENV=DIR/env node tests/providers/stripe/browser.mjs
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ENV = Object.fromEntries(fs.readFileSync(process.env.PAY_STACK_ENV, 'utf8').split('\n')
    .filter((l) => /^[A-Z_]+=/.test(l))
    .map((l) => { const i = l.indexOf('='); return [l.slice(0, i), l.slice(i + 1).replace(/^'(.*)'$/, '$1')]; }));
const BASE = ENV.PAY_BASE_URL;
const DOUBLE = ENV.STRIPE_DOUBLE_URL;
const CA = fs.readFileSync(ENV.STRIPE_DOUBLE_CA);
const PROVIDER = 4;
const CUSTOMER = 6;

let passed = 0, failed = 0;
function check(cond, what) {
    if (cond) passed++;
    else { failed++; console.log(`FAIL ${what}`); }
}

const mysql = (q) => execFileSync(ENV.MYSQL_CMD.split(' ')[0], [...ENV.MYSQL_CMD.split(' ').slice(1), '-N', '-B', '-e', q],
    { encoding: 'utf8' }).trim();
const token = execFileSync(ENV.PAY_BIN, ['--config', ENV.PAY_CONFIG, 'token', '--sub', 'stripe-browser',
    '--scope', 'payments:read payments:write', '--contract-owners', '1', '--ttl', '600'], { encoding: 'utf8' }).trim();

function control(p, body) {
    return new Promise((resolve, reject) => {
        const req = https.request(`${DOUBLE}/_double/${p}`, { method: body ? 'POST' : 'GET', ca: CA }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
        });
        req.on('error', reject);
        req.end(body ? JSON.stringify(body) : undefined);
    });
}

const home = fs.mkdtempSync(path.join(os.tmpdir(), 'stripe-browser-'));
const db = path.join(home, '.pki', 'nssdb');
fs.mkdirSync(db, { recursive: true });
execFileSync('certutil', ['-N', '-d', `sql:${db}`, '--empty-password']);
execFileSync('certutil', ['-A', '-d', `sql:${db}`, '-n', 'stripe double test CA', '-t', 'C,,', '-i', ENV.STRIPE_DOUBLE_CA]);

let context;
try {
    mysql(`UPDATE payment_providers SET status = 'ACTIVE' WHERE id = ${PROVIDER}`);
    await control('config', { webhookUrl: `${BASE}/webhooks/${PROVIDER}` });
    const [kind, iid, amount] = mysql(`SELECT kind, id, amount FROM invoices WHERE customer_id = ${CUSTOMER}`
        + ' AND paid = 0 AND refunded = 0 AND kind = 1 ORDER BY id LIMIT 1').split('\t').map(Number);
    const res = await fetch(`${BASE}/v1/payment-provider-payment-link`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
        body: `{"paymentProviderId":${PROVIDER},"amountInMajorCurrency":${(amount / 100).toFixed(2)},`
            + `"description":"Invoice paid in a browser","invoiceId":${iid}}`,
    });
    check(res.status === 201, `link created (${res.status})`);
    const link = (await res.json()).paymentLink;

    context = await chromium.launchPersistentContext(path.join(home, 'profile'), {
        executablePath: CHROMIUM, headless: true, env: { ...process.env, HOME: home },
        args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        timeout: 60000,
    });
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(link);
    await page.getByRole('button', { name: /Pay/ }).click();
    await page.waitForURL((u) => u.href.startsWith(`${DOUBLE}/c/pay/cs_`), { timeout: 30000 });
    check(await page.locator('#checkout').isVisible(), 'on Stripe Checkout (hosted page, the double)');
    await page.fill('#card', '4000000000000002');
    await page.click('#submit');
    await page.waitForSelector('#error', { timeout: 30000 });
    check(/declined/.test(await page.locator('#error').innerText()), 'a declined card is shown on Stripe\'s page');
    await page.fill('#card', '4242 4242 4242 4242');
    await page.click('#submit');
    await page.waitForURL(link, { timeout: 30000 });
    check(true, 'back on the link\'s page');
    await page.waitForSelector('text=Payment received', { timeout: 60000 });
    check(true, 'the receipt, once Stripe confirmed');
    const paid = Number(mysql(`SELECT paid FROM invoices WHERE kind = ${kind} AND id = ${iid}`));
    check(paid === amount, `the invoice is paid (${paid} of ${amount})`);
    const status = mysql(`SELECT status FROM attempts WHERE invoice_kind = ${kind} AND invoice_id = ${iid}`
        + ' ORDER BY id DESC LIMIT 1');
    check(status === 'CONFIRMED', `the attempt is CONFIRMED (${status})`);
    check(errors.length === 0, `no page errors (${errors.join('; ')})`);
    const shots = process.env.PAY_SCREENSHOT_DIR || path.join(path.dirname(ENV.PAY_BIN), 'screenshots');
    fs.mkdirSync(shots, { recursive: true });
    await page.screenshot({ path: path.join(shots, 'stripe-receipt.png'), fullPage: true });
} catch (e) {
    failed++;
    console.log('FAIL', e);
} finally {
    if (context) await context.close();
    fs.rmSync(home, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
