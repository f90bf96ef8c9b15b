#!/usr/bin/env python3
"""Proves that amctq_onnx_node_tests fails when the pinned list of unsupported tests is wrong.

From the checked-in list it makes one with the first pinned test left out, a test that runs
added, and a name the data does not hold; the runner must fail and name each of the three
lines (the line to add, and the lines to remove). Then it lets the runner rewrite a copy of the
list (--write-unsupported) and checks that the rewritten list passes.

usage: node_tests_selftest.py RUNNER DATA_DIR EXCLUSIONS UNSUPPORTED WORK_DIR
"""
import os
import subprocess
import sys


def names(path):
    out = []
    with open(path) as f:
        for line in f:
            words = line.split("#", 1)[0].split()
            if words:
                out.append(words[0])
    return out


def run(runner, data, exclusions, unsupported, *extra):
    p = subprocess.run([runner, data, "--exclusions", exclusions, "--unsupported", unsupported, *extra],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return p.returncode, p.stdout


def main():
    runner, data, exclusions, unsupported, work = sys.argv[1:6]
    os.makedirs(work, exist_ok=True)
    pinned = names(unsupported)
    excluded = set(names(exclusions))
    cases = sorted(d for d in os.listdir(data) if os.path.exists(os.path.join(data, d, "model.onnx")))
    runs = [d for d in cases if d not in excluded and d not in set(pinned)]
    if not pinned or not runs:
        print(f"selftest: needs a pinned test and a test that runs ({len(pinned)} pinned, {len(runs)} run)")
        return 1
    dropped, added, bogus = pinned[0], runs[0], "test_no_such_node_test"

    with open(unsupported) as f:
        lines = f.readlines()
    wrong = os.path.join(work, "wrong_unsupported.txt")
    with open(wrong, "w") as f:
        for line in lines:
            if line.split("#", 1)[0].split() != [dropped]:
                f.write(line)
        f.write(f"{added}  # planted: this test runs\n{bogus}  # planted: no such test\n")
    rc, out = run(runner, data, exclusions, wrong)
    problems = []
    if rc != 1:
        problems.append(f"the runner exited {rc} on a wrong list, not 1")
    expected = [
        f"FAIL {dropped}: unsupported and not pinned",       # the failure
        f"\n{dropped}  # ",                                   # and the line to add
        f"FAIL {added}: pinned as unsupported (planted: this test runs) but now",
        f"{wrong}:{len(lines)}: {added}  # planted",  # the line to remove, with its number
        f"{wrong}:{len(lines) + 1}: {bogus}",
    ]
    for e in expected:
        if e not in out:
            problems.append(f"output lacks {e!r}")

    rewritten = os.path.join(work, "rewritten_unsupported.txt")
    with open(rewritten, "w") as f:
        f.writelines(lines[:3])  # a leading comment to keep
    rc2, out2 = run(runner, data, exclusions, wrong, "--write-unsupported", rewritten)
    rc3, out3 = run(runner, data, exclusions, rewritten)
    with open(rewritten) as f:
        head = f.readlines()[:3]
    if rc2 != 0 or rc3 != 0:
        problems.append(f"the rewritten list does not pass (write: exit {rc2}, check: exit {rc3}):\n{out3[-2000:]}")
    if head != lines[:3]:
        problems.append("the rewrite did not keep the leading comment")
    if dropped not in names(rewritten) or added in names(rewritten) or bogus in names(rewritten):
        problems.append("the rewritten list does not undo the planted errors")

    if problems:
        print("\n".join(problems))
        print("--- runner output on the wrong list ---\n" + out[-4000:])
        return 1
    print(f"selftest: the runner failed on a list without {dropped}, with {added} and {bogus}, named each line; "
          f"its rewrite of the list passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
