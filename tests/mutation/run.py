#!/usr/bin/env python3
"""Mutation testing: how many planted bugs do the e2e tests catch?

    python3 tests/mutation/run.py [--only NAME ...] [--first] [--keep] [--list]
                                  [--mutants FILE] [--workdir DIR]

Reads the mutants of tests/mutation/mutants.txt (format in its header). Copies
the tree as it is in this checkout (tracked and untracked, not ignored, files)
into a temporary directory, builds pay-api there with cmake, and then for
each mutant in turn: replaces its text in the copy, rebuilds, starts a fresh
stack with tests/stack.sh (the copy's, with tests/fixtures/e2e.json), runs
the mutant's e2e files against it, stops the stack and restores the file. A
mutant is CAUGHT when at least one of its files fails (or times out), and
SURVIVED when all pass. The checkout itself is never written to.

Before any mutant: every text must occur exactly once in its file (else the
run stops: "mutant NAME did not apply"), and the unmutated build must pass
every file named in the list (else the run stops: a failing file would
"catch" every mutant).

Options:
  --only NAME   run only these mutants (repeatable)
  --first       stop a mutant's files at the first one that catches it
                (default: run them all, to see which files catch it)
  --keep        keep the work directory (sources, build, logs)
  --list        print the mutants and exit
  --workdir DIR use DIR (created, must be empty or absent) instead of a
                fresh directory under $TMPDIR
Environment: PAY_WORKERS (stack workers, default that of tests/stack.sh),
PAY_MUTATION_TIMEOUT (seconds per e2e file, default 600).

Exit status: 0 every mutant caught, 1 some survived (or did not build),
2 the run could not be made (a mutant did not apply, the baseline fails).
Not part of ./pay-stack test: about 1-2 minutes per mutant on 2 cores.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.realpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEFAULT_LIST = os.path.join(REPO, "tests", "mutation", "mutants.txt")
TIMEOUT = int(os.environ.get("PAY_MUTATION_TIMEOUT", "600"))


def say(msg):
    print("mutation: " + msg, flush=True)


def die(msg, status=2):
    print("mutation: ERROR: " + msg, file=sys.stderr, flush=True)
    sys.exit(status)


class Mutant:
    def __init__(self, name, where):
        self.name = name
        self.where = where           # "mutants.txt:LINE" for messages
        self.fields = {}

    def get(self, key):
        return self.fields.get(key)


def parse(path):
    mutants, cur = [], None
    keys = {"file", "tests", "why", "find", "replace"}
    with open(path) as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                cur = None
                continue
            m = re.fullmatch(r"\[([A-Za-z0-9-]+)\]", line.strip())
            if m:
                cur = Mutant(m.group(1), "%s:%d" % (os.path.basename(path), no))
                mutants.append(cur)
                continue
            m = re.match(r"([a-z]+)(\+?):(.*)$", line)
            if cur is None or not m or m.group(1) not in keys:
                die("%s:%d: cannot read %r (a [name] line, or key: value)" % (path, no, line))
            key, more, val = m.group(1), m.group(2), m.group(3)
            if val.startswith(" "):
                val = val[1:]
            if more:
                if key not in ("find", "replace") or key not in cur.fields:
                    die("%s:%d: %s+: without %s: before it" % (path, no, key, key))
                cur.fields[key] += "\n" + val
            else:
                if key in cur.fields:
                    die("%s:%d: %s given twice in [%s]" % (path, no, key, cur.name))
                cur.fields[key] = val
    names = set()
    for mu in mutants:
        for k in ("file", "tests", "find", "replace", "why"):
            if k not in mu.fields:
                die("%s [%s]: missing %s:" % (mu.where, mu.name, k))
        if not mu.fields["find"]:
            die("%s [%s]: empty find:" % (mu.where, mu.name))
        if mu.name in names:
            die("%s: mutant name %s used twice" % (mu.where, mu.name))
        names.add(mu.name)
        mu.tests = mu.fields["tests"].split()
        for t in mu.tests:
            if not os.path.exists(os.path.join(REPO, "tests", "e2e", t + ".py")):
                die("%s [%s]: no tests/e2e/%s.py" % (mu.where, mu.name, t))
    return mutants


def copy_tree(dst):
    out = subprocess.check_output(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                                   "--exclude-standard"])
    n = 0
    for rel in out.decode().split("\0"):
        if not rel:
            continue
        src = os.path.join(REPO, rel)
        if not os.path.lexists(src):        # deleted in the work tree
            continue
        d = os.path.join(dst, rel)
        os.makedirs(os.path.dirname(d), exist_ok=True)
        shutil.copy2(src, d, follow_symlinks=False)
        n += 1
    return n


def run(cmd, log, timeout=None, env=None, cwd=None):
    """Runs cmd with its output appended to log; returns (exit status or
    'timeout', seconds)."""
    t0 = time.time()
    with open(log, "ab") as f:
        f.write(("\n$ %s\n" % " ".join(cmd)).encode())
        f.flush()
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                                env=env, cwd=cwd, stdin=subprocess.DEVNULL).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
    return rc, time.time() - t0


class Work:
    def __init__(self, root):
        self.root = root
        self.src = os.path.join(root, "src")
        self.build = os.path.join(root, "build")
        self.stack = os.path.join(root, "stack")
        self.logs = os.path.join(root, "logs")
        os.makedirs(self.logs, exist_ok=True)

    def compile(self, log):
        if not os.path.exists(os.path.join(self.build, "CMakeCache.txt")):
            rc, _ = run(["cmake", "-S", self.src, "-B", self.build,
                         "-DCMAKE_BUILD_TYPE=Release", "-DPAY_WERROR=OFF"], log)
            if rc != 0:
                return False
        rc, _ = run(["cmake", "--build", self.build, "-j2", "--target", "pay-api"], log)
        return rc == 0

    def stack_start(self, log):
        env = dict(os.environ)
        env["PAY_BIN"] = os.path.join(self.build, "pay-api")
        env["PAY_DATA"] = os.path.join(self.src, "tests", "fixtures", "e2e.json")
        rc, _ = run(["bash", os.path.join(self.src, "tests", "stack.sh"), "start", self.stack],
                    log, timeout=300, env=env)
        return rc == 0

    def stack_stop(self, log):
        run(["bash", os.path.join(self.src, "tests", "stack.sh"), "stop", self.stack], log,
            timeout=180)

    def e2e(self, test, log):
        env = {k: v for k, v in os.environ.items() if k != "PAY_RESPONSE_LOG"}
        env["PAY_STACK_ENV"] = os.path.join(self.stack, "env")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        py = os.path.join(self.src, "tests", "e2e", test + ".py")
        return run([sys.executable, py], log, timeout=TIMEOUT, env=env,
                   cwd=os.path.join(self.src, "tests", "e2e"))


def first_failures(log, n=2):
    """The first FAIL lines of the last run in log (evidence of the catch)."""
    with open(log, errors="replace") as f:
        text = f.read()
    text = text[text.rfind("\n$ "):]
    fails = [line.strip() for line in text.splitlines() if line.startswith("FAIL")]
    return [x[:160] for x in fails[:n]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--first", action="store_true")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--mutants", default=DEFAULT_LIST)
    ap.add_argument("--workdir")
    a = ap.parse_args()

    mutants = parse(a.mutants)
    if a.only:
        unknown = set(a.only) - {m.name for m in mutants}
        if unknown:
            die("no such mutant: %s" % ", ".join(sorted(unknown)))
        mutants = [m for m in mutants if m.name in a.only]
    if a.list:
        for m in mutants:
            print("%-36s %-28s %s\n%36s %s" % (m.name, m.get("file"), " ".join(m.tests), "",
                                                m.get("why")))
        return 0
    if not mutants:
        die("no mutants to run")

    # Every mutant must apply to this tree, before anything is built.
    bad = []
    for m in mutants:
        path = os.path.join(REPO, m.get("file"))
        if not os.path.exists(path):
            bad.append("mutant %s did not apply: %s does not exist (%s)" % (m.name, m.get("file"),
                                                                           m.where))
            continue
        with open(path) as f:
            n = f.read().count(m.get("find"))
        if n != 1:
            bad.append("mutant %s did not apply: its find: text occurs %d times in %s, not once"
                       " (%s); update the block" % (m.name, n, m.get("file"), m.where))
    if bad:
        for b in bad:
            print("mutation: ERROR: " + b, file=sys.stderr)
        die("%d of %d mutants did not apply; nothing was run" % (len(bad), len(mutants)))

    if a.workdir:
        root = os.path.realpath(a.workdir)
        if os.path.exists(root) and os.listdir(root):
            die("--workdir %s is not empty" % root)
        os.makedirs(root, exist_ok=True)
    else:
        root = tempfile.mkdtemp(prefix="pay-mutation-")
    w = Work(root)
    say("work directory %s (%s)" % (root, "kept" if a.keep else "removed at the end"))
    say("copied %d files of %s" % (copy_tree(w.src), REPO))
    status = 2
    try:
        status = campaign(w, mutants, a.first)
    finally:
        w.stack_stop(os.path.join(w.logs, "stack.log"))
        if a.keep or status == 2:
            say("logs and sources kept in %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return status


def campaign(w, mutants, first):
    build_log = os.path.join(w.logs, "build.log")
    stack_log = os.path.join(w.logs, "stack.log")
    say("building the unmutated tree (log %s)" % build_log)
    if not w.compile(build_log):
        die("the unmutated tree does not build; see %s" % build_log)

    # Baseline: every named file passes on the unmutated build.
    files = []
    for m in mutants:
        files += [t for t in m.tests if t not in files]
    say("baseline: %s" % " ".join(files))
    if not w.stack_start(stack_log):
        die("the stack did not start; see %s" % stack_log)
    failing = []
    for t in files:
        log = os.path.join(w.logs, "baseline.%s.log" % t)
        rc, secs = w.e2e(t, log)
        say("  baseline %-28s %s (%.0f s)" % (t, "pass" if rc == 0 else "FAIL", secs))
        if rc != 0:
            failing.append("%s (%s)" % (t, log))
    w.stack_stop(stack_log)
    if failing:
        die("the unmutated tree fails %s: fix that first" % ", ".join(failing))

    results = []
    for i, m in enumerate(mutants, 1):
        t0 = time.time()
        say("[%d/%d] %s: %s" % (i, len(mutants), m.name, m.get("why")))
        path = os.path.join(w.src, m.get("file"))
        with open(path) as f:
            original = f.read()
        log = os.path.join(w.logs, "%s.log" % m.name)
        caught, detail = [], []
        try:
            with open(path, "w") as f:
                f.write(original.replace(m.get("find"), m.get("replace"), 1))
            if not w.compile(log):
                results.append((m, "NO BUILD", [], "see %s" % log))
                say("  does not build: see %s" % log)
                continue
            if not w.stack_start(log):
                die("the stack did not start for %s; see %s" % (m.name, log))
            for t in m.tests:
                rc, secs = w.e2e(t, log)
                if rc == 0:
                    say("  %-28s passes: missed it (%.0f s)" % (t, secs))
                    continue
                caught.append(t)
                why = "timed out" if rc == "timeout" else "fails"
                ev = first_failures(log)
                detail += ["%s: %s" % (t, e) for e in ev]
                say("  %-28s %s: caught (%.0f s)%s" % (t, why, secs,
                                                       "".join("\n      " + e for e in ev)))
                if first:
                    break
            w.stack_stop(log)
        finally:
            with open(path, "w") as f:
                f.write(original)
        results.append((m, "CAUGHT" if caught else "SURVIVED", caught, detail))
        say("  -> %s (%.0f s)" % ("caught by " + " ".join(caught) if caught else "SURVIVED",
                                  time.time() - t0))

    print()
    print("%-36s %-9s %s" % ("mutant", "result", "caught by (of the files named)"))
    for m, res, caught, _ in results:
        print("%-36s %-9s %s" % (m.name, res, "%s (%d of %d)" % (" ".join(caught), len(caught),
                                                                   len(m.tests))
                                                  if res == "CAUGHT" else " ".join(m.tests)))
    n_caught = sum(1 for _, res, _, _ in results if res == "CAUGHT")
    n_surv = sum(1 for _, res, _, _ in results if res == "SURVIVED")
    n_nob = sum(1 for _, res, _, _ in results if res == "NO BUILD")
    print("mutation: %d caught, %d survived%s, of %d mutants"
          % (n_caught, n_surv, ", %d did not build" % n_nob if n_nob else "", len(results)))
    return 0 if n_caught == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
