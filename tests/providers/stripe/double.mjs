// A Stripe test double: the parts of Stripe's v1 API that pay-api uses
// (Checkout Sessions in payment and setup mode with a minimal hosted page,
// PaymentIntents, SetupIntents, Mandates, Refunds, Disputes, Payouts and
// their balance transactions, Events), over
// HTTPS on loopback, with Stripe's request format (form-encoded, nested
// keys in brackets), its error bodies, its Idempotency-Key semantics
// (stored answer replayed with Idempotent-Replayed, other parameters ->
// 400 idempotency_error, a key in flight -> 409) and webhooks signed with
// the official library's generateTestHeaderString. State is in memory.
//
// Outcomes follow Stripe's documented test values: Bacs account numbers
// 00012345 (succeeds), 22222227 (fails insufficient_funds), 33333335
// (fails debit_not_authorized), 55555559 (succeeds, then a dispute); card
// 4242424242424242 (succeeds), 4000000000000002 (declined).
//
// Test control (not Stripe's API) under /_double/: GET state (counts of
// creates per idempotency key, requests, events, held answers), POST faults
// (500, 429, hang, close, lost: run the request and drop its answer, or
// hold: run the request and hold its answer for `seconds` or until POST
// release, for the next N requests of a path), POST config (webhook
// URL, timeline step, webhook hold/duplicate/reverse), POST dispute/close,
// POST payout (an automatic payout of the available charges, then paid,
// failed or canceled), POST advance (run the timeline now).
//
//   node double.mjs --cert C --key K [--port P] [--api-key sk_test_x]
//                   [--webhook-secret whsec_x] [--webhook-url URL] [--step-ms N]
// prints "listening <port>" on stdout when ready.
import https from 'node:https';
import crypto from 'node:crypto';
import fs from 'node:fs';
import Stripe from 'stripe';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1]]);
    return acc;
}, []));

const cfg = {
    apiKey: args['api-key'] || 'sk_test_double',
    webhookSecret: args['webhook-secret'] || 'whsec_double',
    webhookUrl: args['webhook-url'] || null,
    stepMs: Number(args['step-ms'] || 1000),
    hold: false,        // queue events, do not deliver
    duplicate: false,   // deliver every event twice
    reverse: false,     // deliver each batch in reverse order
};
const stripeLib = new Stripe('sk_test_unused');

// ---- state --------------------------------------------------------------

const db = {
    customers: new Map(), checkout_sessions: new Map(), payment_intents: new Map(),
    setup_intents: new Map(), payment_methods: new Map(), mandates: new Map(),
    charges: new Map(), refunds: new Map(), disputes: new Map(), events: new Map(),
    balance_transactions: new Map(), payouts: new Map(),
};
const held = [];                 // answers held by a 'hold' fault: {send, timer}
const idem = new Map();          // "POST path key" -> {params, status, body, done}
const creates = {};              // idempotency key -> creates actually executed
const requests = [];             // {method, path, key, version, status}
let faults = [];                 // {path: RegExp, kind, left}
const outbox = [];               // events to deliver
const timers = [];               // {at, fn}
let seq = 0;

const now = () => Math.floor(Date.now() / 1000);
const newId = (prefix) => `${prefix}_test_${(++seq).toString(36)}${crypto.randomBytes(6).toString('hex')}`;
const publicUrl = () => `https://127.0.0.1:${server.address().port}`;

function later(ms, fn) { timers.push({ at: Date.now() + ms, fn }); }

function emit(type, obj, request = { id: null, idempotency_key: null }) {
    const ev = {
        id: newId('evt'), object: 'event', api_version: '2026-07-29.dahlia', created: now(),
        data: { object: structuredClone(obj) }, livemode: false, pending_webhooks: 1,
        request, type,
    };
    db.events.set(ev.id, ev);
    outbox.push(ev);
}

// ---- errors ----------------------------------------------------------------

class ApiError extends Error {
    constructor(status, type, message, extra = {}) {
        super(message);
        this.status = status;
        this.body = { error: { type, message, ...extra } };
    }
}
const missing = (param) => new ApiError(400, 'invalid_request_error',
    `Missing required param: ${param}.`, { code: 'parameter_missing', param });
const noSuch = (what, id, param = 'id') => new ApiError(404, 'invalid_request_error',
    `No such ${what}: '${id}'`, { code: 'resource_missing', param });
const invalid = (param, message, code = 'parameter_invalid_empty') =>
    new ApiError(400, 'invalid_request_error', message, { code, param });

// ---- form bodies: a[b][0][c]=v -> {a: {b: {0: {c: v}}}} -------------------

