// The API through a client generated from the served OpenAPI document by
// openapi-typescript (types: gen/openapi-typescript/pay-api.ts) and driven
// by openapi-fetch, compiled with tsc --strict before it runs. Every call
// below goes through that client; a request or response shape that the
// document gets wrong is a type error (the test fails at compile time) or a
// failed check here (at run time).
//
// Customers written: 95 (customer payments, adjustments, paging), 96 (invoice
// payment events, refunds, reprocess, cancel), 97 (adhoc invoice payments),
// 98 (site 125: mandate flow; payment link). See tests/e2e/README.md.
import createClient from 'openapi-fetch';
import type { components, paths } from '../gen/openapi-typescript/pay-api.js';
import {
  BASE, check, complete, decimal, eq, exactBody, exactJson, fromMinor, idemKey, recordingFetch, run, toMinor, token,
} from './common.js';

type Schemas = components['schemas'];
type ErrorBody = Schemas['Error'];

const W = token('clients-fetch', 'payments:read payments:write');
const RO = token('clients-fetch-ro', 'payments:read');

function api(tok?: string) {
  return createClient<paths>({
    baseUrl: BASE,
    fetch: recordingFetch,
    bodySerializer: exactJson, // writes decimal('150.25') as 150.25, verbatim
    headers: tok === undefined ? {} : { Authorization: `Bearer ${tok}` },
  });
}
const w = api(W);
const ro = api(RO);
const anon = api();

// The error of a failed call, checked against the catalogue's shape. The
// generated error type is Error | string: the document declares nginx's own
// HTML page for 414 (a request line over 8 KiB), so a client narrows first.
function isError(err: ErrorBody | string | undefined, res: Response, status: number, code: string, what: string): boolean {
  if (!check(res.status === status, `${what}: status`, `${res.status}, want ${status}`)) return false;
  if (!check(typeof err === 'object', `${what}: an Error body`, err)) return false;
  const e = err as ErrorBody;
  eq(e.code, code, `${what}: code`);
  eq(e.status, status, `${what}: status field`);
  check(e.requestId.length > 0 && e.requestId === res.headers.get('x-request-id'), `${what}: requestId is X-Request-Id`);
  check(typeof e.message === 'string' && typeof e.error === 'string', `${what}: message and error`);
  return true;
}

function must<T>(data: T | undefined, res: Response, status: number, what: string): T {
  check(res.status === status, `${what}: status`, `${res.status}, want ${status}`);
  if (data === undefined) throw new Error(`${what}: no data (status ${res.status})`);
  return data;
}

async function balance(customer: number): Promise<bigint> {
  const { data, response } = await w.GET('/v1/customer-balances', { params: { query: { customer_id: customer } } });
  return toMinor(exactBody(response, must(data, response, 200, `balance of ${customer}`)).balance, 2);
}

// An invoice id of the customer, from its ledger (INVOICE / ADHOC_INVOICE rows).
async function invoiceOf(customer: number, type: 'INVOICE' | 'ADHOC_INVOICE'): Promise<number> {
  const { data, response } = await w.GET('/v1/customer-payments', {
    params: { query: { customer_id: customer, page: 1, pageSize: 10, customerPaymentType: type, sort: 'id' } },
  });
  const rows = must(data, response, 200, `${type} rows of customer ${customer}`);
  const id = rows.find((r) => r.invoiceId != null)?.invoiceId;
  if (id == null) throw new Error(`customer ${customer} has no ${type} row`);
  return id;
}

// ---- the README's examples ----------------------------------------------------------

