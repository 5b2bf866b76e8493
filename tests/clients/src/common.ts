// Shared by the client scripts (fetch_client.ts, hey_client.ts): the stack's
// settings, tokens, the check kit, the response log, and the money helpers
// that read and write amountInMajorCurrency without binary floating point.
//
// Nothing here talks to the API: every call of the scripts goes through a
// client generated from the served OpenAPI document. The only fetch used is
// the one handed to those clients (recordingFetch), which keeps the body
// text of each response for the exact money readers and logs the response
// for e2e.openapi_responses like tests/e2e/paytest.py does.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LosslessNumber, parse, stringify } from 'lossless-json';

// ---- the stack ------------------------------------------------------------------

function loadEnv(): Record<string, string> {
  const file = process.env.PAY_STACK_ENV;
  if (!file || !fs.existsSync(file)) {
    console.log('PAY_STACK_ENV is not set or missing: the stack is not running');
    process.exit(1);
  }
  const env: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const v = m[2];
    env[m[1]] = v.startsWith("'") && v.endsWith("'") ? v.slice(1, -1).replace(/'\\''/g, "'") : v;
  }
  return env;
}

export const ENV = loadEnv();
export const BASE = ENV.PAY_BASE_URL;
if (!/^http:\/\/(127\.0\.0\.1|\[::1\]|localhost)(:\d+)?$/.test(BASE ?? '')) {
  console.log(`PAY_BASE_URL ${BASE} is not a loopback URL`);
  process.exit(1);
}

export function token(sub: string, scope: string, owners = '1,2'): string {
  return execFileSync(ENV.PAY_BIN, ['--config', ENV.PAY_CONFIG, 'token', '--sub', sub, '--scope', scope,
    '--contract-owners', owners, '--ttl', '3600'], { encoding: 'utf8' }).trim();
}

// A fresh Idempotency-Key: keys are scoped to the token's sub and live as
// long as the stack, so a second run on the same stack must not reuse one.
export function idemKey(what: string): string {
  return `clients-${what}-${randomUUID()}`;
}

// ---- checks -----------------------------------------------------------------------

let passed = 0;
let failed = 0;

export function check(cond: boolean, what: string, detail?: unknown): boolean {
  if (cond) passed++;
  else {
    failed++;
    console.log(`FAIL: ${what}${detail === undefined ? '' : ` -- ${typeof detail === 'string' ? detail : show(detail)}`}`);
  }
  return cond;
}

const show = (v: unknown): string => JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)) ?? String(v);

export function eq<T>(got: T, want: T, what: string): boolean {
  return check(Object.is(got, want) || show(got) === show(want), what, `got ${show(got)}, want ${show(want)}`);
}