function parseForm(text) {
    const out = {};
    if (!text) return out;
    for (const pair of text.split('&')) {
        if (!pair) continue;
        const eq = pair.indexOf('=');
        const rawKey = eq < 0 ? pair : pair.slice(0, eq);
        const rawVal = eq < 0 ? '' : pair.slice(eq + 1);
        const key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
        const val = decodeURIComponent(rawVal.replace(/\+/g, ' '));
        const parts = key.split('[').map((p, i) => (i === 0 ? p : p.replace(/]$/, '')));
        let o = out;
        for (let i = 0; i < parts.length - 1; i++) {
            let p = parts[i];
            if (p === '') p = String(Object.keys(o).length);
            if (typeof o[p] !== 'object') o[p] = {};
            o = o[p];
        }
        let last = parts[parts.length - 1];
        if (last === '') last = String(Object.keys(o).length);
        o[last] = val;
    }
    return out;
}
const listOf = (v) => (v == null ? [] : typeof v === 'object' ? Object.values(v) : [v]);
const int = (v, param) => {
    if (v == null || v === '') throw missing(param);
    if (!/^-?\d+$/.test(v)) throw new ApiError(400, 'invalid_request_error',
        `Invalid integer: ${v}`, { code: 'parameter_invalid_integer', param });
    return Number(v);
};

// ---- objects ---------------------------------------------------------------

function charge(pi, pm) {
    const ch = {
        id: newId('ch'), object: 'charge', amount: pi.amount, amount_refunded: 0,
        currency: pi.currency, customer: pi.customer, payment_intent: pi.id,
        payment_method: pm ? pm.id : null, status: 'pending', refunded: false, disputed: false,
        failure_code: null, failure_message: null, metadata: { ...pi.metadata },
        payment_method_details: pm ? { type: pm.type, [pm.type]: { mandate: pi.mandate || null } } : null,
        created: now(),
    };
    db.charges.set(ch.id, ch);
    pi.latest_charge = ch.id;
    return ch;
}

// A PaymentIntent confirmed with a PaymentMethod: cards settle at once
// (or decline), bank debits are processing for one timeline step.
function confirm(pi, pm, request) {
    pi.payment_method = pm.id;
    const ch = charge(pi, pm);
    const fail = (code, message) => {
        pi.status = 'requires_payment_method';
        pi.last_payment_error = { type: 'card_error', code, message, payment_method: { id: pm.id } };
        ch.status = 'failed';
        ch.failure_code = code;
        ch.failure_message = message;
        emit('charge.failed', ch, request);
        emit('payment_intent.payment_failed', pi, request);
    };
    const succeed = () => {
        pi.status = 'succeeded';
        pi.amount_received = pi.amount;
        ch.status = 'succeeded';
        balanceTransaction(ch);
        emit('charge.succeeded', ch, request);
        emit('payment_intent.succeeded', pi, request);
    };
    if (pm.type === 'card') {
        if (pm.card._number === '4000000000000002') fail('card_declined', 'Your card was declined.');
        else succeed();
        return;
    }
    pi.status = 'processing';
    emit('charge.pending', ch, request);
    emit('payment_intent.processing', pi, request);
    const account = pm[pm.type]._account_number;
    later(cfg.stepMs, () => {
        if (pi.status !== 'processing') return;
        if (account === '22222227') fail('insufficient_funds', 'The account has insufficient funds.');
        else if (account === '33333335') {
            fail('debit_not_authorized', 'The customer notified their bank that this debit was not authorized.');
            const m = db.mandates.get(pi.mandate);
            if (m) { m.status = 'inactive'; emit('mandate.updated', m); }
        } else {
            succeed();
            if (account === '55555559') later(cfg.stepMs, () => dispute(ch, 'debit_not_authorized'));
        }
    });
}

// The balance transaction of a succeeded charge (no fees in test mode here):
// available at once, paid out by the next payout that takes it (_payout).
function balanceTransaction(ch) {
    const bt = { id: newId('txn'), object: 'balance_transaction', amount: ch.amount,
                 available_on: now(), balance_type: 'payments', created: now(), currency: ch.currency, description: null,
                 exchange_rate: null, fee: 0, fee_details: [], net: ch.amount,
                 reporting_category: 'charge', source: ch.id, status: 'available', type: 'charge',
                 _payout: null };
    db.balance_transactions.set(bt.id, bt);
    ch.balance_transaction = bt.id;
    return bt;
}