async function seedExamples(): Promise<void> {
  // GET /v1/customer-payments?customer_id=…&page=1&pageSize=100&sort=id,paymentDate:desc&fields=id,amountInMajorCurrency
  const sparse = await w.GET('/v1/customer-payments', {
    params: { query: { customer_id: 95, page: 1, pageSize: 100, sort: 'id,paymentDate:desc', fields: 'id,amountInMajorCurrency' } },
  });
  const rows = must(sparse.data, sparse.response, 200, 'list with fields');
  check(rows.length > 0, 'customer 95 has ledger rows');
  check(rows.every((r) => Object.keys(r).sort().join() === 'amountInMajorCurrency,id'),
    'fields: each row carries exactly id and amountInMajorCurrency', rows[0]);
  const exactRows = exactBody(sparse.response, rows);
  check(exactRows.every((r) => /^-?\d+\.\d\d$/.test(r.amountInMajorCurrency ?? '')),
    'every amount is written with exactly 2 decimals', exactRows.slice(0, 3));
  check(rows.every((r, i) => i === 0 || (r.id ?? 0) > (rows[i - 1].id ?? 0)), 'sorted by id');

  // POST /v1/customer-payments {"customerId":95,"amountInMajorCurrency":150.25,"type":"BACS",…}
  const before = await balance(95);
  const key = idemKey('seed');
  const body = { customerId: 95, amountInMajorCurrency: decimal('150.25'), type: 'BACS' as const, description: 'phone payment' };
  const created = await w.POST('/v1/customer-payments', { params: { header: { 'Idempotency-Key': key } }, body });
  const p = must(created.data, created.response, 200, 'create a customer payment');
  const exactP = exactBody(created.response, p);
  eq(exactP.amountInMajorCurrency, '150.25', 'the amount reads back as the exact text 150.25');
  eq(toMinor(exactP.amountInMajorCurrency, 2), 15025n, 'the amount in minor units');
  eq(p.txnType, 'PAYMENT', 'txnType');
  eq(p.customerPaymentType, 'CUSTOMER', 'customerPaymentType');
  eq(created.response.headers.get('location'), `/v1/customer-payments/${p.id}`, 'Location');
  eq(toMinor(exactP.resultingCustomerBalance, 2), before + 15025n, 'resultingCustomerBalance is the balance + 150.25');
  eq(await balance(95), before + 15025n, 'the balance moved by exactly 150.25');

  // A retry with the same key and body replays the stored answer.
  const again = await w.POST('/v1/customer-payments', { params: { header: { 'Idempotency-Key': key } }, body });
  eq(must(again.data, again.response, 200, 'replay').id, p.id, 'a replay answers the same payment');
  eq(again.response.headers.get('idempotent-replayed'), 'true', 'Idempotent-Replayed: true');
  eq(await balance(95), before + 15025n, 'a replay pays nothing');

  // GET /v1/customer-payments/{id}
  const got = await w.GET('/v1/customer-payments/{customer_payment_id}', { params: { path: { customer_payment_id: p.id } } });
  const g = must(got.data, got.response, 200, 'get by id');
  eq(g, p, 'get by id answers the created payment');
  const one = await w.GET('/v1/customer-payments/{customer_payment_id}', {
    params: { path: { customer_payment_id: p.id }, query: { fields: 'id,txnType' } },
  });
  eq(must(one.data, one.response, 200, 'get by id with fields'), { id: p.id, txnType: 'PAYMENT' }, 'get by id with fields');
}

// ---- money: exact sums --------------------------------------------------------------

async function exactMoney(): Promise<void> {
  // 0.10 + 0.20 in doubles is 0.30000000000000004; in minor units it is 30.
  check(0.1 + 0.2 !== 0.3, 'binary floating point cannot add money (why the helpers exist)');
  const before = await balance(95);
  let sent = 0n;
  for (const amount of ['0.10', '0.20']) {
    const r = await w.POST('/v1/customer-balance-adjustments', {
      body: { customerId: 95, amountInMajorCurrency: decimal(amount), description: `client adjustment ${amount}` },
    });
    const adj = must(r.data, r.response, 200, `adjustment ${amount}`);
    eq(exactBody(r.response, adj).amountInMajorCurrency, amount, `adjustment ${amount} reads back exactly`);
    sent += toMinor(amount, 2);
  }
  const after = await balance(95);
  eq(fromMinor(after - before, 2), '0.30', 'two adjustments moved the balance by exactly 0.30');
  eq(fromMinor(after - before, 2), fromMinor(sent, 2), 'what was sent is what was booked');
  // A debit reads back negative with its two decimals.
  const d = await w.POST('/v1/customer-balance-adjustments', { body: { customerId: 95, amountInMajorCurrency: decimal('-0.30') } });
  eq(exactBody(d.response, must(d.data, d.response, 200, 'debit')).amountInMajorCurrency, '-0.30', 'a debit reads -0.30');
  eq(await balance(95), before, 'and takes the 0.30 back');
}

