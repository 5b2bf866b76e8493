// A GoCardless API double for the tests: HTTPS on loopback with a certificate
// from a CA the test made (DIR/server.pem, DIR/server.key), following the
// published request and response formats of API version 2015-07-06: plural
// envelopes in and out, "data" for actions (no body, {"data":{}} and null all
// accepted), 201 + Location on creates, IDs with their prefixes, the error
// envelope {"error":{type,code,message,documentation_url,request_id,errors}}
// with X-Request-Id, 401 without a bearer token, 429 with RateLimit-* headers,
// and idempotency: a create repeated with its Idempotency-Key answers 409
// invalid_state / idempotent_creation_conflict with
// errors[0].links.conflicting_resource_id, and creates are counted per key.
//
// It serves a minimal hosted Billing Request Flow page (authorisation_url):
// the customer enters bank details there and is sent to redirect_uri (or
// exit_uri). A Billing Request with a payment_request (an instant bank
// payment) is paid there instead: the payer confirms (the request is
// fulfilled: a payment, links.payment_request_payment, carrying the payment
// request's metadata, then the usual payment lifecycle), leaves (exit_uri;
// the request stays pending until cancelled through its cancel action) or
// their bank declines the authorisation (bank_authorisation_denied: the
// request stays pending, the payer may try again or leave). As in
// GoCardless, flows can be created but not read (no GET of a flow: the
// official client offers only create and initialise). Events about instant bank
// payments go to ibp_webhook_url when one is configured (another creditor's
// endpoint), the others to webhook_url. Webhooks are batches {"events":[…],"meta":{"webhook_id"}} with
// Webhook-Signature = hex HMAC-SHA256(secret, body); every delivery is checked
// with the official gocardless-nodejs parseWithMeta before it is sent.
//
// Test controls (no auth, /_double/…): config (webhook URL and secret),
// simulate (a scenario action on a resource, like GoCardless's sandbox
// scenario simulators), fault (for the next N matching calls), resend
// (deliver stored events again, in any order; billing requests:
// ready_to_fulfil, every action done but not yet fulfilled, and
// fulfilled_payment_failed, GoCardless's sandbox scenario of that name: the
// request fulfilled, then the payment it made failed),
// hold (keep events back, then release them), drop (lose the held events
// about one resource), state (resources, creates per
// key, deliveries, requests). Faults: 500, 403 (insufficient_permissions),
// 429 (Retry-After and RateLimit-*),
// hang (no answer), close (connection closed before acting), lost (the create
// is made, then the connection closed before the answer), hold (the create is
// made, its answer held for `seconds` or until POST /_double/release: a client
// killed while it waits).
//
//   node double.mjs DIR      writes DIR/port when listening
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { parseWithMeta } from 'gocardless-nodejs/webhooks';

const dir = process.argv[2];
if (!dir) {
  console.error('usage: node double.mjs DIR');
  process.exit(2);
}
const TOKEN = process.env.GC_DOUBLE_TOKEN || 'sandbox_double_token';

let webhookUrl = null;
let ibpWebhookUrl = null;
let webhookSecret = null;
const ibpIds = new Set(); // billing requests with a payment_request, their payments
let base = null; // https://127.0.0.1:PORT

const store = {
  billing_requests: new Map(),
  billing_request_flows: new Map(),
  customers: new Map(),
  customer_bank_accounts: new Map(),
  mandates: new Map(),
  payments: new Map(),
  refunds: new Map(),
  events: new Map(),
};
const creates = {}; // "<resource> <key>" -> count
const keys = new Map(); // "<resource> <key>" -> id
const faults = []; // {method, prefix, kind, count, retryAfter}
const deliveries = []; // {webhook_id, events, status}
const requests = []; // {method, path, status, idempotencyKey}

let seq = 0;
const newId = (prefix) => `${prefix}${String(++seq).padStart(10, '0')}`;
const now = () => new Date().toISOString().replace(/(\.\d{3})\d*Z$/, '$1Z');
const today = () => now().slice(0, 10);

function send(res, status, body, headers = {}) {
  const rid = crypto.randomUUID();
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'X-Request-Id': rid,
    'Content-Length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
  return status;
}

