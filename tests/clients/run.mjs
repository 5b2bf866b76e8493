// ctest clients.typescript: clients generated from the OpenAPI document the
// running stack serves drive the real API.
//
//   1. GET /v1/openapi.json from the stack ($PAY_STACK_ENV) into OUT/;
//   2. generate two TypeScript clients from it, offline, with npm packages
//      pinned by package-lock.json (./pay-stack test runs npm ci here):
//        - openapi-typescript (types) for openapi-fetch (the runtime),
//          into OUT/gen/openapi-typescript/;
//        - @hey-api/openapi-ts (SDK functions on its fetch client, types, and
//          zod schemas that validate every request and response at run time),
//          into OUT/gen/hey-api/;
//   3. compile the generated code (all .ts) and the scripts of src/ with
//      tsc --strict; any type error fails;
//   4. run src/fetch_client.ts and src/hey_client.ts (compiled), which call
//      every operation through the generated clients only.
// Prints each step with its duration; exit status 1 when any step fails.
//
//   PAY_STACK_ENV=/tmp/st/env node tests/clients/run.mjs [--out DIR] [--doc FILE]
//
// --doc FILE generates from FILE instead of the served document: to try a
// change of handlers/openapi.json before it is built into the server.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
let out = path.join(here, '..', '..', 'build-test', 'clients');
let docFrom = null;
for (let i = 2; i < process.argv.length; i += 2) {
  if (process.argv[i] === '--out' && process.argv[i + 1]) out = path.resolve(process.argv[i + 1]);
  else if (process.argv[i] === '--doc' && process.argv[i + 1]) docFrom = path.resolve(process.argv[i + 1]);
  else {
    console.error(`usage: run.mjs [--out DIR] [--doc FILE] (bad argument ${process.argv[i]})`);
    process.exit(2);
  }
}

const envFile = process.env.PAY_STACK_ENV;
if (!envFile || !fs.existsSync(envFile)) {
  console.log('PAY_STACK_ENV is not set or missing: the stack is not running');
  process.exit(1);
}
const base = /^PAY_BASE_URL='?([^'\n]*)'?$/m.exec(fs.readFileSync(envFile, 'utf8'))?.[1];
if (!base) {
  console.log(`no PAY_BASE_URL in ${envFile}`);
  process.exit(1);
}

const modules = path.join(here, 'node_modules');
if (!fs.existsSync(path.join(modules, 'typescript'))) {
  console.log(`${modules} is missing: run npm ci --prefix tests/clients`);
  process.exit(1);
}

let failures = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`== ${name}: ok (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    return true;
  } catch (e) {
    failures++;
    console.log(`== ${name}: FAILED (${((Date.now() - t0) / 1000).toFixed(1)} s)\n${e?.stack ?? e}`);
    return false;
  }
}

// ---- 1. the served document -------------------------------------------------------------

fs.rmSync(out, { recursive: true, force: true });
fs.mkdirSync(out, { recursive: true });
// The compiled scripts import their npm packages from tests/clients/node_modules.
fs.symlinkSync(modules, path.join(out, 'node_modules'), 'dir');
fs.writeFileSync(path.join(out, 'package.json'), JSON.stringify({ private: true, type: 'module' }) + '\n');
const docFile = path.join(out, 'openapi.json');

const served = docFrom ? await step(`the document from ${docFrom} (--doc)`, async () => {
  JSON.parse(fs.readFileSync(docFrom, 'utf8'));
  fs.copyFileSync(docFrom, docFile);
}) : await step('GET /v1/openapi.json from the stack', async () => {
  const res = await fetch(`${base}/v1/openapi.json`);
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  const text = await res.text();
  JSON.parse(text);
  fs.writeFileSync(docFile, text);
});
if (!served) process.exit(1);

// ---- 2. generation ---------------------------------------------------------------------------

// Generators may print warnings for what they cannot map; any warning fails
// the step, so that a schema a generator chokes on shows up here.
function captureWarnings() {
  const seen = [];
  const orig = { warn: console.warn, error: console.error };
  console.warn = (...a) => { seen.push(a.join(' ')); orig.warn(...a); };
  console.error = (...a) => { seen.push(a.join(' ')); orig.error(...a); };
  return () => {
    Object.assign(console, orig);
    return seen;
  };
}

await step('generate: openapi-typescript (types for openapi-fetch)', async () => {
  const { default: openapiTS, astToString } = await import(path.join(modules, 'openapi-typescript', 'dist', 'index.mjs'));
  const done = captureWarnings();
  // defaultNonNullable (on by default) would make every optional request
  // field that has a `default` (billRunType of a customer payment, the
  // booleans of a provider) required in the generated request types.
  const ast = await openapiTS(new URL(`file://${docFile}`), { defaultNonNullable: false });
  const warnings = done();
  const dir = path.join(out, 'gen', 'openapi-typescript');
  fs.mkdirSync(dir, { recursive: true });
  // .ts, not .d.ts: the compile below checks it (skipLibCheck skips .d.ts).
  fs.writeFileSync(path.join(dir, 'pay-api.ts'), astToString(ast));
  if (warnings.length) throw new Error(`openapi-typescript warned:\n${warnings.join('\n')}`);
});