// ---- one call of every other operation -------------------------------------------------

async function invoiceEvents(): Promise<void> {
  const inv = await invoiceOf(96, 'INVOICE');
  const ev = await w.POST('/v1/invoice-payments', {
    body: { generatedInvoiceId: inv, amountInMajorCurrency: decimal('0.50'), description: 'client cheque', paymentMethod: 'CHEQUE' },
  });
  const e = must(ev.data, ev.response, 201, 'invoice payment');
  eq(exactBody(ev.response, e).amountInMajorCurrency, '0.50', 'invoice payment amount, exact');
  const g = await w.GET('/v1/invoice-payments/{invoice_payment_id}', { params: { path: { invoice_payment_id: e.id } } });
  eq(must(g.data, g.response, 200, 'get invoice payment').id, e.id, 'get invoice payment');
  const l = await w.GET('/v1/invoice-payments', { params: { query: { page: 1, pageSize: 100, generatedInvoiceId: inv, sort: 'id:desc' } } });
  check(must(l.data, l.response, 200, 'list invoice payments').some((x) => x.id === e.id), 'the event is listed');

  const rf = await w.POST('/v1/refunds', {
    body: { invoiceId: inv, billRunType: 'NORMAL', amountInMajorCurrency: decimal('0.20'), description: 'client refund' },
  });
  const r = must(rf.data, rf.response, 201, 'refund');
  eq(exactBody(rf.response, r).amountInMajorCurrency, '0.20', 'refund amount, exact');
  const rg = await w.GET('/v1/refunds/{refund_id}', { params: { path: { refund_id: r.id } } });
  eq(must(rg.data, rg.response, 200, 'get refund').id, r.id, 'get refund');
  const rl = await w.GET('/v1/refunds', { params: { query: { page: 1, pageSize: 100, invoiceId: inv } } });
  check(must(rl.data, rl.response, 200, 'list refunds').some((x) => x.id === r.id), 'the refund is listed');

  // FAILED collection -> reprocess -> cancel (202).
  const failed = await w.POST('/v1/invoice-payments', {
    body: { generatedInvoiceId: inv, amountInMajorCurrency: decimal('1.00'), description: 'client failed collection',
      paymentMethod: 'GO_CARDLESS', thirdPartyPaymentStatus: 'FAILED' },
  });
  must(failed.data, failed.response, 201, 'failed collection');
  const rp = await w.POST('/v1/invoice-payment-reprocess', { body: { invoiceId: inv, billRunType: 'NORMAL', notes: 'client' } });
  must(rp.data, rp.response, 200, 'reprocess');
  const cn = await w.POST('/v1/invoice-payment-cancel', { body: { invoiceId: inv, billRunType: 'NORMAL', notes: 'client' } });
  must(cn.data, cn.response, 202, 'cancel');

  const adhoc = await invoiceOf(97, 'ADHOC_INVOICE');
  const a = await w.POST('/v1/adhoc-invoice-payments', {
    body: { generatedAdhocInvoiceId: adhoc, amountInMajorCurrency: decimal('0.30'), description: 'client adhoc',
      paymentMethod: 'GO_CARDLESS', thirdPartyPaymentStatus: 'CONFIRMED' },
  });
  const ae = must(a.data, a.response, 201, 'adhoc invoice payment');
  const ag = await w.GET('/v1/adhoc-invoice-payments/{adhoc_invoice_payment_id}', { params: { path: { adhoc_invoice_payment_id: ae.id } } });
  eq(must(ag.data, ag.response, 200, 'get adhoc invoice payment').id, ae.id, 'get adhoc invoice payment');
  const al = await w.GET('/v1/adhoc-invoice-payments', { params: { query: { page: 1, pageSize: 100, generatedAdhocInvoiceId: adhoc } } });
  check(must(al.data, al.response, 200, 'list adhoc invoice payments').some((x) => x.id === ae.id), 'the adhoc event is listed');
}

