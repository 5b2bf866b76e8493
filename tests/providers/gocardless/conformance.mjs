// Conformance of the GoCardless double with GoCardless's own Node library:
// the official gocardless-nodejs client (10.1.2) drives the double and must
// understand every answer (envelopes, the hosted flow's results, cursors,
// the idempotency conflict it resolves itself, each error class), and the
// double's webhooks must pass the library's signature check. A double that
// drifts from what the vendor's library sends and parses fails here.
//
// The client has no base-URL option: it is given an HTTPS agent that opens
// its connections to the double on loopback (the double's certificate names
// api-sandbox.gocardless.com too, signed by the test CA), so nothing leaves
// the machine. Reads GC_DOUBLE_URL, GC_DOUBLE_CA, PAY_BASE_URL and
// GC_WEBHOOK_SECRET from the file $PAY_STACK_ENV.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { check, env, finish } from './lib.mjs';
import gocardless, { Environments } from 'gocardless-nodejs';
import * as errors from 'gocardless-nodejs/errors';
import { parse, parseWithMeta, verifySignature } from 'gocardless-nodejs/webhooks';

const DOUBLE = new URL(env.GC_DOUBLE_URL);
const CA = fs.readFileSync(env.GC_DOUBLE_CA);

class LoopbackAgent extends https.Agent {
  createConnection(options, cb) {
    return tls.connect({ ...options, host: '127.0.0.1', port: Number(DOUBLE.port),
      servername: 'api-sandbox.gocardless.com', ca: CA }, cb);
  }
}
const agent = new LoopbackAgent({ keepAlive: true, ca: CA });
const client = (token = 'sandbox_double_token', options = {}) =>
  gocardless(token, Environments.Sandbox, { proxy: { https: agent }, ...options });
const gc = client();

async function rejects(promise, cls, what) {
  try {
    await promise;
    check(false, `${what}: throws ${cls.name}`);
    return null;
  } catch (e) {
    check(e instanceof cls, `${what}: throws ${cls.name}`, e && e.constructor && e.constructor.name);
    return e;
  }
}

// Node's fetch does not take a CA option: the controls and the hosted page
// are reached with https.request and the test CA.
function raw(method, path, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: Number(DOUBLE.port), path, method, ca: CA,
      headers }, (res) => {
      let data = '';
      res.on('data', (c) => { data += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }));
    });
    req.on('error', reject);
    if (body) req.write(body);
    req.end();
  });
}
const ctl = async (path, body) => JSON.parse((await raw(body ? 'POST' : 'GET', `/_double/${path}`,
  body ? JSON.stringify(body) : undefined, { 'Content-Type': 'application/json' })).body);

