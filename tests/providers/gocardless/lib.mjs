// Shared by the GoCardless tests in Node: the stack's env file and the
// pass/fail count ("N passed, N failed", exit status 1 on any failure).
import fs from 'node:fs';

export const env = Object.fromEntries(fs.readFileSync(process.env.PAY_STACK_ENV, 'utf8').split('\n')
  .filter((l) => l.includes('=')).map((l) => {
    const i = l.indexOf('=');
    return [l.slice(0, i), l.slice(i + 1).replace(/^'(.*)'$/, '$1')];
  }));

const count = { passed: 0, failed: 0 };
export function check(cond, what, detail) {
  if (cond) count.passed += 1;
  else {
    count.failed += 1;
    console.log(`FAIL: ${what}${detail !== undefined ? ` -- ${JSON.stringify(detail)}` : ''}`);
  }
  return cond;
}

export function finish() {
  console.log(`${count.passed} passed, ${count.failed} failed`);
  process.exit(count.failed === 0 && count.passed > 0 ? 0 : 1);
}
