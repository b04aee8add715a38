"""Before and after: the national-day mix against two versions of the code, in one run on one machine.

    .venv/bin/python bench/compare.py                       # base f6c9d98 against the working tree, 3 rounds each
    .venv/bin/python bench/compare.py --base-ref f6c9d98 --rounds 3 --seconds 60 --people 10000

The base version is a git worktree (created at --base-dir if missing, and checked to be at --base-ref);
the new one is this tree's src/. Both servers run with this .venv's interpreter, each with its own
source first on PYTHONPATH (national_day checks which yibao the server imports and records its file and
commit), on a region database built once per version by that version (their schemas may differ) and
reused between its rounds. The counters (client processes) are this tree's `yibao.client` for both
versions: the same HIS speaking the same national interface, at the same client cost. Rounds alternate
in ABBA order (base new, new base, base new…) so drift of
the shared machine falls on both; the result is the median round of each version, not the best, with
every round's figures and the machine's state (load, CPU model, other processes' CPU share).

Writes bench/results/compare-<base>-<new>.json and .md and prints the markdown table for
docs/performance.md. At the defaults it takes about 10 minutes. Loopback only; it stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from national_day import DATA, RESULTS, ROOT, machine, run, secrets_cache  # noqa: E402

# (label, how to read it from one national_day result, higher is better)
FIGURES: list[tuple[str, str, bool]] = [
    ("outpatient visits/s", "outpatient_settlements_per_s", True),
    ("outpatient visits per server CPU-second", "outpatient_visits_per_server_cpu_s", True),
    ("all settlements/s", "all_settlements_per_s", True),
    ("2207 p50 ms, client-side", "client_latency_ms.2207.p50", False),
    ("2207 p99 ms, client-side", "client_latency_ms.2207.p99", False),
    ("2207 mean ms, server-side", "server_latency_ms.2207.mean", False),
    ("2207 p99 ms, server-side (bucket-estimated)", "server_latency_ms.2207.p99", False),
    ("1101 mean ms, server-side", "server_latency_ms.1101.mean", False),
    ("outpatient share of completed visits %", "mix.outpatient.achieved_percent", True),
    ("server CPU %", "server_cpu_percent_mean", False),
    ("other processes' CPU % of the machine", "machine_state.other_processes_percent", False),
    ("refused calls", "refused_calls", False),
]


def pick(result: dict[str, Any], path: str) -> float | None:
    value: Any = result
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value if isinstance(value, int | float) else None


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def base_tree(ref: str, where: Path) -> Path:
    """A worktree of ``ref`` at ``where`` (made if missing), refusing one at another commit."""
    wanted = git("rev-parse", ref)
    if not where.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), wanted], check=True)
    found = git("rev-parse", "HEAD", cwd=where)
    if found != wanted:
        raise SystemExit(f"{where} is at {found[:10]}, not {ref} ({wanted[:10]}): remove it or pass another --base-dir")
    if git("status", "--porcelain", "--untracked-files=no", cwd=where):
        raise SystemExit(f"{where} has uncommitted changes: it would not be {ref}")
    return where / "src"


def summarise(rounds: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per figure: the median round (the typical, not the best), and the lowest and highest for the spread."""
    out = {}
    for label, path, _ in FIGURES:
        values = [v for v in (pick(r, path) for r in rounds) if v is not None]
        if values:
            out[label] = {"median": round(statistics.median(values), 2), "min": round(min(values), 2), "max": round(max(values), 2),
                          "rounds": values}
    return out


THROUGHPUT = ("outpatient visits/s", "outpatient visits per server CPU-second", "all settlements/s")  # must not fall
BUSY_PERCENT = 10.0  # other processes above this share of the machine in any round: the rounds measured the neighbours too


def verdict(versions: dict[str, Any], change: dict[str, float], label: str) -> str:
    b, n = versions["base"]["typical"][label], versions["new"]["typical"][label]
    if change[label] >= 0:
        return "not lower"
    overlap = " (the rounds' ranges overlap: within this machine's noise)" if n["max"] >= b["min"] else ""
    return f"lower by {-change[label]}%{overlap}"