// Runs the named steps in order; an exception fails its step and the run
// goes on. Ends with "N passed, N failed" and exit status 1 on any failure.
export async function run(steps: Array<[string, () => Promise<void>]>): Promise<never> {
  for (const [name, step] of steps) {
    try {
      await step();
    } catch (e) {
      failed++;
      console.log(`FAIL: ${name} raised: ${e instanceof Error ? e.stack ?? e.message : String(e)}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 && passed > 0 ? 0 : 1);
}

// ---- the fetch handed to the generated clients ----------------------------------------

const bodies = new WeakMap<Response, string>();
const LOG = process.env.PAY_RESPONSE_LOG;
const SCRIPT = `clients/${path.basename(process.argv[1] ?? 'client').replace(/\.js$/, '.ts')}`;

// Plain fetch, plus: the body text of every response is kept (bodyText),
// and the response is appended to $PAY_RESPONSE_LOG when set, in the format
// of tests/e2e/paytest.py, so the OpenAPI response check sees it too.
export async function recordingFetch(input: Request): Promise<Response> {
  const u = new URL(input.url);
  if (u.origin !== new URL(BASE).origin) throw new Error(`refusing a request to ${u.origin}: not the stack`);
  const res = await fetch(input);
  const text = await res.clone().text();
  bodies.set(res, text);
  if (LOG) {
    const headers: Record<string, string> = {};
    res.headers.forEach((v, k) => {
      headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
    });
    fs.appendFileSync(LOG, JSON.stringify({
      method: input.method, path: u.pathname, query: u.search.replace(/^\?/, ''), status: res.status,
      contentType: res.headers.get('content-type'), headers, body: text, redirected: false, test: SCRIPT,
    }) + '\n');
  }
  return res;
}

// The body text of a response that came through recordingFetch.
export function bodyText(res: Response): string {
  const t = bodies.get(res);
  if (t === undefined) throw new Error('this response did not come through recordingFetch');
  return t;
}

// ---- the full and the sparse form ---------------------------------------------------
//
// An operation that takes `fields` answers anyOf [X, XFields] (XFields: the
// same keys, none required), so the generated type of its data is
// X | XFields. Asked without `fields`, the server sends the full X: complete()
// narrows to it after checking that every key X requires (in the served
// document, $PAY_OPENAPI_DOC) is there.

const DOC = JSON.parse(fs.readFileSync(process.env.PAY_OPENAPI_DOC ?? '', 'utf8')) as {
  components: { schemas: Record<string, { required?: string[] }> };
};

export function complete<T extends object>(x: T | Partial<T>, schema: string): T {
  const required = DOC.components.schemas[schema]?.required;
  if (!required) throw new Error(`no schema ${schema} with required keys in the document`);
  const missing = required.filter((k) => !(k in x));
  if (missing.length) throw new Error(`${schema} without ${missing.join(', ')}: ${JSON.stringify(x)}`);
  return x as T;
}

// ---- money --------------------------------------------------------------------------
//
// The generated models type `amountInMajorCurrency` (format: decimal) as a
// JSON number, which JSON.parse turns into a binary double: 10.50 arrives as
// 10.5, and adding doubles drifts (0.1 + 0.2 !== 0.3). Exact reading parses
// the response text again keeping every number as the text the server wrote:
// Exact<T> is the generated type T with each number replaced by that text.

export type Exact<T> = T extends number ? string
  : T extends Array<infer U> ? Array<Exact<U>>
    : T extends object ? { [K in keyof T]: Exact<T[K]> }
      : T;

// The response's body as Exact<T>, T being the generated type of the data
// the client returned for it (passed only for its type).
export function exactBody<T>(res: Response, _typed: T): Exact<T> {
  return parse(bodyText(res), null, (text: string) => text) as Exact<T>;
}

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

// Decimal text with exactly `digits` decimals (as the server writes money)
// to integer minor units.
export function toMinor(text: string, digits: number): bigint {
  const m = DECIMAL.exec(text);
  if (!m || (m[3] ?? '').length !== digits) throw new Error(`${text} is not money with ${digits} decimals`);
  const v = BigInt(m[2] + (m[3] ?? ''));
  return m[1] === '-' ? -v : v;
}

// Integer minor units to decimal text with exactly `digits` decimals.
export function fromMinor(minor: bigint, digits: number): string {
  const neg = minor < 0n;
  const s = (neg ? -minor : minor).toString().padStart(digits + 1, '0');
  const int = s.slice(0, s.length - digits);
  return `${neg ? '-' : ''}${int}${digits > 0 ? `.${s.slice(s.length - digits)}` : ''}`;
}

// Sending money as exact decimal text: the generated request types want a
// number, so decimal() wraps the text in a LosslessNumber (typed as the
// number it stands for) and exactJson, the client's body serializer, writes
// it verbatim. JSON.stringify would also write 150.25 back as "150.25" (a
// decimal of at most 15 significant digits survives a double round trip),
// but only if no arithmetic ever touched the double.
export function decimal(text: string): number {
  if (!DECIMAL.test(text)) throw new Error(`${text} is not decimal text`);
  return new LosslessNumber(text) as unknown as number;
}

export function exactJson(body: unknown): string {
  const s = stringify(body);
  if (s === undefined) throw new Error('body cannot be serialized');
  return s;
}