// An automatic payout of the available charges (those of the given
// PaymentIntents, or all): pending at once (payout.created), then after one
// timeline step paid (payout.paid), failed (payout.failed, the bank account
// closed) or canceled (payout.canceled), as Stripe reports them.
function payout(outcome = 'paid', pis = null) {
    const txns = [...db.balance_transactions.values()].filter((bt) => bt.type === 'charge' && !bt._payout
        && (!pis || pis.includes(db.charges.get(bt.source).payment_intent)));
    const po = { id: newId('po'), object: 'payout', amount: txns.reduce((a, bt) => a + bt.net, 0),
                 application_fee: null, application_fee_amount: null, original_payout: null,
                 payout_method: null, reversed_by: null, trace_id: null, arrival_date: now() + 86400, automatic: true, balance_transaction: newId('txn'),
                 created: now(), currency: txns.length ? txns[0].currency : 'gbp', description: 'STRIPE PAYOUT',
                 destination: 'ba_test_double', failure_balance_transaction: null, failure_code: null,
                 failure_message: null, livemode: false, metadata: {}, method: 'standard',
                 reconciliation_status: 'not_applicable', source_type: 'card', statement_descriptor: null,
                 status: 'pending', type: 'bank_account' };
    for (const bt of txns) bt._payout = po.id;
    db.payouts.set(po.id, po);
    emit('payout.created', po);
    later(cfg.stepMs, () => {
        if (outcome === 'paid') {
            po.status = 'paid';
            po.reconciliation_status = 'completed';
        } else if (outcome === 'failed') {
            po.status = 'failed';
            po.failure_code = 'account_closed';
            po.failure_message = 'The bank account has been closed.';
        } else {
            po.status = 'canceled';
        }
        emit(`payout.${po.status}`, po);
    });
    return po;
}

function dispute(ch, reason = 'fraudulent') {
    const dp = {
        id: newId('dp'), object: 'dispute', amount: ch.amount - ch.amount_refunded,
        currency: ch.currency, charge: ch.id, payment_intent: ch.payment_intent,
        reason, status: 'needs_response', is_charge_refundable: false, metadata: {},
        balance_transactions: [], created: now(),
    };
    ch.disputed = true;
    db.disputes.set(dp.id, dp);
    emit('charge.dispute.created', dp);
    emit('charge.dispute.funds_withdrawn', dp);
    return dp;
}

function expandSession(cs, expand) {
    const out = structuredClone(cs);
    for (const e of expand) {
        const [head, sub] = e.split('.');
        if (head === 'setup_intent' && out.setup_intent) {
            if (typeof out.setup_intent === 'string')
                out.setup_intent = structuredClone(db.setup_intents.get(out.setup_intent));
            if (sub === 'mandate' && typeof out.setup_intent.mandate === 'string')
                out.setup_intent.mandate = structuredClone(db.mandates.get(out.setup_intent.mandate));
            if (sub === 'payment_method' && typeof out.setup_intent.payment_method === 'string')
                out.setup_intent.payment_method =
                    structuredClone(db.payment_methods.get(out.setup_intent.payment_method));
        }
        if (e === 'payment_intent' && out.payment_intent)
            out.payment_intent = structuredClone(db.payment_intents.get(out.payment_intent));
    }
    return out;
}

function get(map, what, id) {
    const o = map.get(id);
    if (!o) throw noSuch(what, id);
    return o;
}

// ---- API routes --------------------------------------------------------------

const routes = [];
const route = (method, pattern, fn, create = false) =>
    routes.push({ method, re: new RegExp(`^${pattern}$`), fn, create });

route('POST', '/v1/customers', (p) => {
    const c = { id: newId('cus'), object: 'customer', email: p.email || null,
                name: p.name || null, metadata: p.metadata || {}, created: now() };
    db.customers.set(c.id, c);
    return c;
}, true);
route('GET', '/v1/customers/([^/]+)', (p, m) => get(db.customers, 'customer', m[1]));

route('POST', '/v1/checkout/sessions', (p) => {
    if (!p.mode) throw missing('mode');
    if (!['payment', 'setup'].includes(p.mode))
        throw invalid('mode', `Invalid mode: must be one of payment, setup or subscription`, 'parameter_invalid');
    if (!p.success_url) throw missing('success_url');
    const cs = {
        id: newId('cs'), object: 'checkout.session', mode: p.mode, status: 'open',
        payment_status: p.mode === 'setup' ? 'no_payment_required' : 'unpaid',
        success_url: p.success_url, cancel_url: p.cancel_url || null,
        client_reference_id: p.client_reference_id || null, metadata: p.metadata || {},
        customer: p.customer || null, customer_email: p.customer_email || null,
        payment_intent: null, setup_intent: null,
        payment_method_types: listOf(p.payment_method_types).length ? listOf(p.payment_method_types) : ['card'],
        amount_total: null, currency: p.currency || null, livemode: false, created: now(),
        expires_at: p.expires_at ? Number(p.expires_at) : now() + 86400, url: null,
        _pi_data: p.payment_intent_data || {}, _si_data: p.setup_intent_data || {},
    };
    if (p.customer && !db.customers.has(p.customer)) throw noSuch('customer', p.customer, 'customer');
    if (p.mode === 'payment') {
        const items = listOf(p.line_items);
        if (!items.length) throw missing('line_items');
        let total = 0;
        for (const [i, it] of items.entries()) {
            const pd = it.price_data;
            if (!pd) throw missing(`line_items[${i}][price_data]`);
            if (!pd.currency) throw missing(`line_items[${i}][price_data][currency]`);
            if (!pd.product_data || !pd.product_data.name)
                throw missing(`line_items[${i}][price_data][product_data][name]`);
            total += int(pd.unit_amount, `line_items[${i}][price_data][unit_amount]`) *
                     int(it.quantity, `line_items[${i}][quantity]`);
            cs.currency = pd.currency;
        }
        cs.amount_total = total;
    }
    cs.url = `${publicUrl()}/c/pay/${cs.id}`;
    db.checkout_sessions.set(cs.id, cs);
    return cs;
}, true);
route('GET', '/v1/checkout/sessions', (p) => {
    const data = [...db.checkout_sessions.values()].filter((s) =>
        (!p.payment_intent || s.payment_intent === p.payment_intent) &&
        (!p.status || s.status === p.status));
    return { object: 'list', url: '/v1/checkout/sessions', has_more: false, data };
});
route('GET', '/v1/checkout/sessions/([^/]+)', (p, m) =>
    expandSession(get(db.checkout_sessions, 'checkout.session', m[1]), listOf(p.expand)));