function error(res, status, type, reason, message, extra = {}, headers = {}) {
  const requestId = crypto.randomUUID();
  const item = { reason, message, ...extra };
  const body = {
    error: {
      type, code: status, message,
      documentation_url: `https://developer.gocardless.com/api-reference#${reason}`,
      request_id: requestId, errors: [item],
    },
  };
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json', 'X-Request-Id': requestId,
    'Content-Length': Buffer.byteLength(text), ...headers,
  });
  res.end(text);
  return status;
}

// ---- webhooks -----------------------------------------------------------------

const outbox = [];
let delivering = false;
let held = false; // hold: events wait in the outbox (out-of-order tests)

function event(resourceType, action, links, details = {}, resourceMetadata = {}) {
  const ev = {
    id: newId('EV'), created_at: now(), resource_type: resourceType, action, links,
    details: { origin: 'gocardless', cause: `${resourceType.replace(/s$/, '')}_${action}`,
      description: `The ${resourceType.replace(/s$/, '')} was ${action.replace(/_/g, ' ')}.`, ...details },
    metadata: {}, resource_metadata: resourceMetadata,
  };
  store.events.set(ev.id, ev);
  outbox.push(ev);
  setImmediate(flush);
  return ev;
}

const urlOf = (ev) => (ibpWebhookUrl && Object.values(ev.links).some((id) => ibpIds.has(id))
  ? ibpWebhookUrl : webhookUrl);

async function deliver(events, url = webhookUrl) {
  if (!url || !webhookSecret) return 0;
  const body = JSON.stringify({ events, meta: { webhook_id: newId('WB') } });
  const signature = crypto.createHmac('sha256', webhookSecret).update(body).digest('hex');
  // The official library must accept what we send.
  const parsed = parseWithMeta(body, webhookSecret, signature);
  if (parsed.events.length !== events.length) throw new Error('gocardless-nodejs disagrees');
  let status = 0;
  try {
    const r = await fetch(url, {
      method: 'POST', body,
      headers: { 'Content-Type': 'application/json', 'Webhook-Signature': signature,
        'User-Agent': 'gocardless-webhook-service/1.1', Origin: 'https://api.gocardless.com' },
      signal: AbortSignal.timeout(10000),
    });
    status = r.status;
    await r.text();
  } catch {
    status = 0;
  }
  deliveries.push({ webhook_id: parsed.webhookId, events: events.map((e) => e.id), status });
  return status;
}