async function balancesAndCredit(): Promise<void> {
  const b = await w.GET('/v1/customer-balances', { params: { query: { customer_id: 95 } } });
  const bal = must(b.data, b.response, 200, 'balance');
  eq(bal.customerId, 95, 'balance customerId');
  check(/^-?\d+\.\d\d$/.test(exactBody(b.response, bal).totalPayments), 'totalPayments has 2 decimals');
  const cs = await w.GET('/v1/customer-credit-status', { params: { query: { page: 1, pageSize: 5, sort: 'customerId:desc' } } });
  check(must(cs.data, cs.response, 200, 'credit status').length > 0, 'credit status rows');
}

async function providers(): Promise<void> {
  const c = await w.POST('/v1/payment-providers', {
    body: { type: 'STRIPE', name: 'Client test Stripe', status: 'INACTIVE', contractOwnerIds: [1], retryIfPossible: false },
  });
  const p = must(c.data, c.response, 201, 'create provider');
  const g = await w.GET('/v1/payment-providers/{payment_provider_id}', { params: { path: { payment_provider_id: p.id } } });
  eq(must(g.data, g.response, 200, 'get provider').name, 'Client test Stripe', 'get provider');
  const patched = await w.PATCH('/v1/payment-providers/{payment_provider_id}', {
    params: { path: { payment_provider_id: p.id } },
    body: [{ op: 'replace', path: '/retryIfPossible', value: true }],
    headers: { 'Content-Type': 'application/json-patch+json' },
  });
  eq(must(patched.data, patched.response, 200, 'patch provider').retryIfPossible, true, 'patched retryIfPossible');
  const l = await w.GET('/v1/payment-providers', { params: { query: { page: 1, pageSize: 1000, type: 'STRIPE' } } });
  check(must(l.data, l.response, 200, 'list providers').some((x) => x.id === p.id), 'the provider is listed');
  const rp = await w.POST('/v1/payment-provider-reprocess', { body: { paymentProviderId: p.id, notes: 'client' } });
  must(rp.data, rp.response, 200, 'provider reprocess');
}

function formOf(html: string, res: Response): { csrf: string; cookie: string } {
  const m = /name="csrf" value="([^"]+)"/.exec(html);
  check(m !== null, 'the page has a CSRF field');
  return { csrf: m ? m[1] : '', cookie: (res.headers.get('set-cookie') ?? '').split(';')[0] };
}

const formBody = (b: Record<string, unknown>) =>
  new URLSearchParams(Object.entries(b).filter((e): e is [string, string] => typeof e[1] === 'string')).toString();