route('POST', '/v1/checkout/sessions/([^/]+)/expire', (p, m) => {
    const cs = get(db.checkout_sessions, 'checkout.session', m[1]);
    if (cs.status !== 'open')
        throw new ApiError(400, 'invalid_request_error',
            `This Checkout Session is not active and cannot be expired.`, { code: 'checkout_session_not_active' });
    cs.status = 'expired';
    cs.url = null;
    emit('checkout.session.expired', cs);
    return cs;
});

route('GET', '/v1/payouts/([^/]+)', (p, m) => get(db.payouts, 'payout', m[1]));
route('GET', '/v1/balance_transactions/([^/]+)', (p, m) =>
    get(db.balance_transactions, 'balance_transaction', m[1]));
// Stripe's list: newest first, limit 1..100 (default 10), starting_after a
// cursor, has_more; payout= only for automatic payouts; expand[]=data.source.
route('GET', '/v1/balance_transactions', (p) => {
    const limit = p.limit == null ? 10 : int(p.limit, 'limit');
    if (limit < 1 || limit > 100) throw invalid('limit', 'This value must be greater than or equal to 1 and less than or equal to 100.', 'parameter_invalid_integer');
    if (p.payout) {
        const po = get(db.payouts, 'payout', p.payout);
        if (!po.automatic) throw invalid('payout', 'Balance transaction history can only be filtered on automatic transfers, not manual.', 'parameter_invalid');
    }
    let all = [...db.balance_transactions.values()].filter((bt) =>
        (!p.payout || bt._payout === p.payout) && (!p.type || bt.type === p.type)).reverse();
    if (p.starting_after) {
        const i = all.findIndex((bt) => bt.id === p.starting_after);
        if (i < 0) throw noSuch('balance_transaction', p.starting_after, 'starting_after');
        all = all.slice(i + 1);
    }
    const expand = listOf(p.expand).includes('data.source');
    const data = all.slice(0, limit).map((bt) => (expand
        ? { ...bt, source: structuredClone(db.charges.get(bt.source)) } : bt));
    return { object: 'list', url: '/v1/balance_transactions', has_more: all.length > limit, data };
});

route('POST', '/v1/payment_intents', (p, m, req) => {
    const amount = int(p.amount, 'amount');
    if (!p.currency) throw missing('currency');
    if (amount < 30) throw new ApiError(400, 'invalid_request_error',
        'Amount must be at least 30 pence', { code: 'amount_too_small', param: 'amount' });
    if (p.customer && !db.customers.has(p.customer)) throw noSuch('customer', p.customer, 'customer');
    const pi = {
        id: newId('pi'), object: 'payment_intent', amount, amount_received: 0,
        currency: p.currency, customer: p.customer || null, payment_method: null,
        payment_method_types: listOf(p.payment_method_types), mandate: p.mandate || null,
        status: 'requires_payment_method', latest_charge: null, last_payment_error: null,
        metadata: p.metadata || {}, description: p.description || null, created: now(),
        canceled_at: null, cancellation_reason: null,
    };
    if (p.confirm === 'true') {
        if (!p.payment_method) throw missing('payment_method');
        const pm = get(db.payment_methods, 'payment_method', p.payment_method);
        if (pm.type !== 'card') {
            const md = p.mandate ? db.mandates.get(p.mandate) : null;
            if (!md || md.payment_method !== pm.id || md.status === 'inactive')
                throw new ApiError(400, 'invalid_request_error',
                    'The mandate is not valid for this PaymentIntent.',
                    { code: 'payment_intent_mandate_invalid', param: 'mandate' });
        }
        db.payment_intents.set(pi.id, pi);
        emit('payment_intent.created', pi, { id: req.rid, idempotency_key: req.key });
        confirm(pi, pm, { id: req.rid, idempotency_key: req.key });
        if (pi.status === 'requires_payment_method' && pi.last_payment_error)
            throw new ApiError(402, 'card_error', pi.last_payment_error.message,
                { code: pi.last_payment_error.code, payment_intent: pi });
        return pi;
    }
    db.payment_intents.set(pi.id, pi);
    emit('payment_intent.created', pi);
    return pi;
}, true);
route('GET', '/v1/payment_intents/([^/]+)', (p, m) => get(db.payment_intents, 'payment_intent', m[1]));
route('POST', '/v1/payment_intents/([^/]+)/cancel', (p, m) => {
    const pi = get(db.payment_intents, 'payment_intent', m[1]);
    if (['succeeded', 'canceled', 'processing'].includes(pi.status))
        throw new ApiError(400, 'invalid_request_error',
            `You cannot cancel this PaymentIntent because it has a status of ${pi.status}.`,
            { code: 'payment_intent_unexpected_state', payment_intent: pi });
    pi.status = 'canceled';
    pi.canceled_at = now();
    pi.cancellation_reason = p.cancellation_reason || null;
    emit('payment_intent.canceled', pi);
    return pi;
});

