// ctest e2e.openapi_responses: every response the end-to-end suite received
// (tests/e2e/paytest.py appends each one to $PAY_RESPONSE_LOG as a JSON line)
// must be one the OpenAPI document declares:
//   - the request matches an operation (path template + method; HEAD is
//     checked as the GET operation of its path, without a body). A path
//     matching no operation must have been answered 404, and a documented
//     path with an undocumented method 405 with an Allow header, both with
//     an Error body (neither is listed per operation);
//   - the status is declared by the operation (or a `default` response);
//   - the Content-Type's media type is one the response declares (JSON
//     with charset=utf-8; no other charset anywhere), or there is no body
//     when it declares none;
//   - a JSON body validates (Ajv) against the declared schema, $refs
//     resolved and OpenAPI 3.0 `nullable` honoured (see oas.mjs); with a
//     `fields` query parameter the objects may omit keys (the document's
//     sparse `…Fields` form); without one they must match the full schema
//     (the sparse branch of `anyOf: [X, XFields]` left out); an HTML body
//     must be one HTML document;
//   - headers the response marks `required` are present, and integer ones
//     are integers.
// Prints per-operation counts and every mismatch, and ends with the line
// "N passed, N failed". Fails on any mismatch, or when fewer than --min
// responses were checked (so it cannot pass vacuously).
//
//   node tests/openapi/validate_responses.mjs --log FILE [--doc handlers/openapi.json] [--min 1000]
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HTTP_METHODS, deref, full, loadDocument, makeAjv, partial, toJsonSchema } from './oas.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const args = { doc: path.join(here, '..', '..', 'handlers', 'openapi.json'), log: process.env.PAY_RESPONSE_LOG, min: '1000' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args) || process.argv[i + 1] === undefined) {
    console.error(`usage: validate_responses.mjs --log FILE [--doc FILE] [--min N] (bad argument ${process.argv[i]})`);
    process.exit(2);
  }
  args[k] = process.argv[i + 1];
}
if (!args.log) {
  console.error('validate_responses.mjs: no log (--log FILE or $PAY_RESPONSE_LOG)');
  process.exit(2);
}
const minimum = Number(args.min);

const doc = loadDocument(args.doc);
const ajv = makeAjv(doc);
const errorValidator = ajv.compile({ $ref: 'oas#/definitions/Error' });

// ---- operations ---------------------------------------------------------

