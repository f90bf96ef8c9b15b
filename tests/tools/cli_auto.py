"""`amctq auto` (issue 22) on the bundled Fashion CNN with made-up evaluators.

usage: cli_auto.py AMCTQ MODEL.onnx CALIB.npy WORKDIR
Checks: with an evaluator that scores 80 whenever layer /11/Conv is quantized (90 otherwise), the
fallback search keeps /11/Conv float and exactly the layers ranked above it, and says so in
ranking_info.json, auto_search.json and final_config.json; `amctq quantize --config
final_config.json` reproduces record.json and the fake-quant model byte for byte; a second run
takes the same evaluations in the same order; --max-evals stops early; a command that exits
non-zero or prints no number is one line naming the command; an evaluator no candidate satisfies
exits 1 and writes no model; an --out that cannot be written fails before any evaluation; nuq and
mixed run and their final configs reproduce too.
"""
import json
import os
import shlex
import subprocess
import sys

from tally import Tally

tally = Tally("cli_auto")
check = tally.check
HERE = os.path.dirname(os.path.abspath(__file__))


def tool(*args):
    return subprocess.run([AMCTQ, *args], capture_output=True, text=True)


def fake_cmd(sensitive, log):
    if os.path.exists(log):  # the log of an earlier run in the same work folder
        os.remove(log)
    return f"{shlex.quote(sys.executable)} {shlex.quote(os.path.join(HERE, 'auto_fake_eval.py'))} {{model}} " \
           f"{shlex.quote(sensitive)} {shlex.quote(log)}"


def run_auto(out, eval_cmd, *extra):
    return tool("auto", "--model", MODEL, "--calib", CALIB, "--eval-cmd", eval_cmd, "--max-drop", "0.5",
                "--out", out, "--quiet", *extra)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def reproduces(out, what):
    again = os.path.join(out, "again")
    r = tool("quantize", "--model", MODEL, "--calib", CALIB, "--config", os.path.join(out, "final_config.json"),
             "--out", again, "--quiet")
    check(r.returncode == 0, f"{what}: quantize --config final_config.json failed: {r.stderr.strip()}")
    check(read(os.path.join(out, "record.json")) == read(os.path.join(again, "record.json")),
          f"{what}: quantize --config final_config.json gives another record.json")
    fq = STEM + "_fake_quant_model.onnx"
    check(read(os.path.join(out, fq), "rb") == read(os.path.join(again, fq), "rb"),
          f"{what}: quantize --config final_config.json gives another fake-quant model")