route('GET', '/v1/setup_intents/([^/]+)', (p, m) => get(db.setup_intents, 'setup_intent', m[1]));
route('GET', '/v1/payment_methods/([^/]+)', (p, m) => get(db.payment_methods, 'payment_method', m[1]));
route('GET', '/v1/mandates/([^/]+)', (p, m) => get(db.mandates, 'mandate', m[1]));
route('GET', '/v1/charges/([^/]+)', (p, m) => get(db.charges, 'charge', m[1]));

route('POST', '/v1/refunds', (p, m, req) => {
    let ch;
    if (p.payment_intent) {
        const pi = get(db.payment_intents, 'payment_intent', p.payment_intent);
        ch = pi.latest_charge && db.charges.get(pi.latest_charge);
        if (!ch || pi.status !== 'succeeded')
            throw new ApiError(400, 'invalid_request_error',
                `This PaymentIntent (${pi.id}) does not have a successful charge to refund.`,
                { code: 'charge_not_refundable' });
    } else if (p.charge) {
        ch = get(db.charges, 'charge', p.charge);
    } else {
        throw new ApiError(400, 'invalid_request_error',
            'One of the following params should be provided for this request: payment_intent or charge.',
            { code: 'parameter_missing' });
    }
    if (ch.disputed) throw new ApiError(400, 'invalid_request_error',
        `Charge ${ch.id} has been charged back; cannot issue a refund.`, { code: 'charge_disputed' });
    const left = ch.amount - ch.amount_refunded;
    if (left <= 0) throw new ApiError(400, 'invalid_request_error',
        `Charge ${ch.id} has already been refunded.`, { code: 'charge_already_refunded' });
    const amount = p.amount != null ? int(p.amount, 'amount') : left;
    if (amount > left) throw new ApiError(400, 'invalid_request_error',
        `Refund amount (£${(amount / 100).toFixed(2)}) is greater than unrefunded amount on charge (£${(left / 100).toFixed(2)})`,
        { code: 'amount_too_large', param: 'amount' });
    const re = {
        id: newId('re'), object: 'refund', amount, currency: ch.currency, charge: ch.id,
        payment_intent: ch.payment_intent, status: 'pending', pending_reason: 'processing',
        reason: p.reason || null, metadata: p.metadata || {}, failure_reason: null,
        failure_balance_transaction: null, created: now(),
    };
    db.refunds.set(re.id, re);
    ch.amount_refunded += amount;
    ch.refunded = ch.amount_refunded === ch.amount;
    const request = { id: req.rid, idempotency_key: req.key };
    emit('refund.created', re, request);
    emit('charge.refunded', ch, request);
    later(cfg.stepMs, () => {
        if (re.status !== 'pending') return;
        re.pending_reason = null;
        if (amount % 100 === 77) { // the double's failing refund amount
            re.status = 'failed';
            re.failure_reason = 'declined';
            re.failure_balance_transaction = newId('txn');
            ch.amount_refunded -= amount;
            ch.refunded = false;
            emit('refund.failed', re);
        } else {
            re.status = 'succeeded';
            emit('refund.updated', re);
        }
    });
    return re;
}, true);
route('GET', '/v1/refunds/([^/]+)', (p, m) => get(db.refunds, 'refund', m[1]));
route('GET', '/v1/disputes/([^/]+)', (p, m) => get(db.disputes, 'dispute', m[1]));
route('POST', '/v1/disputes/([^/]+)/close', (p, m) => {
    const dp = get(db.disputes, 'dispute', m[1]);
    dp.status = 'lost';
    emit('charge.dispute.closed', dp);
    return dp;
});
route('GET', '/v1/events/([^/]+)', (p, m) => get(db.events, 'event', m[1]));