async function linksAndMandates(): Promise<void> {
  const lk = await w.POST('/v1/payment-provider-payment-link', {
    body: { paymentProviderId: 1, amountInMajorCurrency: decimal('0.75'), description: 'client link', customerId: 98 },
  });
  const link = must(lk.data, lk.response, 201, 'payment link');
  const payToken = new URL(link.paymentLink).pathname.split('/').pop() ?? '';
  const page = await anon.GET('/pay/{token}', { params: { path: { token: payToken } }, parseAs: 'text' });
  const html = must(page.data, page.response, 200, 'payment link page');
  const f = formOf(html, page.response);
  const paid = await anon.POST('/pay/{token}', {
    params: { path: { token: payToken } }, body: { csrf: f.csrf }, bodySerializer: formBody, parseAs: 'text',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: f.cookie },
  });
  check(must(paid.data, paid.response, 200, 'pay through the page').includes('</html>'), 'receipt page');

  const mc = await w.POST('/v1/site-payment-mandates', { body: { siteId: 125, returnURL: `${BASE}/healthz`, exitURL: `${BASE}/healthz` } });
  const m = must(mc.data, mc.response, 201, 'site mandate');
  check(typeof m.flowToken === 'string' && m.flowToken.length > 0, 'the mandate has a flow token');
  const flow = m.flowToken ?? '';
  const mp = await anon.GET('/mandate/{token}', { params: { path: { token: flow } }, parseAs: 'text' });
  const mf = formOf(must(mp.data, mp.response, 200, 'mandate page'), mp.response);
  const done = await anon.POST('/mandate/{token}', {
    params: { path: { token: flow } },
    body: { csrf: mf.csrf, accountHolderName: 'Client Person', sortCode: '12-34-56', accountNumber: '12345678' },
    bodySerializer: formBody, parseAs: 'text', redirect: 'manual',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Cookie: mf.cookie },
  });
  eq(done.response.status, 303, 'the mandate form redirects to returnURL');
  check((done.response.headers.get('location') ?? '').startsWith(`${BASE}/healthz`), 'to returnURL', done.response.headers.get('location'));

  const g = await w.GET('/v1/site-payment-mandates/{site_payment_mandate_id}', { params: { path: { site_payment_mandate_id: m.id } } });
  const sm = must(g.data, g.response, 200, 'get site mandate');
  const l = await w.GET('/v1/site-payment-mandates', { params: { query: { page: 1, pageSize: 100, siteId: 125, sort: 'id:desc' } } });
  check(must(l.data, l.response, 200, 'list site mandates').some((x) => x.id === m.id), 'the mandate is listed');
  const ref = sm.mandateReference;
  if (!check(typeof ref === 'string' && ref.length > 0, 'the completed mandate has a reference', sm)) return;
  const pm = await w.GET('/v1/payment-provider-mandates/{paymentMethod}/{mandateReference}', {
    params: { path: { paymentMethod: 'GO_CARDLESS', mandateReference: ref as string } },
  });
  eq(must(pm.data, pm.response, 200, 'provider mandate').mandateReference, ref, 'provider mandate reference');
  const ib = await w.GET('/v1/instant-bank-payment-for-mandate', { params: { query: { mandateReference: ref as string, paymentMethod: 'GO_CARDLESS' } } });
  must(ib.data, ib.response, 200, 'instant bank payments of the mandate');
}

async function operational(): Promise<void> {
  const doc = await anon.GET('/v1/openapi.json');
  const d = must(doc.data, doc.response, 200, 'the document');
  check(String(d.openapi).startsWith('3.0.'), 'OpenAPI 3.0');
  const etag = doc.response.headers.get('etag') ?? '';
  const nm = await anon.GET('/v1/openapi.json', { params: { header: { 'If-None-Match': etag } } });
  eq(nm.response.status, 304, 'If-None-Match: 304');
  const h = await anon.GET('/healthz');
  must(h.data, h.response, 200, 'healthz');
  const r = await anon.GET('/readyz');
  must(r.data, r.response, 200, 'readyz');
  const mt = await anon.GET('/metrics', { parseAs: 'text' });
  check(must(mt.data, mt.response, 200, 'metrics').includes('# TYPE'), 'metrics are Prometheus text');
}

// ---- errors ----------------------------------------------------------------------------

