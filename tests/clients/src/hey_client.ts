// The API through a second generated client: @hey-api/openapi-ts's SDK
// (one function per operationId, on its own fetch client) with its zod
// plugin, generated with `validator: true`: every request body/parameter set
// and every 2xx JSON response goes through the zod schema generated from the
// document, and a response the schema rejects makes the call throw. So a
// nullable field marked required, a date-time typed as a date, or a `fields`
// response missing keys the document requires fails here, at run time,
// beside the compile-time checks of tsc --strict.
//
// Money: this client is shown the other way round from fetch_client.ts: it
// sends plain JS numbers, each made from decimal text and never used in
// arithmetic (a decimal of at most 15 significant digits comes back out of a
// double as the same text), and keeps all arithmetic in integer minor units.
//
// Customers written: 95 (payments, adjustments) and 97 (adhoc invoice
// payments), as fetch_client.ts; see tests/e2e/README.md.
import { client } from '../gen/hey-api/client.gen.js';
import * as api from '../gen/hey-api/sdk.gen.js';
import type { CustomerPayment, Error as ErrorBody, SitePaymentMandate } from '../gen/hey-api/types.gen.js';
import { zCustomerPayment, zCustomerPaymentFields } from '../gen/hey-api/zod.gen.js';
import {
  BASE, check, complete, eq, exactBody, fromMinor, idemKey, recordingFetch, run, toMinor, token,
} from './common.js';

const W = token('clients-hey', 'payments:read payments:write');
const RO = token('clients-hey-ro', 'payments:read');
client.setConfig({ baseUrl: BASE, fetch: recordingFetch as typeof fetch, auth: () => W });

// A number for the request types, made from decimal text: exact on the wire
// as long as no arithmetic touches it (checked here).
function amount(text: string): number {
  const n = Number(text);
  if (JSON.stringify(n) !== text.replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '')) {
    throw new Error(`${text} does not survive a double`);
  }
  return n;
}

function ok<T>(r: { data?: T; error?: unknown; response: Response }, status: number, what: string): T {
  check(r.response.status === status, `${what}: status`, `${r.response.status}, want ${status}: ${JSON.stringify(r.error)}`);
  if (r.data === undefined) throw new Error(`${what}: no data`);
  return r.data;
}

function isError(r: { error?: ErrorBody | string | unknown; response: Response }, status: number, code: string, what: string): void {
  if (!check(r.response.status === status, `${what}: status`, `${r.response.status}, want ${status}`)) return;
  const e = r.error as ErrorBody | string | undefined;
  if (!check(typeof e === 'object', `${what}: an Error body`, e)) return;
  const err = e as ErrorBody;
  eq(err.code, code, `${what}: code`);
  eq(err.status, status, `${what}: status field`);
  eq(err.requestId, r.response.headers.get('x-request-id'), `${what}: requestId`);
}

async function balance(customerId: number): Promise<bigint> {
  const r = await api.getCustomerBalance({ query: { customer_id: customerId } });
  return toMinor(exactBody(r.response, ok(r, 200, 'balance')).balance, 2);
}

async function seedAndMoney(): Promise<void> {
  // The README's list with sort and fields: zod accepts the sparse objects
  // (CustomerPaymentFields) that the full schema rejects.
  const l = await api.getCustomerPayments({
    query: { customer_id: 95, page: 1, pageSize: 100, sort: 'id,paymentDate:desc', fields: 'id,amountInMajorCurrency' },
  });
  const rows = ok(l, 200, 'list with fields (zod-validated)');
  check(rows.length > 0, 'rows');
  check(!zCustomerPayment.safeParse(rows[0]).success, 'the full CustomerPayment schema rejects a fields row');
  check(zCustomerPaymentFields.safeParse(rows[0]).success, 'CustomerPaymentFields accepts it');

  const before = await balance(95);
  const key = idemKey('hey-seed');
  const c = await api.createCustomerPayment({
    headers: { 'Idempotency-Key': key },
    body: { customerId: 95, amountInMajorCurrency: amount('150.25'), type: 'BACS', description: 'phone payment' },
  });
  const p = ok(c, 200, 'create a customer payment (zod-validated)');
  eq(exactBody(c.response, p).amountInMajorCurrency, '150.25', 'amount read back exactly');
  eq(await balance(95), before + 15025n, 'balance + 150.25 exactly');
  const g = await api.getCustomerPayment({ path: { customer_payment_id: p.id } });
  const full = complete<CustomerPayment>(ok(g, 200, 'get by id'), 'CustomerPayment');
  eq(full, p, 'get by id answers the created payment');
  const s = await api.getCustomerPayment({ path: { customer_payment_id: p.id }, query: { fields: 'id,paymentDate' } });
  eq(Object.keys(ok(s, 200, 'get by id with fields')).sort().join(), 'id,paymentDate', 'fields on get by id');

  // 0.10 + 0.20 as minor units: exactly 0.30.
  const b0 = await balance(95);
  let sum = 0n;
  for (const a of ['0.10', '0.20']) {
    const r = await api.createCustomerBalanceAdjustment({ body: { customerId: 95, amountInMajorCurrency: amount(a) } });
    sum += toMinor(exactBody(r.response, ok(r, 200, `adjustment ${a}`)).amountInMajorCurrency, 2);
  }
  eq(fromMinor(sum, 2), '0.30', 'the booked amounts add up to 0.30 in minor units');
  eq(fromMinor((await balance(95)) - b0, 2), '0.30', 'the balance moved by 0.30');
  const back = await api.createCustomerBalanceAdjustment({ body: { customerId: 95, amountInMajorCurrency: amount('-0.30') } });
  ok(back, 200, 'debit 0.30');
}