// ---- the hosted Checkout page ---------------------------------------------------

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function hostedPage(cs, error) {
    const bank = cs.mode === 'setup' || cs.payment_method_types.some((t) => t !== 'card');
    const fields = bank
        ? `<label>Account holder <input name="name" id="name" required></label>
           <label>Sort code <input name="sort_code" id="sort_code" required pattern="[0-9]{6}"></label>
           <label>Account number <input name="account_number" id="account_number" required pattern="[0-9]{8}"></label>`
        : `<label>Card number <input name="card" id="card" required></label>`;
    const what = cs.mode === 'setup' ? 'Set up a Direct Debit'
        : `Pay ${cs.currency.toUpperCase()} ${(cs.amount_total / 100).toFixed(2)}`;
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Stripe Checkout (test double)</title></head>
<body><h1 id="checkout">${esc(what)}</h1>${error ? `<p id="error" role="alert">${esc(error)}</p>` : ''}
<form method="post" action="/c/pay/${esc(cs.id)}">${fields}<button type="submit" id="submit">${cs.mode === 'setup' ? 'Set up' : 'Pay'}</button></form>
${cs.cancel_url ? `<a id="back" href="${esc(cs.cancel_url)}">Back</a>` : ''}</body></html>`;
}

function completeSession(cs, form) {
    const type = cs.mode === 'setup' || cs.payment_method_types.some((t) => t !== 'card')
        ? (cs.payment_method_types.find((t) => t !== 'card') || 'bacs_debit') : 'card';
    if (!cs.customer) {
        const c = { id: newId('cus'), object: 'customer', email: cs.customer_email, name: form.name || null,
                    metadata: {}, created: now() };
        db.customers.set(c.id, c);
        cs.customer = c.id;
    }
    const pm = { id: newId('pm'), object: 'payment_method', type, customer: cs.customer, created: now(),
                 billing_details: { name: form.name || null, email: cs.customer_email || null } };
    if (type === 'card') {
        const number = (form.card || '').replace(/\s/g, '');
        pm.card = { _number: number, last4: number.slice(-4), brand: 'visa' };
    } else {
        if (!/^\d{6}$/.test(form.sort_code || '') || !/^\d{8}$/.test(form.account_number || ''))
            return 'Enter a 6-digit sort code and an 8-digit account number.';
        // Stripe never answers the account number: kept private (_-keys are not served).
        pm[type] = { sort_code: form.sort_code, _account_number: form.account_number,
                     last4: form.account_number.slice(-4), fingerprint: crypto.createHash('sha256')
                         .update(form.sort_code + form.account_number).digest('hex').slice(0, 16) };
    }
    db.payment_methods.set(pm.id, pm);
    const acceptance = { type: 'online', accepted_at: now(), online: { ip_address: '127.0.0.1', user_agent: 'browser' } };
    if (cs.mode === 'setup') {
        const md = { id: newId('mandate'), object: 'mandate', status: 'pending', type: 'multi_use',
                     payment_method: pm.id, customer_acceptance: acceptance, livemode: false,
                     payment_method_details: { type, [type]: { network_status: 'pending', reference: `REF${seq}`, url: null } } };
        db.mandates.set(md.id, md);
        const si = { id: newId('seti'), object: 'setup_intent', status: 'succeeded', customer: cs.customer,
                     payment_method: pm.id, mandate: md.id, metadata: cs._si_data.metadata || {}, created: now() };
        db.setup_intents.set(si.id, si);
        cs.setup_intent = si.id;
        cs.status = 'complete';
        cs.url = null;
        emit('setup_intent.succeeded', si);
        emit('checkout.session.completed', cs);
        later(cfg.stepMs, () => {
            if (md.status !== 'pending') return;
            const refused = pm[type]._account_number === '00033333';
            md.status = refused ? 'inactive' : 'active';
            md.payment_method_details[type].network_status = refused ? 'refused' : 'accepted';
            emit('mandate.updated', md);
        });
        return null;
    }
    const pi = { id: newId('pi'), object: 'payment_intent', amount: cs.amount_total, amount_received: 0,
                 currency: cs.currency, customer: cs.customer, payment_method: null,
                 payment_method_types: [type], mandate: null, status: 'requires_payment_method',
                 latest_charge: null, last_payment_error: null, metadata: cs._pi_data.metadata || {},
                 description: cs._pi_data.description || null, created: now() };
    db.payment_intents.set(pi.id, pi);
    if (type !== 'card') {
        const md = { id: newId('mandate'), object: 'mandate', status: 'active', type: 'multi_use',
                     payment_method: pm.id, customer_acceptance: acceptance,
                     payment_method_details: { type, [type]: { network_status: 'accepted' } } };
        db.mandates.set(md.id, md);
        pi.mandate = md.id;
    }
    confirm(pi, pm, { id: null, idempotency_key: null });
    if (pi.status === 'requires_payment_method') {
        db.payment_intents.delete(pi.id);
        return pi.last_payment_error.message;
    }
    cs.payment_intent = pi.id;
    cs.status = 'complete';
    cs.url = null;
    cs.payment_status = pi.status === 'succeeded' ? 'paid' : 'unpaid';
    emit('checkout.session.completed', cs);
    if (pi.status === 'processing') {
        const watch = () => {
            if (pi.status === 'processing') return later(cfg.stepMs / 2, watch);
            if (pi.status === 'succeeded') {
                cs.payment_status = 'paid';
                emit('checkout.session.async_payment_succeeded', cs);
            } else {
                emit('checkout.session.async_payment_failed', cs);
            }
        };
        later(cfg.stepMs / 2, watch);
    }
    return null;
}

// ---- webhooks --------------------------------------------------------------------

let delivering = false;
async function deliver() {
    if (delivering || cfg.hold || !cfg.webhookUrl || outbox.length === 0) return;
    delivering = true;
    const batch = outbox.splice(0, outbox.length);
    if (cfg.reverse) batch.reverse();
    for (const ev of batch) {
        for (let n = 0; n < (cfg.duplicate ? 2 : 1); n++) {
            const payload = JSON.stringify(ev);
            const header = stripeLib.webhooks.generateTestHeaderString({ payload, secret: cfg.webhookSecret });
            try {
                const res = await fetch(cfg.webhookUrl, {
                    method: 'POST', body: payload,
                    headers: { 'Content-Type': 'application/json; charset=utf-8',
                               'Stripe-Signature': header, 'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)' },
                    signal: AbortSignal.timeout(10000),
                });
                ev._deliveries = (ev._deliveries || 0) + 1;
                ev._last_status = res.status;
                await res.arrayBuffer();
                if (res.status < 200 || res.status >= 300) { outbox.push(ev); break; }
            } catch (e) {
                ev._last_status = 0;
                outbox.push(ev);
                break;
            }
        }
    }
    delivering = false;
}

setInterval(() => {
    const due = timers.filter((t) => t.at <= Date.now());
    for (const t of due) { timers.splice(timers.indexOf(t), 1); t.fn(); }
    deliver();
}, 100).unref();

// ---- the server -----------------------------------------------------------------------

function send(res, status, body, headers = {}) {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/html; charset=utf-8' : 'application/json',
                            'Content-Length': Buffer.byteLength(text), ...headers });
    res.end(text);
}

function authorised(req) {
    const h = req.headers.authorization || '';
    if (h.startsWith('Bearer ')) return h.slice(7) === cfg.apiKey;
    if (h.startsWith('Basic ')) return Buffer.from(h.slice(6), 'base64').toString().split(':')[0] === cfg.apiKey;
    return false;
}

function control(req, res, url, body) {
    const p = body ? JSON.parse(body) : {};
    if (req.method === 'GET' && url.pathname === '/_double/state') {
        return send(res, 200, { creates, requests, events: [...db.events.values()].map((e) =>
            ({ id: e.id, type: e.type, object: e.data.object.id, deliveries: e._deliveries || 0, last_status: e._last_status })),
            outbox: outbox.length, held: held.length, payment_intents: [...db.payment_intents.values()],
            refunds: [...db.refunds.values()], checkout_sessions: [...db.checkout_sessions.values()] });
    }
    if (url.pathname === '/_double/config') {
        for (const k of ['webhookUrl', 'webhookSecret', 'stepMs', 'hold', 'duplicate', 'reverse'])
            if (k in p) cfg[k] = p[k];
        return send(res, 200, { ok: true });
    }
    if (url.pathname === '/_double/faults') {
        faults.push({ path: new RegExp(p.path), kind: p.kind, left: p.count || 1, method: p.method || null,
                      seconds: p.seconds || null });
        return send(res, 200, { ok: true });
    }
    if (url.pathname === '/_double/dispute') {
        const pi = db.payment_intents.get(p.payment_intent);
        const ch = pi && db.charges.get(pi.latest_charge);
        if (!ch) return send(res, 404, { error: 'no such charge' });
        return send(res, 200, dispute(ch, p.reason));
    }
    if (url.pathname === '/_double/payout')
        return send(res, 200, stripPrivate(payout(p.outcome || 'paid', p.payment_intents || null)));
    if (url.pathname === '/_double/release') {
        const n = held.length;
        for (const h of held.splice(0)) { clearTimeout(h.timer); h.send(); }
        return send(res, 200, { released: n });
    }
    if (url.pathname === '/_double/advance') {
        for (const t of timers.splice(0)) t.fn();
        return send(res, 200, { ok: true });
    }
    if (url.pathname === '/_double/reset') {
        faults = [];
        for (const h of held.splice(0)) { clearTimeout(h.timer); h.send(); }
        Object.assign(cfg, { hold: false, duplicate: false, reverse: false });
        return send(res, 200, { ok: true });
    }
    return send(res, 404, { error: 'unknown control' });
}

async function handle(req, res, body) {
    const url = new URL(req.url, 'https://127.0.0.1');
    if (url.pathname.startsWith('/_double/')) return control(req, res, url, body);
    if (url.pathname.startsWith('/c/pay/')) {
        const cs = db.checkout_sessions.get(url.pathname.slice(7));
        if (!cs || cs.status !== 'open')
            return send(res, 404, '<!doctype html><title>Expired</title><h1 id="gone">This Checkout Session is no longer active</h1>');
        if (req.method === 'POST') {
            const error = completeSession(cs, Object.fromEntries(new URLSearchParams(body)));
            if (error) return send(res, 200, hostedPage(cs, error));
            await deliver(); // completed is sent before the redirect, as Stripe does
            return send(res, 303, '', { Location: cs.success_url.replace('{CHECKOUT_SESSION_ID}', cs.id) });
        }
        return send(res, 200, hostedPage(cs));
    }
    const rid = `req_${crypto.randomBytes(7).toString('hex')}`;
    const key = req.headers['idempotency-key'] || null;
    const rec = { method: req.method, path: url.pathname, key, version: req.headers['stripe-version'] || null,
                  status: 0, at: Date.now() };
    requests.push(rec);
    const headers = { 'Request-Id': rid, 'Stripe-Version': rec.version || '2026-07-29.dahlia' };
    let lose = false; // 'lost': the request runs, its answer never arrives
    let hold = null;  // 'hold': the request runs, its answer waits (seconds, or a release)
    const reply = (status, obj, extra = {}) => {
        rec.status = status;
        if (lose) { rec.lost = true; return req.socket.destroy(); }
        if (hold != null) {
            rec.held = true;
            const h = { send: () => { if (!res.destroyed && !req.socket.destroyed) send(res, status, obj, { ...headers, ...extra }); } };
            h.timer = setTimeout(() => { const i = held.indexOf(h); if (i >= 0) held.splice(i, 1); h.send(); }, hold * 1000);
            held.push(h);
            return;
        }
        send(res, status, obj, { ...headers, ...extra });
    };
    const fault = faults.find((f) => f.left > 0 && f.path.test(url.pathname) && (!f.method || f.method === req.method));
    if (fault && fault.kind === 'lost') {
        fault.left--;
        lose = true;
    } else if (fault && fault.kind === 'hold') {
        fault.left--;
        hold = fault.seconds || 60;
    } else if (fault) {
        fault.left--;
        if (fault.kind === 'hang') return; // never answers; the client times out
        if (fault.kind === 'close') return req.socket.destroy();
        if (fault.kind === '429')
            return reply(429, { error: { type: 'invalid_request_error', code: 'rate_limit',
                message: 'Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.' } });
        return reply(500, { error: { type: 'api_error', message: 'Something went wrong on Stripe\'s end.' } },
                     { 'Stripe-Should-Retry': 'true' });
    }
    if (!authorised(req))
        return reply(401, { error: { type: 'invalid_request_error',
            message: 'Invalid API Key provided: ' + String(req.headers.authorization || '').slice(7, 15) + '****' } });
    const params = req.method === 'GET' ? parseForm(url.search.slice(1)) : parseForm(body);
    const r = routes.find((x) => x.method === req.method && x.re.test(url.pathname));
    if (!r) return reply(404, { error: { type: 'invalid_request_error',
        message: `Unrecognized request URL (${req.method}: ${url.pathname}).` } });
    const ikey = req.method === 'POST' && key ? `${url.pathname} ${key}` : null;
    if (ikey && idem.has(ikey)) {
        const prev = idem.get(ikey);
        if (!prev.done)
            return reply(409, { error: { type: 'idempotency_error', code: 'idempotency_key_in_use',
                message: 'There is currently another in-progress request using this Idempotent Key (that probably means you submitted twice, and the other request is still going through): ' + key + '. Please try again later.' } });
        if (JSON.stringify(prev.params) !== JSON.stringify(params))
            return reply(400, { error: { type: 'idempotency_error',
                message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.` } });
        return reply(prev.status, prev.body, { 'Idempotent-Replayed': 'true', 'Original-Request': prev.rid });
    }
    const entry = { params, done: false, rid };
    if (ikey) idem.set(ikey, entry);
    try {
        const out = r.fn(params, url.pathname.match(r.re), { rid, key });
        if (r.create && key) creates[key] = (creates[key] || 0) + 1;
        Object.assign(entry, { status: 200, body: stripPrivate(out), done: true });
        reply(200, stripPrivate(out));
    } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (e.status === 402 && r.create && key) creates[key] = (creates[key] || 0) + 1;
        // Validation errors are not stored (safe to retry); results of execution are.
        if (ikey && e.status === 402) Object.assign(entry, { status: e.status, body: e.body, done: true });
        else if (ikey) idem.delete(ikey);
        reply(e.status, e.body);
    }
}

function stripPrivate(o) {
    return JSON.parse(JSON.stringify(o, (k, v) => (k.startsWith('_') ? undefined : v)));
}

const server = https.createServer({ cert: fs.readFileSync(args.cert), key: fs.readFileSync(args.key) },
    (req, res) => {
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            handle(req, res, Buffer.concat(chunks).toString()).catch((e) => {
                console.error(e);
                if (!res.headersSent) send(res, 500, { error: { type: 'api_error', message: String(e) } });
            });
        });
    });
server.listen(Number(args.port || 0), '127.0.0.1', () => {
    console.log(`listening ${server.address().port}`);
});
