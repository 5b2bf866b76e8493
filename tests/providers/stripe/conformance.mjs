// Conformance of the Stripe double with Stripe's official Node library:
// the double is driven by the `stripe` client (its form encoding, its
// headers, its parsing of answers and errors into typed exceptions) and
// its webhooks are checked with stripe.webhooks.constructEvent. A double
// that drifts from what the vendor's library sends or expects fails here.
//   node tests/providers/stripe/conformance.mjs
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Stripe from 'stripe';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stripe-double-'));
execFileSync('bash', [path.join(here, 'mkcert.sh'), dir]);
const ca = fs.readFileSync(path.join(dir, 'ca.pem'));
const SECRET = 'whsec_conformance';
const KEY = 'sk_test_conformance';
const VERSION = '2026-07-29.dahlia';

let passed = 0, failed = 0;
function check(cond, what) {
    if (cond) passed++;
    else { failed++; console.log(`FAIL ${what}`); }
}
async function rejects(p, cls, what, more = () => true) {
    try { await p; check(false, `${what}: no error`); }
    catch (e) { check(e instanceof cls && more(e), `${what}: ${e.constructor.name} ${e.statusCode} ${e.code} ${e.message}`); }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, fn, ms = 20000) {
    const end = Date.now() + ms;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > end) { check(false, `timed out waiting for ${what}`); return null; }
        await sleep(100);
    }
}

// The webhook endpoint: verifies every delivery with the library.
const received = [];
const verifyErrors = [];
const hook = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
        const raw = Buffer.concat(chunks);
        try {
            received.push(Stripe.webhooks.constructEvent(raw, req.headers['stripe-signature'], SECRET));
            res.writeHead(200).end('{}');
        } catch (e) {
            verifyErrors.push(e.message);
            res.writeHead(400).end();
        }
    });
});
await new Promise((r) => hook.listen(0, '127.0.0.1', r));

const child = spawn(process.execPath, [path.join(here, 'double.mjs'), '--cert', path.join(dir, 'server.pem'),
    '--key', path.join(dir, 'server.key'), '--api-key', KEY, '--webhook-secret', SECRET,
    '--webhook-url', `http://127.0.0.1:${hook.address().port}/hook`, '--step-ms', '300'],
    { stdio: ['ignore', 'pipe', 'inherit'] });
const port = await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) resolve(Number(m[1])); });
    child.on('exit', (c) => reject(new Error(`double exited ${c}`)));
});
const base = `https://127.0.0.1:${port}`;
const agent = new https.Agent({ ca, keepAlive: true });
const stripe = new Stripe(KEY, { host: '127.0.0.1', port, protocol: 'https', apiVersion: VERSION,
    httpAgent: agent, maxNetworkRetries: 0, timeout: 3000 });
function ctl(p, body) {
    return new Promise((resolve, reject) => {
        const req = https.request(`${base}/_double/${p}`, { method: body ? 'POST' : 'GET', ca }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve(JSON.parse(Buffer.concat(chunks).toString())));
        });
        req.on('error', reject);
        req.end(body ? JSON.stringify(body) : undefined);
    });
}
function page(url, form) {
    return new Promise((resolve, reject) => {
        const body = form ? new URLSearchParams(form).toString() : undefined;
        const req = https.request(url, { method: form ? 'POST' : 'GET', ca,
            headers: form ? { 'Content-Type': 'application/x-www-form-urlencoded' } : {} }, (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location,
                                          text: Buffer.concat(chunks).toString() }));
        });
        req.on('error', reject);
        req.end(body);
    });
}
const eventsOf = (id, type) => received.filter((e) => e.data.object.id === id && (!type || e.type === type));