def main():
    global AMCTQ, MODEL, CALIB, STEM
    AMCTQ, MODEL, CALIB, work = sys.argv[1:5]
    STEM = os.path.splitext(os.path.basename(MODEL))[0]
    os.makedirs(work, exist_ok=True)

    r = tool("auto", "--help")
    check(r.returncode == 0 and "--eval-cmd" in r.stdout and "--max-drop" in r.stdout, "auto --help")
    r = tool("auto", "--model", MODEL, "--calib", CALIB, "--eval-cmd", "true", "--max-drop", "0.5")
    check(r.returncode == 2 and "{model}" in r.stderr, f"an --eval-cmd without {{model}}: {r.returncode} {r.stderr}")

    # An --out that cannot be written fails before any evaluation.
    blocker, log = os.path.join(work, "a_file"), os.path.join(work, "blocked.log")
    open(blocker, "w").close()
    r = run_auto(os.path.join(blocker, "out"), fake_cmd("none", log))
    check(r.returncode == 1 and "is not a folder" in r.stderr and not os.path.exists(log),
          f"an --out under a file: expected exit 1 before any evaluation, got {r.returncode}: {r.stderr.strip()}")

    # A known sensitive layer.
    sensitive = "/11/Conv"
    outs, logs = [], []
    for run in (1, 2):
        out, log = os.path.join(work, f"fallback{run}"), os.path.join(work, f"fallback{run}.log")
        r = run_auto(out, fake_cmd(sensitive, log))
        check(r.returncode == 0, f"fallback run {run} failed: {r.stderr.strip()}")
        outs.append(out)
        logs.append(log)
    check("evaluations:" in r.stdout and "final metric: 90" in r.stdout, f"the summary: {r.stdout}")
    rank = json.load(open(os.path.join(outs[0], "ranking_info.json")))
    layers = rank["layers"]
    check([l["rank"] for l in layers] == list(range(len(layers))), "ranking_info.json is not in rank order")
    check(all(layers[i]["similarity"] <= layers[i + 1]["similarity"] for i in range(len(layers) - 1)),
          "ranking_info.json: similarities not ascending")
    at = [l["name"] for l in layers].index(sensitive)
    want = ["float" if i <= at else "quantized" for i in range(len(layers))]
    check([l["chosen"] for l in layers] == want,
          f"{sensitive} ranked {at}: expected the first {at + 1} layers float, got {[l['chosen'] for l in layers]}")
    cfg = json.load(open(os.path.join(outs[0], "final_config.json")))
    check(cfg["layers"][sensitive].get("quant_enable") is False, f"final_config.json: {sensitive} not disabled")
    search = json.load(open(os.path.join(outs[0], "auto_search.json")))
    check(search["original_metric"] == 90 and search["final_metric"] == 90, f"auto_search.json metrics: {search}")
    check(search["steps"][0]["phase"] == "all-compressed" and not search["steps"][0]["satisfied"],
          "the first step is not the all-quantized model, failing")
    check(search["evaluations"] == len(read(logs[0]).splitlines()),
          f"auto_search.json counts {search['evaluations']} evaluations, the evaluator ran "
          f"{len(read(logs[0]).splitlines())} times")
    # Deterministic: the same evaluations in the same order, the same ranking.
    check(read(logs[0]) == read(logs[1]), "two runs evaluated different models or in another order")
    for name in ("ranking_info.json", "auto_search.json", "final_config.json", "record.json"):
        check(read(os.path.join(outs[0], name)) == read(os.path.join(outs[1], name)), f"two runs wrote another {name}")
    reproduces(outs[0], "fallback")

    # --max-evals: at most K evaluations of quantized models.
    out, log = os.path.join(work, "budget"), os.path.join(work, "budget.log")
    r = run_auto(out, fake_cmd(sensitive, log), "--max-evals", "2")
    calls = len(read(log).splitlines())
    check(calls <= 3, f"--max-evals 2 ran the evaluator {calls} times (float model + 2 allowed)")
    check((r.returncode == 0 and "--max-evals reached" in r.stdout) or
          (r.returncode == 1 and "--max-evals 2" in r.stderr), f"--max-evals 2: {r.returncode} {r.stdout} {r.stderr}")

    # Failing commands: one line naming the command.
    for cmd, part in ((f"echo boom; exit 3 # {{model}}", "exited with status 3"),
                      ("echo hello {model}", "must print the metric")):
        out = os.path.join(work, "failing")
        r = run_auto(out, cmd)
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 1 and len(lines) == 1 and part in lines[0] and cmd.split(";")[0].split(" {")[0] in lines[0],
              f"--eval-cmd {cmd!r}: expected exit 1 and one line with {part!r} naming the command, got "
              f"{r.returncode}: {r.stderr.strip()}")
        check(not os.path.exists(os.path.join(out, STEM + "_fake_quant_model.onnx")), f"{cmd!r} left a model")

    # Nothing satisfies (the float model scores 100, every other model 0): exit 1, no model.
    out = os.path.join(work, "unsatisfiable")
    cmd = f"case {{model}} in {shlex.quote(MODEL)}) echo 100;; *) echo 0;; esac"
    r = run_auto(out, cmd)
    check(r.returncode == 1 and "even with every searched layer at 'float'" in r.stderr,
          f"an unsatisfiable evaluator: {r.returncode} {r.stderr.strip()}")
    check(not os.path.exists(out) or not any(f.endswith(".onnx") for f in os.listdir(out)),
          "an unsatisfiable search wrote a model")

    # nuq and mixed: an evaluator that always scores 90 takes the most compressed level everywhere.
    for strategy, level in (("nuq", "nuq16"), ("mixed", "w4a4")):
        out, log = os.path.join(work, strategy), os.path.join(work, strategy + ".log")
        r = run_auto(out, fake_cmd("none", log), "--strategy", strategy)
        check(r.returncode == 0, f"--strategy {strategy} failed: {r.stderr.strip()}")
        rank = json.load(open(os.path.join(out, "ranking_info.json")))
        check(all(l["chosen"] == level for l in rank["layers"]), f"--strategy {strategy}: {rank['layers']}")
        check(len(read(log).splitlines()) == 2, f"--strategy {strategy}: expected 2 evaluations")
        reproduces(out, strategy)
    tally.done()


if __name__ == "__main__":
    main()
