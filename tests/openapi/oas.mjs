// Shared by validate_document.mjs and validate_responses.mjs: loads the
// OpenAPI 3.0 document and turns its schemas into JSON Schema for Ajv.
//
// OpenAPI 3.0 schemas are a dialect of JSON Schema draft 4/5. The
// differences that matter here:
//   - `nullable: true` allows null as well: the schema becomes
//     {anyOf: [{type: "null"}, <schema without nullable>]}, which also
//     covers nullable enums (written out with null among their values and
//     `x-enum-of`, see validate_document.mjs);
//   - `example`, `xml`, `externalDocs`, `deprecated`, `discriminator`,
//     `readOnly`, `writeOnly` and `x-*` extensions are annotations: dropped;
//   - `format: decimal` (money, a JSON number with the currency's minor
//     digits) and int32/int64 are formats Ajv learns below.
// References "#/components/schemas/X" become "oas#/definitions/X", one
// schema holding every component schema. A "partial" twin of each
// component (X__partial, with no `required` at its top level) serves
// responses to requests with `fields`, whose objects carry only the keys
// asked for.
//
// The document itself describes that sparse form: an operation taking
// `fields` answers `anyOf: [X, XFields]`, XFields (marked `x-sparse-of: X`)
// having X's properties and no `required`. A response to a request without
// `fields` must be the full X: full() drops the sparse branches.
import fs from 'node:fs';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';

const ANNOTATIONS = new Set(['example', 'examples', 'xml', 'externalDocs', 'deprecated',
  'discriminator', 'readOnly', 'writeOnly']);
const SCHEMA_MAPS = new Set(['properties', 'patternProperties', 'definitions']);

export function loadDocument(path) {
  return JSON.parse(fs.readFileSync(path, 'utf8'));
}

// Converts one OpenAPI schema (object, or array of schemas) to JSON Schema.
export function toJsonSchema(s) {
  if (Array.isArray(s)) return s.map(toJsonSchema);
  if (s === null || typeof s !== 'object') return s;
  const out = {};
  for (const [k, v] of Object.entries(s)) {
    if (ANNOTATIONS.has(k) || k.startsWith('x-') || k === 'nullable') continue;
    if (k === '$ref') {
      out.$ref = v.replace(/^#\/components\/schemas\//, 'oas#/definitions/');
    } else if (SCHEMA_MAPS.has(k)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([n, x]) => [n, toJsonSchema(x)]));
    } else if (k === 'enum' || k === 'required' || k === 'default' || k === 'const') {
      out[k] = v;
    } else if (typeof v === 'object' && v !== null) {
      out[k] = toJsonSchema(v);
    } else {
      out[k] = v;
    }
  }
  if (s.nullable === true) {
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null];
    return { anyOf: [{ type: 'null' }, out] };
  }
  return out;
}

// The same schema with `required` dropped at its top level (following one
// $ref, or the items of an array): what a `fields` response may carry.
export function partial(schema) {
  if (schema && schema.$ref) return { $ref: schema.$ref + '__partial' };
  if (schema && schema.type === 'array' && schema.items) return { ...schema, items: partial(schema.items) };
  if (schema && (schema.oneOf || schema.anyOf)) {
    const k = schema.oneOf ? 'oneOf' : 'anyOf';
    return { ...schema, [k]: schema[k].map(partial) };
  }
  if (schema && typeof schema === 'object') {
    const { required, ...rest } = schema;
    return rest;
  }
  return schema;
}

// The schema with the anyOf branches that are sparse twins (refs to a
// component carrying `x-sparse-of`) left out, at its top level or in the
// items of an array: what a response without `fields` must match.
export function full(doc, schema) {
  const sparse = (s) => {
    const name = s?.$ref?.replace(/^#\/components\/schemas\//, '');
    return name !== undefined && doc.components?.schemas?.[name]?.['x-sparse-of'] !== undefined;
  };
  if (schema && schema.type === 'array' && schema.items) return { ...schema, items: full(doc, schema.items) };
  if (schema && schema.anyOf && schema.anyOf.some(sparse)) {
    const rest = schema.anyOf.filter((s) => !sparse(s));
    if (rest.length === 1 && Object.keys(schema).length === 1) return rest[0];
    return { ...schema, anyOf: rest };
  }
  return schema;
}

// An Ajv instance that knows every component schema of doc (as "oas").
export function makeAjv(doc) {
  const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictTuples: false,
    strictRequired: false });
  addFormats(ajv);
  // Money: a finite number with at most 4 decimals (the largest minor
  // digits a currency may have here), judged on the shortest text that
  // round-trips (String(n)). JSON.parse has already dropped trailing
  // zeros, so "exactly the currency's decimals" is not visible here.
  ajv.addFormat('decimal', {
    type: 'number',
    validate: (n) => {
      const m = /^-?\d+(?:\.(\d+))?(?:e([+-]\d+))?$/.exec(String(n));
      return m !== null && (m[1]?.length ?? 0) - Number(m[2] ?? 0) <= 4;
    },
  });
  const defs = {};
  for (const [name, s] of Object.entries(doc.components?.schemas ?? {})) {
    const js = toJsonSchema(s);
    defs[name] = js;
    const { required, ...rest } = js;
    defs[name + '__partial'] = js.anyOf ? js : rest;
  }
  ajv.addSchema({ $id: 'oas', definitions: defs });
  return ajv;
}

// Resolves a local "#/a/b/c" reference (one level; responses, parameters,
// headers and examples of this document never chain).
export function deref(doc, obj) {
  let o = obj;
  for (let i = 0; o && o.$ref && i < 5; i++) {
    const parts = o.$ref.replace(/^#\//, '').split('/').map(
      (p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
    o = parts.reduce((x, p) => (x == null ? x : x[p]), doc);
  }
  return o;
}

export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];