async function everyRead(): Promise<void> {
  // Lists and gets of every resource, each response through its zod schema.
  const providers = ok(await api.getPaymentProviders({ query: { page: 1, pageSize: 100 } }), 200, 'providers');
  const pid = providers[0]?.id;
  if (pid !== undefined) ok(await api.getPaymentProvider({ path: { payment_provider_id: pid } }), 200, 'provider');
  const ips = ok(await api.getInvoicePayments({ query: { page: 1, pageSize: 50, sort: 'id:desc' } }), 200, 'invoice payments');
  const ip = ips[0]?.id;
  if (check(ip !== undefined, 'an invoice payment exists')) {
    ok(await api.getInvoicePayment({ path: { invoice_payment_id: ip as number } }), 200, 'invoice payment');
  }
  const aips = ok(await api.getAdhocInvoicePayments({ query: { page: 1, pageSize: 50, sort: 'id:desc' } }), 200, 'adhoc payments');
  const aip = aips[0]?.id;
  if (check(aip !== undefined, 'an adhoc invoice payment exists')) {
    ok(await api.getAdhocInvoicePayment({ path: { adhoc_invoice_payment_id: aip as number } }), 200, 'adhoc payment');
  }
  const rfs = ok(await api.getRefunds({ query: { page: 1, pageSize: 50, sort: 'id:desc' } }), 200, 'refunds');
  const rf = rfs[0]?.id;
  if (check(rf !== undefined, 'a refund exists')) ok(await api.getRefund({ path: { refund_id: rf as number } }), 200, 'refund');
  // Site 125 (customer 98): fetch_client.ts completed a GoCardless mandate flow there.
  const sms = ok(await api.getSitePaymentMandates({ query: { page: 1, pageSize: 50, sort: 'id:desc', siteId: 125 } }), 200, 'site mandates');
  const withRef = sms.find((m) => typeof m.mandateReference === 'string');
  if (check(withRef?.id !== undefined, 'a site mandate with a reference exists')) {
    const m = complete<SitePaymentMandate>(ok(await api.getSitePaymentMandate({ path: { site_payment_mandate_id: withRef?.id as number } }),
      200, 'site mandate'), 'SitePaymentMandate');
    const ref = m.mandateReference as string;
    ok(await api.getPaymentProviderMandate({ path: { paymentMethod: 'GO_CARDLESS', mandateReference: ref } }),
      200, 'provider mandate');
    ok(await api.getInstantBankPaymentsForMandate({ query: { mandateReference: ref, paymentMethod: 'GO_CARDLESS' } }),
      200, 'instant bank payments');
  }
  ok(await api.getCustomerCreditStatus({ query: { page: 1, pageSize: 100 } }), 200, 'credit status');
  ok(await api.getOpenApiDocument(), 200, 'the document');
  ok(await api.getLiveness(), 200, 'healthz');
  ok(await api.getReadiness(), 200, 'readyz');
  check((ok(await api.getMetrics(), 200, 'metrics') as string).includes('# TYPE'), 'metrics text');
}