try {
    // -- Checkout, payment mode, card, through the hosted page ---------------
    const cs = await stripe.checkout.sessions.create({
        mode: 'payment',
        line_items: [{ price_data: { currency: 'gbp', unit_amount: 2500,
                                     product_data: { name: 'Annual membership & more' } }, quantity: 1 }],
        success_url: 'https://pay.example.org/done?session_id={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://pay.example.org/cancelled',
        client_reference_id: 'pay_42',
        metadata: { payment_id: 'pay_42' },
        payment_intent_data: { metadata: { payment_id: 'pay_42' } },
    }, { idempotencyKey: 'pay_42-checkout' });
    check(cs.object === 'checkout.session' && /^cs_test_/.test(cs.id), 'session id');
    check(cs.status === 'open' && cs.payment_status === 'unpaid' && cs.payment_intent === null,
          'open, unpaid, no PaymentIntent before confirmation');
    check(cs.amount_total === 2500 && cs.currency === 'gbp', 'nested line_items parsed (amount_total)');
    check(cs.metadata.payment_id === 'pay_42' && cs.client_reference_id === 'pay_42', 'metadata round trip');
    check(cs.lastResponse.headers['request-id'] && /^req_/.test(cs.lastResponse.requestId), 'Request-Id');
    const again = await stripe.checkout.sessions.create({
        mode: 'payment',
        line_items: [{ price_data: { currency: 'gbp', unit_amount: 2500,
                                     product_data: { name: 'Annual membership & more' } }, quantity: 1 }],
        success_url: 'https://pay.example.org/done?session_id={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://pay.example.org/cancelled',
        client_reference_id: 'pay_42',
        metadata: { payment_id: 'pay_42' },
        payment_intent_data: { metadata: { payment_id: 'pay_42' } },
    }, { idempotencyKey: 'pay_42-checkout' });
    check(again.id === cs.id, 'same key, same parameters: the same session');
    check(again.lastResponse.headers['idempotent-replayed'] === 'true', 'Idempotent-Replayed: true');
    let st = await ctl('state');
    check(st.creates['pay_42-checkout'] === 1, 'one create for the key');
    check(st.requests.every((r) => r.version === VERSION), 'Stripe-Version sent by the library is recorded');

    const declined = await page(cs.url, { card: '4000000000000002' });
    check(declined.status === 200 && /id="error"/.test(declined.text), 'declined card: the page says so');
    const paid = await page(cs.url, { card: '4242424242424242' });
    check(paid.status === 303 && paid.location === `https://pay.example.org/done?session_id=${cs.id}`,
          `paid: redirect to success_url with the id (${paid.status} ${paid.location})`);
    const done = await stripe.checkout.sessions.retrieve(cs.id, { expand: ['payment_intent'] });
    check(done.status === 'complete' && done.payment_status === 'paid', 'complete and paid');
    check(done.payment_intent && done.payment_intent.status === 'succeeded' &&
          done.payment_intent.metadata.payment_id === 'pay_42', 'expanded PaymentIntent, metadata from payment_intent_data');
    const completed = await until('checkout.session.completed', () => eventsOf(cs.id, 'checkout.session.completed')[0]);
    check(completed && completed.data.object.payment_status === 'paid', 'signed completed event verified by constructEvent');
    const list = await stripe.checkout.sessions.list({ payment_intent: done.payment_intent.id });
    check(list.data.length === 1 && list.data[0].id === cs.id, 'list sessions by payment_intent');
    check((await page(cs.url)).status === 404, 'a completed session page is gone');

    // -- Setup mode (Bacs) and an off-session PaymentIntent -------------------
    const cus = await stripe.customers.create({ email: 'ann@example.org', name: 'Ann' });
    const setup = await stripe.checkout.sessions.create({
        mode: 'setup', customer: cus.id, payment_method_types: ['bacs_debit'],
        success_url: 'https://pay.example.org/mandate?session_id={CHECKOUT_SESSION_ID}',
        cancel_url: 'https://pay.example.org/exit', client_reference_id: 'mdt_7',
        setup_intent_data: { metadata: { mandate_id: 'mdt_7' } },
    }, { idempotencyKey: 'mdt_7-setup' });
    check(setup.mode === 'setup' && setup.payment_status === 'no_payment_required', 'setup session');
    const bad = await page(setup.url, { name: 'Ann', sort_code: '1088', account_number: '00012345' });
    check(bad.status === 200 && /id="error"/.test(bad.text), 'bad bank details: the page says so');
    const ok = await page(setup.url, { name: 'Ann', sort_code: '108800', account_number: '00012345' });
    check(ok.status === 303, 'setup completes with a redirect');
    const s2 = await stripe.checkout.sessions.retrieve(setup.id, { expand: ['setup_intent.mandate'] });
    const si = s2.setup_intent;
    check(si && si.object === 'setup_intent' && si.mandate && si.mandate.object === 'mandate',
          'expand[]=setup_intent.mandate');
    check(si.metadata.mandate_id === 'mdt_7', 'setup_intent_data metadata');
    const pmRead = await stripe.paymentMethods.retrieve(si.payment_method);
    check(pmRead.type === 'bacs_debit' && pmRead.bacs_debit.last4 === '2345' &&
          pmRead.bacs_debit.sort_code === '108800' && !JSON.stringify(pmRead).includes('00012345'),
          'the PaymentMethod shows last4 and sort code, never the account number');
    const md0 = await stripe.mandates.retrieve(si.mandate.id);
    check(md0.status === 'pending' && md0.payment_method_details.type === 'bacs_debit', 'mandate pending first');
    const md = await until('mandate active', async () => {
        const m = await stripe.mandates.retrieve(si.mandate.id);
        return m.status === 'active' ? m : null;
    });
    check(md && md.payment_method_details.bacs_debit.network_status === 'accepted', 'mandate active, accepted');

    const piParams = { amount: 1500, currency: 'gbp', customer: cus.id, payment_method: si.payment_method,
                       payment_method_types: ['bacs_debit'], mandate: si.mandate.id, off_session: true,
                       confirm: true, metadata: { attempt: 'a1' } };
    const pi = await stripe.paymentIntents.create(piParams, { idempotencyKey: 'a1-charge' });
    check(pi.status === 'processing' && pi.latest_charge, 'Bacs PaymentIntent processing');
    const pi2 = await stripe.paymentIntents.create(piParams, { idempotencyKey: 'a1-charge' });
    check(pi2.id === pi.id, 'replayed: same PaymentIntent');
    await rejects(stripe.paymentIntents.create({ ...piParams, amount: 1600 }, { idempotencyKey: 'a1-charge' }),
        Stripe.errors.StripeIdempotencyError, 'same key, other amount', (e) => e.statusCode === 400 &&
        /same parameters/.test(e.message));
    st = await ctl('state');
    check(st.creates['a1-charge'] === 1, `one PaymentIntent created for the key (${st.creates['a1-charge']})`);
    const succeeded = await until('succeeded', async () => {
        const p = await stripe.paymentIntents.retrieve(pi.id);
        return p.status === 'succeeded' ? p : null;
    });
    check(succeeded && succeeded.amount_received === 1500, 'succeeded after its step');
    await until('payment_intent.succeeded event', () => eventsOf(pi.id, 'payment_intent.succeeded')[0]);
    check(eventsOf(pi.id, 'payment_intent.processing').length === 1, 'processing event');
    const created = received.find((e) => e.type === 'payment_intent.created' && e.data.object.id === pi.id);
    check(created && created.request.idempotency_key === 'a1-charge', 'event.request.idempotency_key');

    // -- A failing debit --------------------------------------------------------------
    const setupF = await stripe.checkout.sessions.create({ mode: 'setup', customer: cus.id,
        payment_method_types: ['bacs_debit'], success_url: 'https://pay.example.org/m' });
    await page(setupF.url, { name: 'Ann', sort_code: '108800', account_number: '22222227' });
    const siF = (await stripe.checkout.sessions.retrieve(setupF.id, { expand: ['setup_intent'] })).setup_intent;
    await ctl('advance', {});
    const piF = await stripe.paymentIntents.create({ ...piParams, payment_method: siF.payment_method,
        mandate: siF.mandate }, { idempotencyKey: 'a2-charge' });
    const failedPi = await until('failed', async () => {
        const p = await stripe.paymentIntents.retrieve(piF.id);
        return p.status === 'requires_payment_method' ? p : null;
    });
    check(failedPi && failedPi.last_payment_error.code === 'insufficient_funds', 'insufficient_funds');
    await until('payment_failed event', () => eventsOf(piF.id, 'payment_intent.payment_failed')[0]);

    // -- Errors as the library types them -------------------------------------------
    await rejects(stripe.paymentIntents.retrieve('pi_nonexistent'), Stripe.errors.StripeInvalidRequestError,
        'unknown id', (e) => e.statusCode === 404 && e.code === 'resource_missing');
    await rejects(stripe.checkout.sessions.create({ mode: 'payment', success_url: 'https://x/' }),
        Stripe.errors.StripeInvalidRequestError, 'missing line_items', (e) => e.code === 'parameter_missing' &&
        e.param === 'line_items');
    await rejects(new Stripe('sk_test_wrong', { host: '127.0.0.1', port, protocol: 'https', httpAgent: agent,
        maxNetworkRetries: 0 }).paymentIntents.retrieve(pi.id), Stripe.errors.StripeAuthenticationError, 'bad key',
        (e) => e.statusCode === 401);
    await ctl('faults', { path: '^/v1/payment_intents$', kind: '429', count: 1 });
    await rejects(stripe.paymentIntents.create({ ...piParams }, { idempotencyKey: 'a3-charge' }),
        Stripe.errors.StripeRateLimitError, '429 rate limit', (e) => e.statusCode === 429 && e.code === 'rate_limit');
    await ctl('faults', { path: '^/v1/payment_intents$', kind: '500', count: 1 });
    await rejects(stripe.paymentIntents.create({ ...piParams }, { idempotencyKey: 'a3-charge' }),
        Stripe.errors.StripeAPIError, '500 api_error', (e) => e.statusCode === 500 && e.type === 'StripeAPIError');
    const pi3 = await stripe.paymentIntents.create({ ...piParams }, { idempotencyKey: 'a3-charge' });
    check(pi3.status === 'processing', 'after 429 and 500 the same key creates it');
    st = await ctl('state');
    check(st.creates['a3-charge'] === 1, 'faults created nothing: one create');
    await ctl('faults', { path: '^/v1/payment_intents$', kind: 'hang', count: 1 });
    await rejects(stripe.paymentIntents.create({ ...piParams }, { idempotencyKey: 'a4-charge' }),
        Stripe.errors.StripeConnectionError, 'a hanging answer times out');
    await ctl('faults', { path: '^/v1/payment_intents$', kind: 'close', count: 1 });
    // A connection closed without an answer: stripe-node retries that once
    // by itself (a stale keep-alive socket), with the same key.
    const pi4 = await stripe.paymentIntents.create({ ...piParams }, { idempotencyKey: 'a4-charge' });
    st = await ctl('state');
    check(pi4.status === 'processing' && st.creates['a4-charge'] === 1 &&
          st.requests.filter((r) => r.key === 'a4-charge').length === 3,
          'hang, close, then one create for the key');
    // The library retries on its own with the same key: one create.
    const retrying = new Stripe(KEY, { host: '127.0.0.1', port, protocol: 'https', apiVersion: VERSION,
        httpAgent: agent, maxNetworkRetries: 2 });
    await ctl('faults', { path: '^/v1/payment_intents$', kind: '500', count: 1 });
    const pi5 = await retrying.paymentIntents.create({ ...piParams }, { idempotencyKey: 'a5-charge' });
    check(pi5.status === 'processing', 'the library retried past a 500 (Stripe-Should-Retry)');
    st = await ctl('state');
    check(st.creates['a5-charge'] === 1, 'and created once');

    // -- Refunds --------------------------------------------------------------------
    const re = await stripe.refunds.create({ payment_intent: pi.id, amount: 500 }, { idempotencyKey: 'r1' });
    check(re.object === 'refund' && re.status === 'pending' && re.amount === 500, 'refund pending');
    await rejects(stripe.refunds.create({ payment_intent: pi.id, amount: 1001 }),
        Stripe.errors.StripeInvalidRequestError, 'refund more than left', (e) => e.code === 'amount_too_large');
    const reDone = await until('refund succeeded', async () => {
        const x = await stripe.refunds.retrieve(re.id);
        return x.status === 'succeeded' ? x : null;
    });
    check(reDone, 'refund succeeded');
    await until('refund.updated', () => eventsOf(re.id, 'refund.updated')[0]);
    check(received.some((e) => e.type === 'charge.refunded' && e.data.object.amount_refunded === 500),
          'charge.refunded with amount_refunded');

    // -- Disputes -----------------------------------------------------------------------
    const dp = await ctl('dispute', { payment_intent: pi3.id });
    await until('pi3 succeeded', async () => (await stripe.paymentIntents.retrieve(pi3.id)).status === 'succeeded');
    const dpr = await stripe.disputes.retrieve(dp.id);
    check(dpr.payment_intent === pi3.id && dpr.status === 'needs_response', 'dispute retrieved');
    await until('charge.dispute.created', () => eventsOf(dp.id, 'charge.dispute.created')[0]);
    const closed = await stripe.disputes.close(dp.id);
    check(closed.status === 'lost', 'closing a dispute accepts it: lost');
    await rejects(stripe.refunds.create({ payment_intent: pi3.id }), Stripe.errors.StripeInvalidRequestError,
        'no refund of a disputed charge', (e) => e.code === 'charge_disputed');

    // -- Cancel and expire ------------------------------------------------------------------
    const open = await stripe.paymentIntents.create({ amount: 900, currency: 'gbp' });
    const cancelled = await stripe.paymentIntents.cancel(open.id);
    check(cancelled.status === 'canceled', 'cancel');
    const toExpire = await stripe.checkout.sessions.create({ mode: 'payment', success_url: 'https://x/',
        line_items: [{ price_data: { currency: 'gbp', unit_amount: 100, product_data: { name: 'x' } }, quantity: 1 }] });
    const expired = await stripe.checkout.sessions.expire(toExpire.id);
    check(expired.status === 'expired' && expired.url === null, 'expire');
    await rejects(stripe.checkout.sessions.expire(toExpire.id), Stripe.errors.StripeInvalidRequestError,
        'expire twice');

    // -- Payouts: an automatic payout, its charges listed page by page ------------------------
    for (const x of [pi4, pi5])
        await until(`${x.id} succeeded`, async () => (await stripe.paymentIntents.retrieve(x.id)).status === 'succeeded');
    const po = await ctl('payout', { payment_intents: [pi.id, pi4.id, pi5.id] });
    check(po.status === 'pending' && po.automatic === true && po.amount === 4500, 'payout pending, automatic');
    const poPaid = await until('payout paid', async () => {
        const x = await stripe.payouts.retrieve(po.id);
        return x.status === 'paid' ? x : null;
    });
    check(poPaid && poPaid.object === 'payout' && poPaid.failure_code === null, 'payout paid');
    const paidEv = await until('payout.paid event', () => eventsOf(po.id, 'payout.paid')[0]);
    check(paidEv && paidEv.data.object.amount === 4500, 'signed payout.paid verified by constructEvent');
    const page1 = await stripe.balanceTransactions.list({ payout: po.id, type: 'charge', limit: 2,
                                                           expand: ['data.source'] });
    check(page1.data.length === 2 && page1.has_more === true, 'a first page of two, has_more');
    const txns = await stripe.balanceTransactions.list({ payout: po.id, type: 'charge', limit: 2,
                                                          expand: ['data.source'] }).autoPagingToArray({ limit: 10 });
    check(txns.length === 3 && new Set(txns.map((t) => t.id)).size === 3, 'auto-pagination: the three charges once');
    check(txns.every((t) => t.type === 'charge' && t.source.object === 'charge') &&
          new Set(txns.map((t) => t.source.payment_intent)).size === 3 &&
          txns.every((t) => [pi.id, pi4.id, pi5.id].includes(t.source.payment_intent)),
          'expanded sources name the PaymentIntents');
    const plain = await stripe.balanceTransactions.retrieve(txns[0].id);
    check(typeof plain.source === 'string' && plain.source.startsWith('ch_'), 'unexpanded source: the charge id');
    await rejects(stripe.balanceTransactions.list({ payout: 'po_nonexistent' }), Stripe.errors.StripeInvalidRequestError,
        'unknown payout', (e) => e.statusCode === 404 && e.code === 'resource_missing');
    const poF = await ctl('payout', { payment_intents: [pi3.id], outcome: 'failed' });
    const failedEv = await until('payout.failed event', () => eventsOf(poF.id, 'payout.failed')[0]);
    check(failedEv && failedEv.data.object.failure_code === 'account_closed' &&
          (await stripe.payouts.retrieve(poF.id)).status === 'failed', 'a failed payout');

    // -- A held answer: the work is done, the answer waits (a client killed meanwhile) --------
    await ctl('faults', { path: '^/v1/payment_intents$', kind: 'hold', count: 1, seconds: 30 });
    await rejects(stripe.paymentIntents.create({ ...piParams }, { idempotencyKey: 'a6-charge' }),
        Stripe.errors.StripeConnectionError, 'a held answer times out');
    st = await ctl('state');
    check(st.held === 1 && st.creates['a6-charge'] === 1, 'held: the PaymentIntent was created');
    const pi6 = await stripe.paymentIntents.create({ ...piParams }, { idempotencyKey: 'a6-charge' });
    check(pi6.lastResponse.headers['idempotent-replayed'] === 'true' && (await ctl('state')).creates['a6-charge'] === 1,
          'the same key again: the stored answer, no second create');
    check((await ctl('release', {})).released === 1, 'release the held answer');

    // -- Webhook signatures -------------------------------------------------------------------
    await until('all delivered', async () => (await ctl('state')).outbox === 0);
    check(verifyErrors.length === 0, `every delivery verified (${verifyErrors.join('; ')})`);
    const ev = received[0];
    const body = JSON.stringify(ev);
    const header = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: SECRET });
    check(/^t=\d+,v1=[0-9a-f]{64}$/.test(header), 'header shape t=,v1=');
} catch (e) {
    failed++;
    console.log('FAIL', e);
} finally {
    child.kill();
    hook.close();
    agent.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