async function errors(): Promise<void> {
  const q = { params: { query: { customer_id: 95, page: 1, pageSize: 1 } } };
  const noToken = await anon.GET('/v1/customer-payments', q);
  isError(noToken.error, noToken.response, 401, 'UNAUTHENTICATED', '401 without a token');
  check((noToken.response.headers.get('www-authenticate') ?? '').startsWith('Bearer'), '401: WWW-Authenticate Bearer');
  const badToken = await api('not-a-token').GET('/v1/customer-payments', q);
  isError(badToken.error, badToken.response, 401, 'UNAUTHENTICATED', '401 with a bad token');

  const nf = await w.GET('/v1/customer-payments/{customer_payment_id}', { params: { path: { customer_payment_id: 999999999 } } });
  isError(nf.error, nf.response, 404, 'NOT_FOUND', '404 unknown customer payment');
  eq(nf.data, undefined, '404: no data');

  const scope = await ro.POST('/v1/customer-payments', { body: { customerId: 95, amountInMajorCurrency: decimal('1.00'), type: 'BACS' } });
  isError(scope.error, scope.response, 403, 'INSUFFICIENT_SCOPE', '403 read-only token');

  const inv = await invoiceOf(96, 'INVOICE');
  const tooMuch = await w.POST('/v1/refunds', { body: { invoiceId: inv, billRunType: 'NORMAL', amountInMajorCurrency: decimal('99999.00') } });
  isError(tooMuch.error, tooMuch.response, 409, 'CONFLICT', '409 refund above the refundable amount');

  const key = idemKey('reuse');
  const first = await w.POST('/v1/customer-balance-adjustments', {
    params: { header: { 'Idempotency-Key': key } }, body: { customerId: 95, amountInMajorCurrency: decimal('0.01') },
  });
  must(first.data, first.response, 200, 'adjustment with a key');
  const reused = await w.POST('/v1/customer-balance-adjustments', {
    params: { header: { 'Idempotency-Key': key } }, body: { customerId: 95, amountInMajorCurrency: decimal('0.02') },
  });
  isError(reused.error, reused.response, 422, 'IDEMPOTENCY_KEY_REUSED', '422 the same key with another body');

  const bad = await w.POST('/v1/customer-payments', { body: { customerId: 95, amountInMajorCurrency: decimal('1.005'), type: 'BACS' } });
  if (isError(bad.error, bad.response, 400, 'INVALID_AMOUNT', '400 three decimals for GBP') && typeof bad.error === 'object') {
    eq(bad.error.field, 'amountInMajorCurrency', '400: field');
  }
}

// ---- paging ----------------------------------------------------------------------------

function links(header: string | null): Map<string, URL> {
  const out = new Map<string, URL>();
  for (const m of (header ?? '').matchAll(/<([^>]+)>\s*;\s*rel="([^"]+)"/g)) out.set(m[2], new URL(m[1], BASE));
  return out;
}

async function paging(): Promise<void> {
  const pageSize = 3;
  let query: paths['/v1/customer-payments']['get']['parameters']['query'] =
    { customer_id: 95, page: 1, pageSize, sort: 'id' };
  const seen: number[] = [];
  let total = -1;
  let pages = 0;
  for (;;) {
    const { data, response } = await w.GET('/v1/customer-payments', { params: { query } });
    const rows = must(data, response, 200, `page ${query.page}`);
    pages++;
    const count = Number(response.headers.get('x-total-count'));
    if (total < 0) total = count;
    eq(count, total, `X-Total-Count is the same on page ${query.page}`);
    seen.push(...rows.map((r) => complete<Schemas['CustomerPayment']>(r, 'CustomerPayment').id));
    const l = links(response.headers.get('link'));
    check(l.has('first') && l.has('last'), `page ${query.page}: Link has first and last`, response.headers.get('link'));
    const next = l.get('next');
    if (!next) {
      eq(Number(l.get('last')?.searchParams.get('page')), query.page, 'the page without next is the last');
      break;
    }
    check(rows.length === pageSize, `a page with a next page is full (page ${query.page})`);
    // Follow rel="next" through the client: its query becomes typed parameters.
    const sp = next.searchParams;
    eq(sp.get('customer_id'), '95', 'next keeps the filter');
    query = { customer_id: Number(sp.get('customer_id')), page: Number(sp.get('page')), pageSize: Number(sp.get('pageSize')),
      sort: sp.get('sort') ?? undefined };
    if (pages > 1000) throw new Error('no end of pages');
  }
  check(total > pageSize, 'customer 95 has more than one page', total);
  eq(seen.length, total, 'the pages hold X-Total-Count rows');
  eq(new Set(seen).size, seen.length, 'no row on two pages');
  check(seen.every((id, i) => i === 0 || id > seen[i - 1]), 'ids ascend across pages');
  eq(pages, Math.ceil(total / pageSize), 'ceil(total / pageSize) pages');
}

await run([
  ['seedExamples', seedExamples], ['exactMoney', exactMoney], ['invoiceEvents', invoiceEvents],
  ['balancesAndCredit', balancesAndCredit], ['providers', providers], ['linksAndMandates', linksAndMandates],
  ['operational', operational], ['errors', errors], ['paging', paging],
]);
