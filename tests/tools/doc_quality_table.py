"""The quality table in docs/algorithms/activation.md must be what docs_activation_quality prints
today: same methods, same columns, every figure within 2 % (it is printed to 3 significant
digits, and the last one may move with the compiler's FMA contraction).

usage: doc_quality_table.py DOCS_ACTIVATION_QUALITY_BINARY docs/algorithms/activation.md
"""
import subprocess
import sys


def rows(lines):
    """{method: [figures]} from markdown table rows, plus the header row."""
    out, header = {}, None
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 9:
            continue
        if cells[0] == "method":
            header = cells
        elif not cells[0].startswith("---"):
            try:
                out[cells[0]] = [float(c) for c in cells[1:]]
            except ValueError:
                continue
    return header, out


def main():
    binary, doc = sys.argv[1:3]
    printed = subprocess.run([binary], capture_output=True, text=True, check=True).stdout.splitlines()
    want_header, want = rows(printed)
    with open(doc, encoding="utf-8") as f:
        text = f.read().splitlines()
    start = next(i for i, line in enumerate(text) if line.startswith("| method |") and "8-bit" in line)
    end = next((i for i in range(start + 1, len(text)) if not text[i].startswith("|")), len(text))
    got_header, got = rows(text[start:end])
    if got_header != want_header or set(got) != set(want):
        sys.exit(f"doc_quality_table: the table's rows or columns differ from the program's:\n"
                 f"doc {got_header} {sorted(got)}\nprogram {want_header} {sorted(want)}")
    bad = [(m, want_header[k + 1], got[m][k], want[m][k]) for m in want for k in range(8)
           if abs(got[m][k] - want[m][k]) > 0.02 * abs(want[m][k])]
    if bad:
        sys.exit("doc_quality_table: figures differ (method, column, doc, program):\n" +
                 "\n".join(map(str, bad)) + "\nregenerate the table with the program")
    print(f"doc_quality_table: {len(want)} methods x 8 columns match")


if __name__ == "__main__":
    main()