async function flush() {
  if (delivering) return;
  delivering = true;
  try {
    while (outbox.length && webhookUrl && !held) {
      const url = urlOf(outbox[0]);
      let n = 0;
      while (n < outbox.length && urlOf(outbox[n]) === url) n += 1;
      const batch = outbox.splice(0, n);
      const status = await deliver(batch, url);
      if (status < 200 || status > 299) { // GoCardless retries later
        outbox.unshift(...batch);
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  } finally {
    delivering = false;
  }
}

// ---- resources ------------------------------------------------------------------

const toInt = (v) => (typeof v === 'number' && Number.isInteger(v) ? v
  : typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : null);

function validation(res, field, message) {
  return error(res, 422, 'validation_failed', 'invalid_type', `${field} ${message}`,
    { field, request_pointer: `/${field}` });
}

function createPayment(res, p) {
  const amount = toInt(p.amount);
  if (amount === null || amount <= 0) return [validation(res, 'amount', 'must be a positive integer')];
  if (typeof p.currency !== 'string' || !/^[A-Z]{3}$/.test(p.currency)) return [validation(res, 'currency', 'is invalid')];
  const md = store.mandates.get(p.links?.mandate);
  if (!md) return [validation(res, 'links.mandate', 'was not found')];
  if (['cancelled', 'failed', 'expired', 'consumed', 'blocked'].includes(md.status)) {
    return [error(res, 422, 'invalid_state', 'mandate_is_inactive', 'The mandate is not active')];
  }
  if (p.metadata && Object.keys(p.metadata).length > 3) return [validation(res, 'metadata', 'has more than 3 keys')];
  const pm = {
    id: newId('PM'), created_at: now(), charge_date: p.charge_date || today(), amount,
    description: p.description ?? null, currency: p.currency, status: 'pending_submission',
    reference: p.reference ?? null, metadata: p.metadata || {}, amount_refunded: 0,
    fx: { fx_currency: null, fx_amount: null, exchange_rate: null, estimated_exchange_rate: null },
    retry_if_possible: p.retry_if_possible ?? false, scheme: 'bacs', faster_ach: false,
    links: { mandate: md.id, creditor: 'CR0000000001' },
  };
  store.payments.set(pm.id, pm);
  event('payments', 'created', { payment: pm.id }, { cause: 'payment_created' }, pm.metadata);
  return [null, pm];
}

function createRefund(res, f) {
  const amount = toInt(f.amount);
  const total = toInt(f.total_amount_confirmation);
  if (amount === null || amount <= 0) return [validation(res, 'amount', 'must be a positive integer')];
  const pm = store.payments.get(f.links?.payment);
  if (!pm) return [validation(res, 'links.payment', 'was not found')];
  if (total === null || total !== pm.amount_refunded + amount) {
    return [error(res, 422, 'invalid_state', 'total_amount_confirmation_invalid',
      'total_amount_confirmation does not match the refunds of the payment')];
  }
  if (pm.amount_refunded + amount > pm.amount) {
    return [error(res, 422, 'invalid_state', 'available_refund_amount_insufficient',
      'The payment has not enough left to refund')];
  }
  pm.amount_refunded += amount;
  const rf = {
    id: newId('RF'), created_at: now(), amount, currency: pm.currency, status: 'created',
    reference: f.reference ?? null, metadata: f.metadata || {},
    fx: { fx_currency: null, fx_amount: null, exchange_rate: null, estimated_exchange_rate: null },
    links: { payment: pm.id, mandate: pm.links.mandate },
  };
  store.refunds.set(rf.id, rf);
  event('refunds', 'created', { refund: rf.id }, { cause: 'refund_created' }, rf.metadata);
  return [null, rf];
}

function createBillingRequest(res, b) {
  if (!b.mandate_request && !b.payment_request) {
    return [validation(res, 'mandate_request', 'or payment_request is required')];
  }
  const pr = b.payment_request;
  if (pr) {
    const amount = toInt(pr.amount);
    if (amount === null || amount <= 0) return [validation(res, 'payment_request.amount', 'must be a positive integer')];
    if (typeof pr.currency !== 'string' || !/^[A-Z]{3}$/.test(pr.currency)) return [validation(res, 'payment_request.currency', 'is invalid')];
    if (pr.metadata && Object.keys(pr.metadata).length > 3) return [validation(res, 'payment_request.metadata', 'has more than 3 keys')];
  }
  const cu = { id: newId('CU'), created_at: now(), email: null, given_name: null, family_name: null,
    company_name: null, metadata: {} };
  store.customers.set(cu.id, cu);
  const br = {
    id: newId('BRQ'), created_at: now(), status: 'pending',
    mandate_request: b.mandate_request ? { currency: b.mandate_request.currency || 'GBP', scheme: b.mandate_request.scheme || 'bacs',
      verify: b.mandate_request.verify || 'recommended', links: {}, metadata: b.mandate_request.metadata || {} } : null,
    payment_request: pr ? { amount: toInt(pr.amount), currency: pr.currency, scheme: 'faster_payments',
      description: pr.description ?? null, links: {}, metadata: pr.metadata || {} } : null,
    metadata: b.metadata || {}, fallback_enabled: false, fallback_occurred: false,
    links: { customer: cu.id, creditor: 'CR0000000001' },
    actions: [{ type: 'collect_customer_details', required: true, status: 'pending', requires_actions: [], completes_actions: [] },
      { type: 'collect_bank_account', required: true, status: 'pending', requires_actions: [], completes_actions: [] }],
  };
  if (pr && !b.mandate_request) {
    ibpIds.add(br.id);
    br.actions = [{ type: 'select_institution', required: true, status: 'pending', requires_actions: [], completes_actions: [] },
      { type: 'bank_authorisation', required: true, status: 'pending', requires_actions: ['select_institution'], completes_actions: [] }];
  }
  store.billing_requests.set(br.id, br);
  event('billing_requests', 'created', { billing_request: br.id });
  return [null, br];
}

function createFlow(res, f) {
  const br = store.billing_requests.get(f.links?.billing_request);
  if (!br) return [validation(res, 'links.billing_request', 'was not found')];
  if (!['pending', 'ready_to_fulfil'].includes(br.status)) {
    return [error(res, 422, 'invalid_state', 'billing_request_not_pending', 'The billing request is not pending')];
  }
  const id = newId('BRF');
  const flow = {
    id, authorisation_url: `${base}/billing/static/flow?id=${id}`,
    redirect_uri: f.redirect_uri ?? null, exit_uri: f.exit_uri ?? null, auto_fulfil: true,
    lock_customer_details: false, lock_bank_account: false, session_token: null,
    expires_at: new Date(Date.now() + 7 * 86400000).toISOString(), created_at: now(),
    links: { billing_request: br.id },
  };
  store.billing_request_flows.set(id, flow);
  event('billing_requests', 'flow_created', { billing_request: br.id });
  return [null, flow];
}

const CREATES = {
  payments: createPayment, refunds: createRefund, billing_requests: createBillingRequest,
  billing_request_flows: createFlow,
};

// The Billing Request is fulfilled: a bank account, a mandate (and payment).
function fulfil(br, holder, accountNumber) {
  const cu = store.customers.get(br.links.customer);
  const parts = holder.trim().split(/\s+/);
  cu.given_name = parts.slice(0, -1).join(' ') || null;
  cu.family_name = parts[parts.length - 1];
  const ba = {
    id: newId('BA'), created_at: now(), account_holder_name: holder.toUpperCase().slice(0, 18),
    account_number_ending: accountNumber.slice(-2), country_code: 'GB', currency: 'GBP',
    bank_name: 'DOUBLE BANK', enabled: true, metadata: {}, links: { customer: cu.id },
  };
  store.customer_bank_accounts.set(ba.id, ba);
  br.links.customer_bank_account = ba.id;
  if (br.mandate_request) {
    const md = {
      id: newId('MD'), created_at: now(), reference: `DOUBLE-${seq}`, scheme: 'bacs',
      status: 'pending_submission', next_possible_charge_date: today(), payments_require_approval: false,
      metadata: br.mandate_request.metadata, links: { customer: cu.id, customer_bank_account: ba.id, creditor: 'CR0000000001' },
    };
    store.mandates.set(md.id, md);
    br.links.mandate_request_mandate = md.id;
    event('mandates', 'created', { mandate: md.id }, { cause: 'mandate_created' });
  }
  br.status = 'fulfilled';
  br.actions.forEach((a) => { a.status = 'completed'; });
  event('billing_requests', 'fulfilled', { billing_request: br.id });
}

// An instant bank payment's request authorised by the payer's bank: the
// payment (with the payment request's metadata), then the request fulfilled.
function fulfilPayment(br) {
  const pm = {
    id: newId('PM'), created_at: now(), charge_date: today(), amount: br.payment_request.amount,
    description: br.payment_request.description, currency: br.payment_request.currency,
    status: 'pending_submission', reference: null, metadata: { ...br.payment_request.metadata },
    amount_refunded: 0, fx: { fx_currency: null, fx_amount: null, exchange_rate: null, estimated_exchange_rate: null },
    retry_if_possible: false, scheme: 'faster_payments', faster_ach: false,
    links: { creditor: 'CR0000000001' },
  };
  store.payments.set(pm.id, pm);
  ibpIds.add(pm.id);
  br.links.payment_request_payment = pm.id;
  br.payment_request.links.payment = pm.id;
  event('payments', 'created', { payment: pm.id }, { cause: 'payment_created' }, pm.metadata);
  br.status = 'fulfilled';
  br.actions.forEach((a) => { a.status = 'completed'; });
  event('billing_requests', 'bank_authorisation_authorised', { billing_request: br.id });
  event('billing_requests', 'fulfilled', { billing_request: br.id, payment_request_payment: pm.id });
}

// ---- scenario simulators ----------------------------------------------------------

const SIM = {
  mandates: {
    submitted: ['pending_submission', 'submitted'], active: [null, 'active'],
    failed: [null, 'failed'], cancelled: [null, 'cancelled'], expired: [null, 'expired'],
  },
  payments: {
    submitted: ['pending_submission', 'submitted'], confirmed: ['submitted', 'confirmed'],
    paid_out: ['confirmed', 'paid_out'], failed: ['submitted', 'failed'],
    late_failure_settled: [null, 'failed'], charged_back: ['paid_out', 'charged_back'],
    chargeback_cancelled: ['charged_back', 'paid_out'], chargeback_settled: ['charged_back', 'charged_back'],
  },
  refunds: {
    pending_submission: ['created', 'pending_submission'], submitted: [null, 'submitted'],
    paid: [null, 'paid'], refund_settled: ['paid', 'paid'], failed: [null, 'bounced'],
    funds_returned: [null, 'funds_returned'],
  },
};
const LINK = { mandates: 'mandate', payments: 'payment', refunds: 'refund' };

function simulate(resource, id, action, details = {}) {
  const r = store[resource]?.get(id);
  if (resource === 'billing_requests' && r?.payment_request && ['pending', 'ready_to_fulfil'].includes(r.status)) {
    if (action === 'ready_to_fulfil') {
      r.status = 'ready_to_fulfil';
      r.actions.forEach((a) => { a.status = 'completed'; });
      event('billing_requests', 'bank_authorisation_authorised', { billing_request: r.id });
      return true;
    }
    if (action === 'fulfilled_payment_failed') {
      fulfilPayment(r);
      const pm = store.payments.get(r.links.payment_request_payment);
      pm.status = 'failed';
      event('payments', 'failed', { payment: pm.id }, { origin: 'bank', cause: 'payment_failed',
        will_attempt_retry: false }, pm.metadata);
      return true;
    }
  }
  const rule = SIM[resource]?.[action];
  if (!r || !rule) return false;
  r.status = rule[1];
  event(resource, action, { [LINK[resource]]: id }, details, r.metadata || {});
  return true;
}

// ---- HTTP ----------------------------------------------------------------------------

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function takeFault(method, p) {
  const i = faults.findIndex((f) => f.count > 0 && (!f.method || f.method === method) && p.startsWith(f.prefix));
  if (i < 0) return null;
  faults[i].count -= 1;
  return faults[i];
}

function page(res, status, html) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8' });
  res.end(`<!doctype html><html><head><title>GoCardless (double)</title></head><body>${html}</body></html>`);
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function hosted(req, res, url) {
  const flow = store.billing_request_flows.get(url.searchParams.get('id'));
  if (!flow) return page(res, 404, '<h1>Not found</h1>');
  const br = store.billing_requests.get(flow.links.billing_request);
  if (br.payment_request && !br.mandate_request) return hostedPayment(req, res, flow, br);
  if (req.method === 'GET') {
    return page(res, 200, `<h1>Set up a Direct Debit with GoCardless</h1>
<form method="post" action="/billing/static/flow?id=${esc(flow.id)}">
<label for="holder">Account holder name</label><input id="holder" name="account_holder_name">
<label for="sort">Sort code</label><input id="sort" name="branch_code">
<label for="acct">Account number</label><input id="acct" name="account_number">
<button type="submit" name="do" value="confirm">Confirm</button>
<button type="submit" name="do" value="exit">Exit</button></form>`);
  }
  const form = new URLSearchParams(await readBody(req));
  if (form.get('do') === 'exit') {
    event('billing_requests', 'flow_exited', { billing_request: br.id });
    res.writeHead(303, { Location: flow.exit_uri || '/' });
    return res.end();
  }
  const holder = form.get('account_holder_name') || '';
  const sort = (form.get('branch_code') || '').replace(/[^0-9]/g, '');
  const acct = (form.get('account_number') || '').replace(/[^0-9]/g, '');
  if (!holder.trim() || sort.length !== 6 || acct.length !== 8) {
    return page(res, 422, '<h1>Check your bank details</h1>');
  }
  if (br.status !== 'fulfilled') fulfil(br, holder, acct);
  res.writeHead(303, { Location: flow.redirect_uri || '/' });
  return res.end();
}

// The payer pays by bank transfer (Instant Bank Pay): confirm (their bank
// authorises: fulfilled), decline (their bank refuses: failed) or exit.
async function hostedPayment(req, res, flow, br) {
  const pr = br.payment_request;
  if (req.method === 'GET') {
    if (!['pending', 'ready_to_fulfil'].includes(br.status)) return page(res, 410, '<h1>This payment request has ended</h1>');
    event('billing_requests', 'flow_visited', { billing_request: br.id });
    return page(res, 200, `<h1>Pay with your bank</h1>
<p id="amount">${esc(pr.currency)} ${esc((pr.amount / 100).toFixed(2))}</p><p id="description">${esc(pr.description ?? '')}</p>
<form method="post" action="/billing/static/flow?id=${esc(flow.id)}">
<button type="submit" name="do" value="confirm">Confirm payment</button>
<button type="submit" name="do" value="decline">My bank declines</button>
<button type="submit" name="do" value="exit">Exit</button></form>`);
  }
  const form = new URLSearchParams(await readBody(req));
  const act = form.get('do');
  if (act === 'exit') {
    event('billing_requests', 'flow_exited', { billing_request: br.id });
    res.writeHead(303, { Location: flow.exit_uri || '/' });
    return res.end();
  }
  if (!['pending', 'ready_to_fulfil'].includes(br.status)) return page(res, 410, '<h1>This payment request has ended</h1>');
  if (act === 'decline') { // the request stays pending: try again or leave
    event('billing_requests', 'bank_authorisation_denied', { billing_request: br.id });
    return page(res, 200, `<h1 id="declined">Your bank declined the payment</h1>
<form method="post" action="/billing/static/flow?id=${esc(flow.id)}">
<button type="submit" name="do" value="confirm">Try again</button>
<button type="submit" name="do" value="exit">Exit</button></form>`);
  } else if (act === 'confirm') {
    fulfilPayment(br);
  } else {
    return page(res, 400, '<h1>Unknown action</h1>');
  }
  res.writeHead(303, { Location: flow.redirect_uri || '/' });
  return res.end();
}

// drop: the held events about one resource are never delivered (a webhook
// lost for good: GoCardless gave up retrying); answers their ids.
function dropHeld(id) {
  const dropped = [];
  for (let i = outbox.length - 1; i >= 0; i -= 1) {
    if (Object.values(outbox[i].links).includes(id)) dropped.unshift(outbox.splice(i, 1)[0].id);
  }
  return dropped;
}

// Answers held by a 'hold' fault (the work is done): sent after the fault's
// seconds or on release, if the client is still there.
const heldAnswers = [];
function holdAnswer(res, seconds, status, body, headers) {
  const h = { send: () => { if (!res.destroyed && !res.socket?.destroyed) send(res, status, body, headers); } };
  h.timer = setTimeout(() => {
    const i = heldAnswers.indexOf(h);
    if (i >= 0) heldAnswers.splice(i, 1);
    h.send();
  }, seconds * 1000);
  heldAnswers.push(h);
}
function releaseAnswers() {
  const n = heldAnswers.length;
  for (const h of heldAnswers.splice(0)) { clearTimeout(h.timer); h.send(); }
  return n;
}

async function control(req, res, p) {
  const body = req.method === 'POST' ? JSON.parse((await readBody(req)) || '{}') : {};
  if (p === '/_double/release') return send(res, 200, { released: releaseAnswers() });
  if (p === '/_double/config') {
    webhookUrl = body.webhook_url ?? webhookUrl;
    ibpWebhookUrl = body.ibp_webhook_url ?? ibpWebhookUrl;
    webhookSecret = body.webhook_secret ?? webhookSecret;
    setImmediate(flush);
    return send(res, 200, { ok: true });
  }
  if (p === '/_double/hold') {
    held = !!body.on;
    setImmediate(flush);
    return send(res, 200, { ok: true, outbox: outbox.map((e) => e.id) });
  }
  if (p === '/_double/simulate') {
    const ok = simulate(body.resource, body.id, body.action, body.details || {});
    return send(res, ok ? 200 : 404, { ok });
  }
  if (p === '/_double/fault') {
    faults.push({ method: body.method || null, prefix: body.prefix || '/', kind: body.kind,
      count: body.count ?? 1, retryAfter: body.retry_after ?? 1, seconds: body.seconds ?? 30 });
    return send(res, 200, { ok: true });
  }
  if (p === '/_double/drop') return send(res, 200, { ok: true, dropped: dropHeld(body.id) });
  if (p === '/_double/resend') {
    const evs = (body.events || []).map((id) => store.events.get(id)).filter(Boolean);
    const status = await deliver(evs);
    return send(res, 200, { status });
  }
  if (p === '/_double/state') {
    const dump = {};
    for (const [k, m] of Object.entries(store)) dump[k] = Object.fromEntries(m);
    return send(res, 200, { ...dump, creates, deliveries, requests, outbox: outbox.length,
      held: heldAnswers.length });
  }
  return send(res, 404, { error: 'no such control' });
}

async function api(req, res, url) {
  const p = url.pathname;
  const auth = req.headers.authorization || '';
  if (auth !== `Bearer ${TOKEN}`) {
    return error(res, 401, 'invalid_api_usage', 'unauthorized', 'Access token not found');
  }
  // Every create request counts for its key, answered or not.
  const parts = p.split('/').filter(Boolean);
  const resource = parts[0];
  const key = req.headers['idempotency-key'];
  const slot = `${resource} ${key}`;
  const isCreate = req.method === 'POST' && parts.length === 1 && CREATES[resource];
  if (isCreate && key) creates[slot] = (creates[slot] || 0) + 1;
  const fault = takeFault(req.method, p);
  if (fault && fault.kind !== 'lost' && fault.kind !== 'hold') {
    if (fault.kind === 'close') return req.socket.destroy();
    if (fault.kind === 'hang') return setTimeout(() => req.socket.destroy(), fault.seconds * 1000);
    if (fault.kind === 403) {
      return error(res, 403, 'invalid_api_usage', 'insufficient_permissions',
        'The access token does not have permission to do this');
    }
    if (fault.kind === 429) {
      return error(res, 429, 'invalid_api_usage', 'rate_limit_exceeded', 'Rate limit exceeded', {}, {
        'RateLimit-Limit': '1000', 'RateLimit-Remaining': '0',
        'RateLimit-Reset': new Date(Date.now() + fault.retryAfter * 1000).toUTCString(),
        'Retry-After': String(fault.retryAfter),
      });
    }
    return error(res, 500, 'gocardless', 'internal_server_error', 'Internal server error');
  }
  const text = req.method === 'POST' ? await readBody(req) : '';
  let body = null;
  if (text) {
    try { body = JSON.parse(text); } catch {
      return error(res, 400, 'invalid_api_usage', 'invalid_document_structure', 'Invalid document structure');
    }
  }
  if (!store[resource] || resource === 'events' && req.method === 'POST' ||
      resource === 'billing_request_flows' && req.method === 'GET') { // flows are not read
    return error(res, 404, 'invalid_api_usage', 'path_not_found', 'Path not found');
  }
  if (req.method === 'POST' && parts.length === 1) {
    const create = CREATES[resource];
    if (!create) return error(res, 404, 'invalid_api_usage', 'path_not_found', 'Path not found');
    const fields = body && body[resource];
    if (!fields || typeof fields !== 'object') {
      return error(res, 400, 'invalid_api_usage', 'invalid_document_structure',
        `The request body must have a "${resource}" object`);
    }
    if (key && keys.has(slot)) {
      return error(res, 409, 'invalid_state', 'idempotent_creation_conflict',
        'A resource has already been created with this idempotency key',
        { links: { conflicting_resource_id: keys.get(slot) } });
    }
    const [err, made] = create(res, fields);
    if (err) return err;
    if (key) keys.set(slot, made.id);
    if (fault && fault.kind === 'lost') return req.socket.destroy(); // made, answer lost
    if (fault && fault.kind === 'hold') {
      return holdAnswer(res, fault.seconds, 201, { [resource]: made }, { Location: `/${resource}/${made.id}` });
    }
    return send(res, 201, { [resource]: made }, { Location: `/${resource}/${made.id}` });
  }
  if (req.method === 'POST' && parts.length === 4 && parts[2] === 'actions') {
    const r = store[resource].get(parts[1]);
    if (!r) return error(res, 404, 'invalid_api_usage', 'resource_not_found', 'Resource not found');
    if (body !== null && (typeof body !== 'object' || (body.data !== undefined && typeof body.data !== 'object'))) {
      return error(res, 400, 'invalid_api_usage', 'invalid_document_structure', 'Invalid document structure');
    }
    if (resource === 'payments' && parts[3] === 'cancel') {
      if (!['pending_submission', 'pending_customer_approval'].includes(r.status)) {
        return error(res, 422, 'invalid_state', 'cancellation_failed', 'Payment cannot be cancelled');
      }
      r.status = 'cancelled';
      event('payments', 'cancelled', { payment: r.id }, { origin: 'api', cause: 'payment_cancelled' }, r.metadata);
      return send(res, 200, { payments: r });
    }
    if (resource === 'billing_requests' && parts[3] === 'cancel') {
      if (!['pending', 'ready_to_fulfil'].includes(r.status)) {
        return error(res, 422, 'invalid_state', 'billing_request_not_cancellable', 'The billing request cannot be cancelled');
      }
      r.status = 'cancelled';
      r.actions.forEach((a) => { if (a.status === 'pending') a.status = 'cancelled'; });
      event('billing_requests', 'cancelled', { billing_request: r.id }, { origin: 'api', cause: 'billing_request_cancelled' });
      return send(res, 200, { billing_requests: r });
    }
    return error(res, 404, 'invalid_api_usage', 'path_not_found', 'Path not found');
  }
  if (req.method === 'GET' && parts.length === 2) {
    const r = store[resource].get(parts[1]);
    if (!r) return error(res, 404, 'invalid_api_usage', 'resource_not_found', 'Resource not found');
    return send(res, 200, { [resource]: r });
  }
  if (req.method === 'GET' && parts.length === 1) {
    const limit = Math.min(Number(url.searchParams.get('limit') || 50), 500);
    const all = [...store[resource].values()];
    const after = url.searchParams.get('after');
    const start = after ? all.findIndex((r) => r.id === after) + 1 : 0;
    const items = all.slice(start, start + limit);
    const more = start + limit < all.length;
    return send(res, 200, { [resource]: items, meta: { cursors: { before: null,
      after: more ? items[items.length - 1].id : null }, limit } });
  }
  return error(res, 404, 'invalid_api_usage', 'path_not_found', 'Path not found');
}

const server = https.createServer({
  key: fs.readFileSync(path.join(dir, 'server.key')),
  cert: fs.readFileSync(path.join(dir, 'server.pem')),
}, async (req, res) => {
  const url = new URL(req.url, 'https://double');
  const entry = { method: req.method, path: url.pathname, idempotencyKey: req.headers['idempotency-key'] || null };
  requests.push(entry);
  res.on('finish', () => { entry.status = res.statusCode; });
  try {
    if (url.pathname.startsWith('/_double/')) return await control(req, res, url.pathname);
    if (url.pathname === '/billing/static/flow') return await hosted(req, res, url);
    return await api(req, res, url);
  } catch (e) {
    console.error(e);
    if (!res.headersSent) error(res, 500, 'gocardless', 'internal_server_error', 'Internal server error');
  }
});
server.keepAliveTimeout = 30000;
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  base = `https://127.0.0.1:${port}`;
  fs.writeFileSync(path.join(dir, 'port.tmp'), String(port));
  fs.renameSync(path.join(dir, 'port.tmp'), path.join(dir, 'port'));
  console.log(`gocardless double on ${base}`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
