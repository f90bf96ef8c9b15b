"""`amctq report`: the calibration report page.

usage: cli_report.py AMCTQ MODEL.onnx CALIB.npy WORKDIR
Checks: the page is written (and replaces an old one) with one summary row per quantized layer,
ordered by output SQNR (worst first), one section per layer with its input histogram (an SVG
with each method's range and the chosen grid) and, for layers with weights, the per-channel
weight plot; it is self-contained (no script, no link or URL to fetch); headless Chromium
(Debian chromium) renders it to a screenshot that is not blank; bad usage exits 2 and writes nothing.
"""
import os
import re
import shutil
import subprocess
import sys

from tally import Tally

tally = Tally("cli_report")
check = tally.check


def main():
    amctq, model, calib, work = sys.argv[1:5]
    os.makedirs(work, exist_ok=True)
    out = os.path.join(work, "report.html")
    with open(out, "w") as f:
        f.write("old")
    r = subprocess.run([amctq, "report", "--model", model, "--calib", calib, "--out", out], capture_output=True, text=True)
    check(r.returncode == 0, f"amctq report failed: {r.stderr.strip()}")
    page = open(out, encoding="utf-8").read()
    check(page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>"), "not a whole HTML page")
    for banned in ("<script", "http://", "https://", "src=", "@import", "url("):
        check(banned not in page, f"the page is not self-contained: it holds {banned!r}")
    summary = page.split('<table id="summary">')[1].split("</table>")[0]
    rows = re.findall(r'<tr><td><a href="#l(\d+)">([^<]+)</a></td><td>([^<]+)</td><td class="n">([^<]+)</td>', summary)
    check(len(rows) == 7, f"{len(rows)} summary rows, expected the 7 layers")
    sqnr = [float(v) for *_, v in rows]
    check(sqnr == sorted(sqnr), f"the summary is not ordered by SQNR, worst first: {sqnr}")
    check(all(5.0 < v < 80.0 for v in sqnr), f"implausible output SQNRs: {sqnr}")
    sections = page.count("<section ")
    check(sections == 7, f"{sections} layer sections")
    hist = page.count("each method's range (coloured)")
    check(hist == 7, f"{hist} input histograms, expected one per layer")
    check(page.count("weights per output channel") == 6, "the six layers with weights lack their weight plot")
    for m in ("minmax", "percentile", "entropy", "mse", "ifmr", "hfmg", "pot_diffs"):
        check(f"<td>{m}</td>" in page, f"method {m} has no range in the page")

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    check(browser is not None, "chromium is not installed (Debian chromium; scripts/setup.sh installs it)")
    shot = os.path.join(work, "report.png")
    if os.path.exists(shot):
        os.remove(shot)
    r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--screenshot={shot}", "--window-size=900,1400", "file://" + os.path.abspath(out)],
                       capture_output=True, text=True, timeout=120)
    check(os.path.exists(shot), f"chromium wrote no screenshot (exit {r.returncode}): {r.stderr.strip()[-300:]}")
    from PIL import Image
    img = Image.open(shot).convert("L")
    pixels = list(img.getdata())
    dark = sum(p < 200 for p in pixels) / len(pixels)
    coloured = len(set(Image.open(shot).convert("RGB").getdata()))
    check(dark > 0.01 and coloured > 20, f"the screenshot looks blank: {dark:.4f} of pixels dark, {coloured} colours")
    print(f"cli_report: screenshot {img.size}, {dark:.3f} of pixels dark, {coloured} colours")

    bad = os.path.join(work, "bad.html")
    r = subprocess.run([amctq, "report", "--model", model, "--out", bad], capture_output=True, text=True)
    check(r.returncode == 2 and "--calib is required" in r.stderr and not os.path.exists(bad),
          f"report without --calib: exit {r.returncode}, {r.stderr.strip()}")
    tally.done()


if __name__ == "__main__":
    main()