def table(result: dict[str, Any], source: str) -> str:
    base, new = result["versions"]["base"], result["versions"]["new"]
    head = (f"| figure (median of {result['rounds']} rounds) | base {base['commit']} | range | new {new['label']} | range | "
            "change | source |")
    rows = [head, "|---|---|---|---|---|---|---|"]
    for label, _, _ in FIGURES:
        b, n = base["typical"].get(label), new["typical"].get(label)
        if not b or not n:
            continue
        change = result["change_percent"].get(label)
        rows.append(f"| {label} | {b['median']} | {b['min']}–{b['max']} | {n['median']} | {n['min']}–{n['max']} | "
                    f"{'' if change is None else f'{change:+}%'} | `{source}` |")
    state = result["machine_state"]
    return "\n".join([
        f"**national-day mix, {result['people']:,} people, {result['clients']} client processes, {result['seconds']} s a round, "
        f"{result['rounds']} rounds per version in ABBA order, {result['machine']} ({result['cpu_model']}), {result['when']}**", "",
        *rows, "",
        f"machine: load average {state['load_average_before'][0]} before and {state['load_average_after'][0]} after the whole run; "
        f"other processes used {state['other_processes_percent_median']}% of the machine in the median round "
        f"({state['other_processes_percent_min']}–{state['other_processes_percent_max']}%); latency client-side is the counters' "
        "wall clock, server-side is the gateway's histogram in /metrics."
        + (f" **The machine was busy** (other processes above {BUSY_PERCENT:g}% in some round): re-run on a quiet machine before "
           "drawing a verdict." if result["machine_busy"] else ""), ""])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-ref", default="f6c9d98", help="the code before (a commit)")
    parser.add_argument("--base-dir", default="/tmp/yibao-base", help="its git worktree (created if missing)")
    parser.add_argument("--new-src", default=str(ROOT / "src"), help="the code after (default: this working tree)")
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds per version")
    parser.add_argument("--seconds", type=int, default=60, help="measured seconds a round")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--reuse-regions", action="store_true", help="keep the region databases of an earlier compare (same schemas)")
    parser.add_argument("--port", type=int, default=18768)
    parser.add_argument("--tag", default="", help="suffix for the result file")
    args = parser.parse_args()

    sources = {"base": str(base_tree(args.base_ref, Path(args.base_dir))), "new": str(Path(args.new_src).resolve())}
    regions = {version: DATA / f"compare-{version}-{args.people}.db" for version in sources}
    if not args.reuse_regions:
        for path in regions.values():
            for stale in path.parent.glob(path.name + "*"):
                stale.unlink()
            secrets_cache(f"sqlite:///{path}").unlink(missing_ok=True)
    order = [v for i in range(args.rounds) for v in (("base", "new") if i % 2 == 0 else ("new", "base"))]
    load_before, started = os.getloadavg(), time.time()
    rounds: dict[str, list[dict[str, Any]]] = {"base": [], "new": []}
    for i, version in enumerate(order, 1):
        print(f"round {i}/{len(order)}: {version} ({sources[version]}) …", flush=True)
        ns = argparse.Namespace(people=args.people, seconds=args.seconds, clients=args.clients, workers=1, pool=600, activated=200,
                                client_nice=10, tag="", database_url=None, region_file=str(regions[version]), server_src=sources[version],
                                synchronous="", port=args.port)
        result = run(ns)
        result["round"], result["version"] = i, version
        rounds[version].append(result)
        print(f"  {result['outpatient_settlements_per_s']} outpatient visits/s, {result['outpatient_visits_per_server_cpu_s']} per server "
              f"CPU-second, other processes {result['machine_state']['other_processes_percent']}% of the machine", flush=True)
    versions = {}
    for version, results in rounds.items():
        code = results[0]["server_code"]
        label = code["commit"] + (f"+{code['uncommitted_src_files']} uncommitted" if code["uncommitted_src_files"] else "")
        versions[version] = {"source": sources[version], "yibao_file": code["yibao_file"], "commit": code["commit"],
                             "uncommitted_src_files": code["uncommitted_src_files"], "label": label, "typical": summarise(results)}
    change = {}
    for label, _, _ in FIGURES:
        b, n = versions["base"]["typical"].get(label), versions["new"]["typical"].get(label)
        if b and n and b["median"]:
            change[label] = round((n["median"] - b["median"]) / b["median"] * 100, 1)
    others = [r["machine_state"]["other_processes_percent"] for rs in rounds.values() for r in rs]
    state = machine()
    result = {
        "what": "bench/compare.py: the national-day mix (bench/national_day.py) against two code versions, alternating rounds",
        "when": time.strftime("%Y-%m-%d %H:%M"), "minutes": round((time.time() - started) / 60, 1), "machine": state["description"],
        "cpu_model": state["cpu_model"], "people": args.people, "clients": args.clients, "seconds": args.seconds, "rounds": args.rounds,
        "order": order, "typical": "median round per version (not the best)",
        "machine_state": {"load_average_before": [round(x, 2) for x in load_before],
                          "load_average_after": [round(x, 2) for x in os.getloadavg()],
                          "other_processes_percent_median": round(statistics.median(others), 1), "other_processes_percent_min": min(others),
                          "other_processes_percent_max": max(others)},
        "versions": versions, "change_percent": change,
        "verdict": {label: verdict(versions, change, label) for label in THROUGHPUT if label in change},
        "machine_busy": max(others) > BUSY_PERCENT,
        "round_results": rounds,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    new_label = versions["new"]["commit"] + ("-dirty" if versions["new"]["uncommitted_src_files"] else "")
    stem = RESULTS / f"compare-{versions['base']['commit']}-{new_label}{'-' + args.tag if args.tag else ''}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    text = table(result, f"bench/results/{stem.name}.json")  # the table names the JSON, whose figures the test checks
    stem.with_suffix(".md").write_text(text)
    print(text)
    print(f"verdict: {result['verdict']}")
    print(f"written: {stem}.json and .md")


if __name__ == "__main__":
    main()