async function main() {
  // Billing Request + Flow, completed on the hosted page.
  const br = await gc.billingRequests.create({ mandate_request: { currency: 'GBP' },
    metadata: { conformance: 'yes' } });
  check(/^BRQ/.test(br.id) && br.status === 'pending', 'billing request created', br);
  check(br.__response__.statusCode === 201, 'create answers 201', br.__response__.statusCode);
  check(br.__response__.headers.location === `/billing_requests/${br.id}`, 'Location header');
  const flow = await gc.billingRequestFlows.create({ links: { billing_request: br.id },
    redirect_uri: 'https://shop.example/return', exit_uri: 'https://shop.example/exit' });
  check(/^BRF/.test(flow.id) && flow.authorisation_url.startsWith(env.GC_DOUBLE_URL),
    'flow with an authorisation_url on the double', flow);
  const u = new URL(flow.authorisation_url);
  const pageGet = await raw('GET', u.pathname + u.search);
  check(pageGet.status === 200 && pageGet.body.includes('account_number'), 'hosted page served');
  const done = await raw('POST', u.pathname + u.search,
    'account_holder_name=Ann+Lee&branch_code=20-00-00&account_number=55779911&do=confirm',
    { 'Content-Type': 'application/x-www-form-urlencoded' });
  check(done.status === 303 && done.headers.location === 'https://shop.example/return',
    'hosted page sends the payer to redirect_uri', done.status);
  const brDone = await gc.billingRequests.find(br.id);
  const md = brDone.links.mandate_request_mandate;
  check(brDone.status === 'fulfilled' && /^MD/.test(md), 'billing request fulfilled with a mandate', brDone);
  const mandate = await gc.mandates.find(md);
  check(mandate.id === md && mandate.status === 'pending_submission', 'mandate found', mandate);
  const ba = await gc.customerBankAccounts.find(brDone.links.customer_bank_account);
  check(ba.account_number_ending === '11', 'bank account: last digits only', ba);

  // Payments, idempotency: the library resolves the 409 itself.
  const key = `conf-${Date.now()}`;
  const p1 = await gc.payments.create({ amount: 1234, currency: 'GBP', links: { mandate: md },
    metadata: { k: key } }, key);
  check(/^PM/.test(p1.id) && p1.amount === 1234 && p1.status === 'pending_submission', 'payment', p1);
  const p2 = await gc.payments.create({ amount: 1234, currency: 'GBP', links: { mandate: md } }, key);
  check(p2.id === p1.id, 'the same key again: the library answers the first payment', p2.id);
  const strict = client('sandbox_double_token', { raiseOnIdempotencyConflict: true });
  const conflict = await rejects(strict.payments.create({ amount: 1234, currency: 'GBP',
    links: { mandate: md } }, key), errors.IdempotentCreationConflictError, 'raiseOnIdempotencyConflict');
  check(conflict && conflict.conflictingResourceId === p1.id && conflict.code === 409,
    'the conflict names the payment', conflict && conflict.conflictingResourceId);
  let state = await ctl('state');
  check(state.creates[`payments ${key}`] === 3, 'creates counted per key', state.creates[`payments ${key}`]);
  check(Object.values(state.payments).filter((p) => p.metadata.k === key).length === 1,
    'one payment for the key');

  // Cancel (the library sends no body), list with cursors.
  const cancelled = await gc.payments.cancel(p1.id);
  check(cancelled.status === 'cancelled', 'cancel', cancelled.status);
  await rejects(gc.payments.cancel(p1.id), errors.InvalidStateError, 'cancel twice');
  const p3 = await gc.payments.create({ amount: '500', currency: 'GBP', links: { mandate: md } });
  check(p3.amount === 500, 'amount given as a string is accepted', p3.amount);
  const page = await gc.payments.list({ limit: 1 });
  check(page.payments.length === 1 && page.meta.cursors.after && page.meta.limit === 1,
    'list: one per page with a cursor', page.meta);
  let n = 0;
  for await (const p of gc.payments.all({ limit: 1 })) n += p.id ? 1 : 0;
  check(n >= 2, 'all() walks the cursors', n);

  // Refunds after the payment is collected.
  for (const action of ['submitted', 'confirmed', 'paid_out']) {
    await ctl('simulate', { resource: 'payments', id: p3.id, action });
  }
  const rf = await gc.refunds.create({ amount: 200, total_amount_confirmation: 200,
    links: { payment: p3.id } });
  check(/^RF/.test(rf.id) && rf.amount === 200, 'refund', rf);
  await rejects(gc.refunds.create({ amount: 200, total_amount_confirmation: 200,
    links: { payment: p3.id } }), errors.InvalidStateError, 'a stale total_amount_confirmation');
  await rejects(gc.refunds.create({ amount: 400, total_amount_confirmation: 600,
    links: { payment: p3.id } }), errors.InvalidStateError, 'more than is left');

  // Errors, each the library's class.
  await rejects(gc.payments.create({ amount: 1, currency: 'GBP', links: { mandate: 'MD999' } }),
    errors.ValidationFailedError, 'unknown mandate');
  await rejects(client('wrong').payments.find(p3.id), errors.AuthenticationError, 'bad token');
  await rejects(gc.payments.find('PM404'), errors.InvalidApiUsageError, 'not found');
  await ctl('fault', { method: 'POST', prefix: '/payments', kind: 500 });
  const e500 = await rejects(gc.payments.create({ amount: 1, currency: 'GBP', links: { mandate: md } }),
    errors.GoCardlessInternalError, '500');
  check(e500 && e500.requestId, '500 carries a request id');
  await ctl('fault', { method: 'POST', prefix: '/payments', kind: 429 });
  const e429 = await rejects(gc.payments.create({ amount: 1, currency: 'GBP', links: { mandate: md } }),
    errors.RateLimitError, '429');
  check(e429 && e429.response.headers['ratelimit-remaining'] === '0', '429: RateLimit headers');
  // hold: the payment is made, its answer waits (a client killed meanwhile);
  // the same key again while it waits names the payment already made.
  await ctl('fault', { method: 'POST', prefix: '/payments', kind: 'hold', seconds: 1 });
  const holdKey = `hold-${Date.now()}`;
  const t0 = Date.now();
  const waiting = gc.payments.create({ amount: 300, currency: 'GBP', links: { mandate: md } }, holdKey);
  const again = await gc.payments.create({ amount: 300, currency: 'GBP', links: { mandate: md } }, holdKey);
  const heldPm = await waiting;
  check(heldPm.id === again.id && Date.now() - t0 >= 900, 'a held answer comes late; the key names its payment',
    [heldPm.id, again.id]);
  check(Object.values((await ctl('state')).payments).filter((x) => x.amount === 300).length === 1,
    'one payment made for the held key');
  await ctl('simulate', { resource: 'mandates', id: md, action: 'cancelled' });
  const inactive = await rejects(gc.payments.create({ amount: 1, currency: 'GBP', links: { mandate: md } }),
    errors.InvalidStateError, 'payment on a cancelled mandate');
  check(inactive && inactive.errors[0].reason === 'mandate_is_inactive', 'reason mandate_is_inactive');

  // Instant bank payments: a Billing Request with a payment_request (the
  // key in its metadata), paid on the hosted page; the fulfilled request
  // names its payment, which carries the payment request's metadata.
  const ibpKey = `ibp-${Date.now()}`;
  const ibpParams = { payment_request: { amount: 2499, currency: 'GBP', description: 'conformance',
    metadata: { pay_api_key: ibpKey } } };
  const ibp = await gc.billingRequests.create(ibpParams, ibpKey);
  check(/^BRQ/.test(ibp.id) && ibp.status === 'pending' && ibp.payment_request.amount === 2499
    && ibp.mandate_request === null, 'billing request with a payment_request', ibp);
  const ibpAgain = await gc.billingRequests.create(ibpParams, ibpKey);
  check(ibpAgain.id === ibp.id, 'the same key: the same billing request', ibpAgain.id);
  check((await ctl('state')).creates[`billing_requests ${ibpKey}`] === 2, 'two creates counted for the key');
  const ibpFlow = await gc.billingRequestFlows.create({ links: { billing_request: ibp.id },
    redirect_uri: 'https://shop.example/pay', exit_uri: 'https://shop.example/pay?exit=1' });
  const iu = new URL(ibpFlow.authorisation_url);
  const payPage = await raw('GET', iu.pathname + iu.search);
  check(payPage.status === 200 && payPage.body.includes('Pay with your bank')
    && payPage.body.includes('GBP 24.99'), 'hosted payment page served', payPage.status);
  const paid = await raw('POST', iu.pathname + iu.search, 'do=confirm',
    { 'Content-Type': 'application/x-www-form-urlencoded' });
  check(paid.status === 303 && paid.headers.location === 'https://shop.example/pay',
    'confirmed: the payer sent to redirect_uri', paid.status);
  const ibpDone = await gc.billingRequests.find(ibp.id);
  const ibpPm = ibpDone.links.payment_request_payment;
  check(ibpDone.status === 'fulfilled' && /^PM/.test(ibpPm || ''), 'fulfilled with its payment', ibpDone);
  const ibpPayment = await gc.payments.find(ibpPm);
  check(ibpPayment.amount === 2499 && ibpPayment.metadata.pay_api_key === ibpKey,
    'the payment carries the payment request\'s metadata', ibpPayment);
  await rejects(gc.billingRequests.cancel(ibp.id), errors.InvalidStateError, 'cancel a fulfilled request');
  await rejects(gc.billingRequestFlows.create({ links: { billing_request: ibp.id } }),
    errors.InvalidStateError, 'a flow for a fulfilled request');
  const left = await gc.billingRequests.create({ payment_request: { amount: 100, currency: 'GBP' } });
  const leftCancelled = await gc.billingRequests.cancel(left.id);
  check(leftCancelled.status === 'cancelled', 'a pending request cancelled', leftCancelled.status);
  await rejects(gc.billingRequests.create({ payment_request: { amount: 0, currency: 'GBP' } }),
    errors.ValidationFailedError, 'a payment_request of 0');

  // Webhooks: delivered to a receiver here, checked with the library.
  const got = [];
  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { got.push({ body, sig: req.headers['webhook-signature'] }); res.end(); });
  });
  await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
  const secret = 'conformance-secret';
  const here = `http://127.0.0.1:${receiver.address().port}/`;
  await ctl('config', { webhook_url: here, ibp_webhook_url: here, webhook_secret: secret });
  await ctl('simulate', { resource: 'refunds', id: rf.id, action: 'paid' });
  for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  check(got.length >= 1, 'a webhook arrived');
  if (got.length) {
    const { events, webhookId } = parseWithMeta(got[0].body, secret, got[0].sig);
    check(/^WB/.test(webhookId) && events.some((e) => e.resource_type === 'refunds' && e.action === 'paid'
      && e.links.refund === rf.id), 'the library parses the batch', events);
    check(parse(got[0].body, secret, got[0].sig).length === events.length, 'parse agrees');
    let threw = false;
    try { verifySignature(got[0].body, 'another-secret', got[0].sig); } catch { threw = true; }
    check(threw, 'another secret is refused by the library');
  }
  got.length = 0;
  await ctl('simulate', { resource: 'payments', id: ibpPm, action: 'confirmed' });
  for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  const ibpEvents = got.length ? parse(got[0].body, secret, got[0].sig) : [];
  check(ibpEvents.some((e) => e.resource_type === 'payments' && e.action === 'confirmed'
    && e.links.payment === ibpPm && e.resource_metadata.pay_api_key === ibpKey),
    'the instant bank payment\'s event, with its metadata, parsed by the library', ibpEvents);
  await ctl('config', { webhook_url: `${env.PAY_BASE_URL}/webhooks/1`,
    ibp_webhook_url: `${env.PAY_BASE_URL}/webhooks/2`, webhook_secret: env.GC_WEBHOOK_SECRET });
  receiver.close();
  agent.destroy();
  finish();
}

main().catch((e) => {
  check(false, 'conformance raised', String(e && e.stack || e));
  finish();
});