await step('generate: @hey-api/openapi-ts (SDK + zod validators)', async () => {
  const { createClient } = await import(path.join(modules, '@hey-api', 'openapi-ts', 'dist', 'index.mjs'));
  const done = captureWarnings();
  await createClient({
    input: docFile,
    output: { path: path.join(out, 'gen', 'hey-api'), importFileExtension: '.js' },
    plugins: [
      '@hey-api/client-fetch',
      '@hey-api/typescript',
      'zod',
      // validator: every request and response goes through its zod schema.
      { name: '@hey-api/sdk', validator: true },
    ],
    logs: { level: 'warn', file: false },
  });
  const warnings = done();
  if (warnings.length) throw new Error(`@hey-api/openapi-ts warned:\n${warnings.join('\n')}`);
});

// ---- 3. tsc --strict -----------------------------------------------------------------------

fs.cpSync(path.join(here, 'src'), path.join(out, 'src'), { recursive: true });
fs.writeFileSync(path.join(out, 'tsconfig.json'), JSON.stringify({
  compilerOptions: {
    strict: true,
    noUncheckedIndexedAccess: false,
    target: 'ES2022',
    lib: ['ES2022', 'DOM'],
    module: 'NodeNext',
    moduleResolution: 'NodeNext',
    types: ['node'],
    outDir: 'js',
    rootDir: '.',
    skipLibCheck: true, // node_modules' .d.ts; every generated file is .ts and checked
    noEmitOnError: true,
    pretty: false,
  },
  include: ['gen/**/*.ts', 'src/**/*.ts'],
}, null, 2) + '\n');

const compiled = await step('tsc --strict (generated clients + scripts)', async () => {
  execFileSync(process.execPath, [path.join(modules, 'typescript', 'bin', 'tsc'), '-p', path.join(out, 'tsconfig.json')],
    { stdio: 'inherit', cwd: out });
});

// ---- 4. the scripts ------------------------------------------------------------------------------

if (compiled) {
  for (const script of ['fetch_client', 'hey_client']) {
    await step(`run src/${script}.ts`, async () => {
      const r = spawnSync(process.execPath, [path.join(out, 'js', 'src', `${script}.js`)],
        { stdio: 'inherit', env: { ...process.env, PAY_OPENAPI_DOC: docFile } });
      if (r.status !== 0) throw new Error(`${script} exited with ${r.status ?? r.signal}`);
    });
  }
}

console.log(failures === 0 ? 'all client steps passed' : `${failures} client step(s) failed`);
process.exit(failures === 0 ? 0 : 1);
