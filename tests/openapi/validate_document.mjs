// ctest unit.openapi_document: the OpenAPI document is valid OpenAPI 3.0
// (@apidevtools/swagger-parser: the OpenAPI 3.0 JSON schema plus its own
// checks: resolvable $refs, unique operationIds, declared path
// parameters...), and every example in it (operation, parameter, header and
// schema examples; the operation examples are real responses of the demo
// data) validates against the schema it illustrates.
//
//   node tests/openapi/validate_document.mjs [handlers/openapi.json]
//
// Ends with "N passed, N failed"; exit status 1 on any failure.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import SwaggerParser from '@apidevtools/swagger-parser';
import { HTTP_METHODS, deref, loadDocument, makeAjv, toJsonSchema } from './oas.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const file = process.argv[2] ?? path.join(here, '..', '..', 'handlers', 'openapi.json');
let passed = 0;
let failed = 0;
function check(ok, what, detail) {
  if (ok) {
    passed++;
  } else {
    failed++;
    console.log(`FAIL: ${what}${detail ? ` -- ${detail}` : ''}`);
  }
  return ok;
}

const doc = loadDocument(file);
check(/^3\.0\.\d+$/.test(doc.openapi ?? ''), 'the document declares OpenAPI 3.0.x', doc.openapi);
try {
  // validate() dereferences what it is given: hand it a copy.
  const api = await SwaggerParser.validate(structuredClone(doc));
  check(true, 'swagger-parser validate()');
  console.log(`valid OpenAPI ${api.openapi}: ${api.info.title} ${api.info.version}`);
} catch (e) {
  check(false, 'swagger-parser validate()', e.message);
}

const ajv = makeAjv(doc);
function exampleOk(where, schema, example) {
  if (schema === undefined) return check(false, `${where}: an example without a schema`);
  let validate;
  try {
    validate = ajv.compile(toJsonSchema(schema));
  } catch (e) {
    return check(false, `${where}: schema does not compile`, e.message);
  }
  return check(validate(example), `${where}: example matches its schema`,
    ajv.errorsText(validate.errors, { separator: '; ' }));
}

function mediaExamples(where, content) {
  for (const [mt, m] of Object.entries(content ?? {})) {
    if ('example' in m) exampleOk(`${where} ${mt}`, m.schema, m.example);
    for (const [name, ex] of Object.entries(m.examples ?? {})) {
      exampleOk(`${where} ${mt} example ${name}`, m.schema, deref(doc, ex).value);
    }
  }
}

let operations = 0;
let withExample = 0;
for (const [p, item] of Object.entries(doc.paths)) {
  for (const method of HTTP_METHODS) {
    const op = item[method];
    if (!op) continue;
    operations++;
    const where = `${method.toUpperCase()} ${p}`;
    for (const prm of op.parameters ?? []) {
      const d = deref(doc, prm);
      if ('example' in d) exampleOk(`${where} parameter ${d.name}`, d.schema, d.example);
    }
    if (op.requestBody) mediaExamples(`${where} request body`, deref(doc, op.requestBody).content);
    let success = false;
    for (const [status, r] of Object.entries(op.responses)) {
      const resp = deref(doc, r);
      mediaExamples(`${where} ${status}`, resp.content);
      for (const [h, hv] of Object.entries(resp.headers ?? {})) {
        const hd = deref(doc, hv);
        if ('example' in hd) exampleOk(`${where} ${status} header ${h}`, hd.schema, hd.example);
      }
      if (/^2/.test(status) && Object.values(resp.content ?? {}).some((m) => 'example' in m)) success = true;
    }
    if (success) withExample++;
  }
}

