#!/usr/bin/env python
"""A coordinator's everyday commands, timed as the machine's floor: ``python -c "import sqlalchemy.orm"``.

    .venv/bin/python benchmarks/cli.py                 # 9 interleaved rounds on a fresh demo database
    .venv/bin/python benchmarks/cli.py --rounds 15 --json

It builds the demo database (``followup demo``) in a temporary folder, then runs
each command as its own process, round after round, every command once per round
between two runs of the floor, one before and one after (interleaved, so a busy
machine weighs on all of them alike). Each run is measured in CPU time (user + system of the child, from
``os.wait4``), which other processes on the machine do not inflate. A command
that writes (``record``, ``claim``) starts from a copy of the demo database made
before it, untimed, so every round does the same work. Core and the plugins are
compiled to bytecode first, as pip compiles an installed package, and the commands
keep their per-user cache (core/cache.py) in the temporary folder: a first,
untimed round fills it, as any coordinator's first command of the day does.

One line per command: the median CPU seconds, the floor's median in the same
run and the ratio: the median of the rounds' own ratios, each round's command
against the mean of that round's two floors (the floor itself moves by a quarter
between runs on a virtual machine: a ratio of medians from different moments
moved with it). The last line is ``ratios: cli=X`` (the worst command). The goal
(issue 13) is at most 1.5x for every command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOAL = 1.5
FLOOR = ("floor", [sys.executable, "-c", "import sqlalchemy.orm"])
AFTER = "floor after"  # the floor measured again at the end of each round


@dataclass
class Command:
    name: str
    args: list[str]
    writes: bool = False


def followup() -> list[str]:
    exe = Path(sys.executable).with_name("followup")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "core.cli.main"]


def run(argv: list[str], env: dict[str, str]) -> float:
    """CPU seconds (user + system) of one child process; its output is discarded, a failure raises."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {err.decode(errors='replace')[-500:]}")
    return usage.ru_utime + usage.ru_stime


def demo(folder: Path, env: dict[str, str]) -> dict[str, str]:
    """The demo database, and a task and patient of today's worklist to run the commands on."""
    subprocess.run([*followup(), "demo", "--fresh"], env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    out = subprocess.run([*followup(), "--as", "zhang.li", "worklist", "--format", "json"], env=env, cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    line = json.loads(out)[0]
    return {"site": line["site"], "patient": line["patient_id"], "task": str(line["task_ids"][0])}


def commands(pick: dict[str, str]) -> list[Command]:
    return [
        Command("worklist", ["worklist", "--site", pick["site"]]),
        Command("tasks", ["tasks", "--patient", pick["patient"], "--format", "json"]),
        Command("script", ["script", pick["task"]]),
        Command("record", ["record", pick["task"], "--outcome", "no_answer"], writes=True),
        Command("claim", ["claim", "--count", "5"], writes=True),
        Command("report", ["report", "month"]),
    ]


def compile_bytecode() -> None:
    """Compile core and the plugins as pip compiles an installed package: an editable checkout run with
    PYTHONDONTWRITEBYTECODE (as on these machines) would otherwise compile every module on every run."""
    import compileall

    for folder in ("core", "plugins"):
        compileall.compile_dir(ROOT / folder, quiet=1)


def measure(rounds: int, folder: Path) -> dict[str, list[float]]:
    db = folder / "demo.db"
    cache = folder / "cache"
    cache.mkdir(mode=0o700)
    env = {**os.environ, "FOLLOWUP_CONFIG": str(ROOT / "config" / "chain.yaml"),
           "FOLLOWUP_DATABASE_URL": f"sqlite:///{db}", "FOLLOWUP_USER": "zhang.li",
           "FOLLOWUP_CACHE_DIR": str(cache)}  # a cache of its own: filled by the untimed first round
    env.pop("FOLLOWUP_NOW", None)
    compile_bytecode()
    pick = demo(folder, env)
    pristine = folder / "pristine.db"
    shutil.copyfile(db, pristine)
    cmds = commands(pick)
    times: dict[str, list[float]] = {FLOOR[0]: [], AFTER: [], **{c.name: [] for c in cmds}}
    for round_ in range(rounds + 1):  # round 0 warms the cache up, untimed: as a coordinator's second command
        floor = run(FLOOR[1], env)
        if round_:
            times[FLOOR[0]].append(floor)
        for cmd in cmds:
            if cmd.writes:
                for suffix in ("-wal", "-shm"):
                    Path(f"{db}{suffix}").unlink(missing_ok=True)
                shutil.copyfile(pristine, db)
            spent = run([*followup(), *cmd.args], env)
            if round_:
                times[cmd.name].append(spent)
        floor = run(FLOOR[1], env)
        if round_:
            times[AFTER].append(floor)
    return times


def report(times: dict[str, list[float]]) -> tuple[list[str], dict[str, float]]:
    # each round's floor: the mean of the runs before and after its commands (a run of one round only: before)
    floors = [(a + b) / 2 for a, b in zip(times[FLOOR[0]], times.get(AFTER) or times[FLOOR[0]], strict=True)]
    floor = statistics.median(floors)
    lines = [f"floor: python -c 'import sqlalchemy.orm' {floor:.3f} s CPU (median of {len(floors)} rounds, "
             f"each the mean of a run before and after its commands; the runs "
             f"{min(times[FLOOR[0]] + times.get(AFTER, [])):.3f}-{max(times[FLOOR[0]] + times.get(AFTER, [])):.3f} s)"]
    ratios = {}
    for name, values in times.items():
        if name in (FLOOR[0], AFTER):
            continue
        median = statistics.median(values)
        ratios[name] = statistics.median(v / f for v, f in zip(values, floors, strict=True))
        mark = "ok" if ratios[name] <= GOAL else f"over the {GOAL}x goal"
        lines.append(f"cli {name:<9} {median:.3f} s CPU vs floor {floor:.3f} s = {ratios[name]:.2f}x  ({mark}; "
                     "the median of the rounds' ratios)")
    return lines, ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=9, help="interleaved rounds (default 9)")
    parser.add_argument("--json", action="store_true", help="also print every measurement as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="followup-cli-") as tmp:
        times = measure(args.rounds, Path(tmp))
    lines, ratios = report(times)
    print("\n".join(lines))
    if args.json:
        print(json.dumps(times))
    print(f"ratios: cli={max(ratios.values()):.2f}")
    return 0 if max(ratios.values()) <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