async function writes(): Promise<void> {
  const inv = ok(await api.getCustomerPayments({ query: { customer_id: 97, page: 1, pageSize: 10, customerPaymentType: 'ADHOC_INVOICE' } }),
    200, 'adhoc invoices of 97').find((r) => r.invoiceId != null)?.invoiceId;
  if (!check(typeof inv === 'number', 'customer 97 has an adhoc invoice')) return;
  const a = await api.createAdhocInvoicePayment({
    body: { generatedAdhocInvoiceId: inv as number, amountInMajorCurrency: amount('0.30'), description: 'hey adhoc',
      paymentMethod: 'CHEQUE' },
  });
  eq(exactBody(a.response, ok(a, 201, 'adhoc invoice payment')).amountInMajorCurrency, '0.30', 'adhoc amount exact');
  const prov = ok(await api.createPaymentProvider({
    body: { type: 'PAYPAL', name: 'Client test PayPal', status: 'INACTIVE', contractOwnerIds: [1] },
  }), 201, 'create provider');
  const patched = await api.patchPaymentProvider({
    path: { payment_provider_id: prov.id },
    body: [{ op: 'test', path: '/name', value: 'Client test PayPal' }, { op: 'replace', path: '/name', value: 'Client test PayPal 2' }],
  });
  eq(ok(patched, 200, 'patch provider (application/json-patch+json)').name, 'Client test PayPal 2', 'patched name');
  ok(await api.createPaymentProviderReprocess({ body: { paymentProviderId: prov.id } }), 200, 'provider reprocess');
  const link = ok(await api.createPaymentProviderPaymentLink({
    body: { paymentProviderId: 1, amountInMajorCurrency: amount('1.50'), description: 'hey link', customerId: 95 },
  }), 201, 'payment link');
  const tok = new URL(link.paymentLink).pathname.split('/').pop() ?? '';
  check((ok(await api.getPaymentLinkPage({ path: { token: tok } }), 200, 'link page') as string).includes('</html>'), 'HTML page');
}

async function errors(): Promise<void> {
  const anon = await api.getCustomerPayments({ query: { customer_id: 95, page: 1, pageSize: 1 }, auth: () => undefined });
  isError(anon, 401, 'UNAUTHENTICATED', '401 without a token');
  const ro = await api.createCustomerBalanceAdjustment({ body: { customerId: 95, amountInMajorCurrency: 1 }, auth: () => RO });
  isError(ro, 403, 'INSUFFICIENT_SCOPE', '403 read-only token');
  isError(await api.getRefund({ path: { refund_id: 999999999 } }), 404, 'NOT_FOUND', '404 unknown refund');
  const k = idemKey('hey-reuse');
  ok(await api.createCustomerBalanceAdjustment({ headers: { 'Idempotency-Key': k }, body: { customerId: 95, amountInMajorCurrency: amount('0.01') } }),
    200, 'adjustment with a key');
  isError(await api.createCustomerBalanceAdjustment({ headers: { 'Idempotency-Key': k }, body: { customerId: 95, amountInMajorCurrency: amount('0.02') } }),
    422, 'IDEMPOTENCY_KEY_REUSED', '422 key reused with another body');
  const inv = ok(await api.getCustomerPayments({ query: { customer_id: 96, page: 1, pageSize: 10, customerPaymentType: 'INVOICE' } }),
    200, 'invoices of 96').find((r) => r.invoiceId != null)?.invoiceId;
  isError(await api.createRefund({ body: { invoiceId: inv as number, billRunType: 'NORMAL', amountInMajorCurrency: amount('99999.00') } }),
    409, 'CONFLICT', '409 refund above the refundable amount');
  // The generated request validator refuses what the document forbids
  // before anything is sent: a three-decimal GBP amount is fine for zod
  // (the document cannot say "the currency's digits"), an unknown enum is not.
  let refused = false;
  try {
    await api.createCustomerPayment({ body: { customerId: 95, amountInMajorCurrency: 1, type: 'NOT_A_METHOD' as 'BACS' } });
  } catch {
    refused = true;
  }
  check(refused, 'the generated request validator refuses an unknown payment method');
}

async function paging(): Promise<void> {
  let page = 1;
  const ids: number[] = [];
  let total = 0;
  for (;;) {
    const r = await api.getCustomerPayments({ query: { customer_id: 95, page, pageSize: 4, sort: 'id:desc', fields: 'id' } });
    const rows = ok(r, 200, `page ${page}`);
    total = Number(r.response.headers.get('x-total-count'));
    ids.push(...rows.map((x) => x.id).filter((x): x is number => x !== undefined));
    const next = /<([^>]+)>;\s*rel="next"/.exec(r.response.headers.get('link') ?? '');
    if (!next) break;
    page = Number(new URL(next[1], BASE).searchParams.get('page'));
    if (page > 1000) throw new Error('no end of pages');
  }
  eq(ids.length, total, 'Link rel=next walks X-Total-Count rows');
  check(ids.every((id, i) => i === 0 || id < ids[i - 1]), 'ids descend across pages');
}

await run([['seedAndMoney', seedAndMoney], ['everyRead', everyRead], ['writes', writes], ['errors', errors], ['paging', paging]]);