// Schema-level examples, wherever they sit in a component schema.
function schemaExamples(where, s) {
  if (Array.isArray(s)) {
    s.forEach((x, i) => schemaExamples(`${where}[${i}]`, x));
    return;
  }
  if (s === null || typeof s !== 'object') return;
  if ('example' in s && !s.$ref) exampleOk(where, s, s.example);
  for (const [k, v] of Object.entries(s)) {
    if (k === 'example' || k === 'enum' || k === 'default') continue;
    if (k === 'properties') {
      for (const [n, x] of Object.entries(v)) schemaExamples(`${where}.${n}`, x);
    } else if (typeof v === 'object') {
      schemaExamples(`${where}/${k}`, v);
    }
  }
}
for (const [name, s] of Object.entries(doc.components?.schemas ?? {})) schemaExamples(`schema ${name}`, s);

// Every JSON success response of an /v1/ operation shows a real example.
for (const [p, item] of Object.entries(doc.paths)) {
  for (const method of HTTP_METHODS) {
    const op = item[method];
    if (!op || !p.startsWith('/v1/') || p === '/v1/openapi.json') continue;
    const ok = Object.entries(op.responses).some(([status, r]) => /^2/.test(status) &&
      Object.values(deref(doc, r).content ?? {}).some((m) => 'example' in m));
    check(ok, `${method.toUpperCase()} ${p}: its success response has an example`);
  }
}
// The sparse form of `fields` responses: every XFields (x-sparse-of: X) has
// exactly X's properties and requires none, and every operation taking
// `fields` answers 200 with anyOf [X, XFields] (or an array of it), so that
// a validating generated client accepts a thinned object.
const schemas = doc.components?.schemas ?? {};
const sameJson = (a, b) => JSON.stringify(a) === JSON.stringify(b);
for (const [name, s] of Object.entries(schemas)) {
  const of = s['x-sparse-of'];
  if (of === undefined) continue;
  const base = schemas[of];
  if (!check(base !== undefined, `schema ${name}: x-sparse-of ${of} exists`)) continue;
  check(name === `${of}Fields`, `schema ${name}: named ${of}Fields`);
  check(sameJson(s.properties, base.properties), `schema ${name}: the properties of ${of}, identical`);
  check(s.required === undefined, `schema ${name}: no required keys`);
  check(s.additionalProperties === base.additionalProperties, `schema ${name}: additionalProperties as ${of}`);
}
for (const [p, item] of Object.entries(doc.paths)) {
  for (const method of HTTP_METHODS) {
    const op = item[method];
    if (!op || !(op.parameters ?? []).some((x) => deref(doc, x).name === 'fields')) continue;
    let s = deref(doc, op.responses['200'])?.content?.['application/json']?.schema;
    if (s?.type === 'array') s = s.items;
    const refs = (s?.anyOf ?? []).map((x) => x.$ref?.replace('#/components/schemas/', ''));
    check(refs.length === 2 && schemas[refs[1]]?.['x-sparse-of'] === refs[0],
      `${method.toUpperCase()} ${p}: takes fields, so 200 is anyOf [X, XFields]`, JSON.stringify(s));
  }
}

// Nullable enumerations are written out (type string, nullable, the values
// plus null), as OpenAPI 3.0.3 gives `nullable` effect only next to `type`:
// `{allOf: [{$ref: E}], nullable: true}` does not allow null for a strict
// validator (JSON::Validator). Each names its enumeration in `x-enum-of`
// and must list exactly its values and null.
function nullableEnums(where, s) {
  if (Array.isArray(s)) return s.forEach((x, i) => nullableEnums(`${where}[${i}]`, x));
  if (s === null || typeof s !== 'object') return;
  if (s.allOf && s.nullable) check(false, `${where}: allOf + nullable (null is not allowed in OpenAPI 3.0.3): write the enumeration out with x-enum-of`);
  if ('x-enum-of' in s) {
    const e = schemas[s['x-enum-of']];
    check(e !== undefined && s.type === e.type && s.nullable === true && sameJson(s.enum, [...e.enum, null]),
      `${where}: the values of ${s['x-enum-of']} and null`, JSON.stringify(s.enum));
  }
  for (const [k, v] of Object.entries(s)) if (k !== 'enum' && k !== 'example' && typeof v === 'object') nullableEnums(`${where}/${k}`, v);
}
nullableEnums('document', doc);

console.log(`${operations} operations, ${withExample} with a success example`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