const templates = Object.keys(doc.paths).map((t) => {
  const segs = t.split('/').slice(1);
  const re = new RegExp('^/' + segs.map((s) => (/^\{[^}]+\}$/.test(s) ? '[^/]+'
    : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/') + '$');
  return { template: t, re, literals: segs.filter((s) => !s.startsWith('{')).length };
});
// The most literal template first: /a/b beats /a/{x}.
templates.sort((a, b) => b.literals - a.literals);

// nginx hands the workers a decoded, normalised path (merged slashes, dot
// segments resolved); match what the server matched.
function normalise(p) {
  let s = p;
  try {
    s = decodeURIComponent(p);
  } catch {
    /* malformed escape: nginx refuses it with 400 anyway */
  }
  s = s.replace(/\/{2,}/g, '/');
  const out = [];
  for (const seg of s.split('/').slice(1)) {
    if (seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return '/' + out.join('/');
}

function findTemplate(p) {
  const n = normalise(p);
  return templates.find((t) => t.re.test(n));
}

const validators = new Map();
function validatorFor(key, schema) {
  if (!validators.has(key)) validators.set(key, ajv.compile(toJsonSchema(schema)));
  return validators.get(key);
}

// ---- results --------------------------------------------------------------

const stats = new Map(); // label -> {passed, failed, statuses: Map}
let passed = 0;
let failed = 0;
const mismatches = [];

function record(label, rec, problems) {
  if (!stats.has(label)) stats.set(label, { passed: 0, failed: 0, statuses: new Map() });
  const s = stats.get(label);
  s.statuses.set(rec.status, (s.statuses.get(rec.status) ?? 0) + 1);
  if (problems.length === 0) {
    s.passed++;
    passed++;
    return;
  }
  s.failed++;
  failed++;
  let q = rec.query ? `?${rec.query}` : '';
  if (q.length > 200) q = `${q.slice(0, 200)}... (${q.length} characters)`;
  const body = typeof rec.body === 'string' ? rec.body.slice(0, 300) : '';
  mismatches.push(`MISMATCH ${rec.method} ${rec.path}${q} -> ${rec.status} ${rec.contentType ?? '(no content type)'}` +
    ` [${rec.test ?? '?'}]\n    ${problems.join('\n    ')}\n    body: ${body}`);
}

function mediaType(ct) {
  return ct ? ct.split(';')[0].trim().toLowerCase() : null;
}

function charsetOk(ct) {
  return /;\s*charset="?utf-8"?\s*$/i.test(ct ?? '');
}

function checkErrorBody(rec, problems) {
  if (mediaType(rec.contentType) !== 'application/json' || !charsetOk(rec.contentType)) {
    problems.push(`Content-Type ${rec.contentType}, want application/json; charset=utf-8`);
    return;
  }
  if (rec.method === 'HEAD') return;
  let body;
  try {
    body = JSON.parse(rec.body);
  } catch (e) {
    problems.push(`body is not JSON: ${e.message}`);
    return;
  }
  if (!errorValidator(body)) problems.push(`Error schema: ${ajv.errorsText(errorValidator.errors, { separator: '; ' })}`);
  else if (body.status !== rec.status) problems.push(`Error.status ${body.status} but HTTP ${rec.status}`);
}

function checkHeaders(rec, resp, problems) {
  for (const [name, h] of Object.entries(resp.headers ?? {})) {
    const hd = deref(doc, h);
    const v = rec.headers?.[name.toLowerCase()];
    if (v === undefined) {
      if (hd.required) problems.push(`required header ${name} is missing`);
      continue;
    }
    if (hd.schema?.type === 'integer' && !/^-?\d+$/.test(v)) problems.push(`header ${name}: ${v} is not an integer`);
  }
}

function checkResponse(rec, opKey, op, problems) {
  const status = String(rec.status);
  const declared = op.responses[status] ?? op.responses[`${status[0]}XX`] ?? op.responses.default;
  if (!declared) {
    problems.push(`status ${status} is not declared (declared: ${Object.keys(op.responses).join(', ')})`);
    return;
  }
  const resp = deref(doc, declared);
  checkHeaders(rec, resp, problems);
  const content = resp.content ?? {};
  const mt = mediaType(rec.contentType);
  if (Object.keys(content).length === 0) {
    if (rec.body) problems.push('the response declares no body, but one was sent');
    return;
  }
  if (!(mt in content)) {
    problems.push(`Content-Type ${rec.contentType ?? '(none)'} is not declared (declared: ${Object.keys(content).join(', ')})`);
    return;
  }
  if (mt === 'application/json' && !charsetOk(rec.contentType)) {
    problems.push(`Content-Type ${rec.contentType}: charset=utf-8 expected`);
  }
  if (/charset=/i.test(rec.contentType ?? '') && !charsetOk(rec.contentType)) {
    problems.push(`Content-Type ${rec.contentType}: a charset other than utf-8`);
  }
  if (rec.method === 'HEAD') return;
  if (mt === 'text/html') {
    if (!/^\s*(<!doctype html[^>]*>\s*)?<html[\s>]/i.test(rec.body ?? '') || !/<\/html>\s*$/i.test(rec.body ?? '')) {
      problems.push('the body is not an HTML document');
    }
    return;
  }
  if (mt !== 'application/json') return; // text/plain (metrics): any text
  let body;
  try {
    body = JSON.parse(rec.body);
  } catch (e) {
    problems.push(`body is not JSON: ${e.message}`);
    return;
  }
  const schema = content[mt].schema;
  const fields = new URLSearchParams(rec.query ?? '').has('fields');
  const v = fields ? validatorFor(`${opKey} ${status} ${mt} fields`, partial(schema))
    : validatorFor(`${opKey} ${status} ${mt}`, full(doc, schema));
  if (!v(body)) problems.push(`schema: ${ajv.errorsText(v.errors, { separator: '; ' })}`);
  if (mt === 'application/json' && rec.status >= 400 && body && typeof body === 'object' && body.status !== rec.status) {
    problems.push(`Error.status ${body.status} but HTTP ${rec.status}`);
  }
}

// ---- main -------------------------------------------------------------------

if (!fs.existsSync(args.log)) {
  console.log(`no response log at ${args.log}: nothing was recorded`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const lines = fs.readFileSync(args.log, 'utf8').split('\n').filter((l) => l.trim() !== '');
for (const [i, line] of lines.entries()) {
  let rec;
  try {
    rec = JSON.parse(line);
  } catch (e) {
    record('(unreadable log line)', { method: '?', path: `line ${i + 1}`, status: 0 }, [`not JSON: ${e.message}`]);
    continue;
  }
  rec.method = String(rec.method ?? '').toUpperCase();
  const problems = [];
  const t = findTemplate(rec.path ?? '');
  if (!t) {
    if (rec.status !== 404) problems.push('no operation has this path, so only 404 is expected');
    checkErrorBody(rec, problems);
    record('(no such path) 404', rec, problems);
    continue;
  }
  const item = doc.paths[t.template];
  // HEAD is answered by every GET operation (RFC 9110 9.3.2), without a body:
  // it is checked against the GET operation (the body checks are skipped).
  const m = rec.method === 'HEAD' && item.get ? 'get' : rec.method.toLowerCase();
  if (!HTTP_METHODS.includes(m) || !item[m]) {
    if (rec.status !== 405) problems.push(`${rec.method} is not an operation of ${t.template}, so only 405 is expected`);
    else if (!rec.headers?.allow) problems.push('405 without an Allow header');
    checkErrorBody(rec, problems);
    record(`(other method on a path) 405`, rec, problems);
    continue;
  }
  const op = item[m];
  const key = `${m.toUpperCase()} ${t.template}`;
  checkResponse(rec, key, op, problems);
  record(`${key}  ${op.operationId}`, rec, problems);
}

for (const mm of mismatches) console.log(mm);
console.log('\nResponses checked per operation (passed/failed, by status):');
const labels = [...stats.keys()].sort();
for (const label of labels) {
  const s = stats.get(label);
  const st = [...s.statuses.entries()].sort((a, b) => a[0] - b[0]).map(([k, v]) => `${k}x${v}`).join(' ');
  console.log(`  ${String(s.passed).padStart(6)} ${String(s.failed).padStart(4)}  ${label}  [${st}]`);
}
const untested = [];
for (const [p, item] of Object.entries(doc.paths)) {
  for (const m of HTTP_METHODS) {
    if (item[m] && !stats.has(`${m.toUpperCase()} ${p}  ${item[m].operationId}`)) untested.push(`${m.toUpperCase()} ${p}`);
  }
}
// Every operation must have answered at least once: a document operation
// the suite never reaches is not proven to match the server.
for (const u of untested) console.log(`UNTESTED ${u}: no response of this operation was recorded`);
let vacuous = 0;
if (passed + failed < minimum) {
  console.log(`\nonly ${passed + failed} responses were checked, fewer than the ${minimum} required`);
  vacuous = 1;
}
console.log(`\n${passed} passed, ${failed + vacuous + untested.length} failed`);
process.exit(failed === 0 && vacuous === 0 && untested.length === 0 ? 0 : 1);
