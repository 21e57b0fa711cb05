"""`python -m bench`: run every benchmark, one after another, and rewrite bench/README.md.

Each benchmark runs as its own `python -m bench.NAME` process at the size of the chosen mode
(`quick`, the default, fits the whole run in a few minutes on a 2-core machine; `full` takes
each module's own defaults; `smoke` is the smallest, for the test that runs this command end to
end) and prints its figures beside its in-run baseline. Its output replaces the generated
part of bench/README.md, between the markers; the prose around them stays. A benchmark that
fails or runs out of time is reported as such and the others still run; a missing optional
module (bench.analytics) is reported as skipped.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

README = Path(__file__).parent / "README.md"
START = "<!-- bench:start (written by `python -m bench`; edit outside the markers) -->"
END = "<!-- bench:end -->"
POSTGRES_VARIABLE = "LEADBOT_TEST_POSTGRES_URL"
MODES = ("smoke", "quick", "full")


@dataclass(frozen=True)
class Bench:
    module: str  # bench.<module>
    title: str
    quick: tuple[str, ...] = ()
    smoke: tuple[str, ...] = ()
    postgres: bool = False  # takes --postgres URL
    needs_postgres: bool = False  # measures nothing without it: skipped
    optional: bool = False  # may not exist (written separately): skipped, not failed

    def arguments(self, mode: str, postgres: str | None) -> list[str]:
        chosen = {"smoke": self.smoke, "quick": self.quick, "full": ()}[mode]
        extra = ["--postgres", postgres] if self.postgres and postgres else []
        return [*chosen, *extra]


BENCHES = (
    Bench("engine", "Engine: step() and loading a script"),
    Bench(
        "intake",
        "Lead intake over HTTP (`POST /leads`)",
        quick=("--requests", "2000", "--rounds", "1"),
        smoke=("--requests", "100", "--rounds", "1"),
    ),
    Bench(
        "turns",
        "Conversation turns, per database (service level)",
        smoke=("--conversations", "10"),
        postgres=True,
    ),
    Bench(
        "telegram",
        "Telegram turns, and the python-telegram-bot ConversationHandler peer",
        quick=("--conversations", "2", "--rounds", "2"),
        smoke=("--concurrency", "3", "--conversations", "1", "--rounds", "1"),
    ),
    Bench(
        "speed_to_lead",
        "Speed to lead: `POST /leads` to the first SMS",
        quick=("--seconds", "5"),
        smoke=("--rate", "20", "--seconds", "0.5"),
    ),
    Bench(
        "dispatcher",
        "Dispatcher throughput",
        quick=("--rows", "2000"),
        smoke=("--rows", "100"),
        postgres=True,
    ),
    Bench(
        "memory",
        "Memory per 10,000 live conversations",
        smoke=("--conversations", "300"),
    ),
    Bench(
        "export",
        "Export memory",
        quick=("--leads", "50000"),
        smoke=("--leads", "200"),
    ),
    Bench(
        "analytics",
        "Analytics query times (1,000,000 leads on PostgreSQL)",
        smoke=("--leads", "2000"),
        postgres=True,
        needs_postgres=True,
        optional=True,
    ),
)


@dataclass(frozen=True)
class Outcome:
    bench: Bench
    status: str  # "ok", "failed (exit N)", "timed out after N s", "skipped: why"
    output: str
    seconds: float
    command: str


def _exists(module: str) -> bool:
    return importlib.util.find_spec(f"bench.{module}") is not None


def run(bench: Bench, mode: str, postgres: str | None, timeout: float) -> Outcome:
    arguments = bench.arguments(mode, postgres)
    shown = " ".join(["python", "-m", f"bench.{bench.module}", *arguments])
    shown = shown.replace(postgres, "URL") if postgres else shown
    if bench.optional and not _exists(bench.module):
        return Outcome(bench, f"skipped: bench/{bench.module}.py is not there", "", 0.0, shown)
    if bench.needs_postgres and not postgres:
        return Outcome(bench, f"skipped: needs --postgres or {POSTGRES_VARIABLE}", "", 0.0, shown)
    if bench.optional:
        # A module written separately may name its own sizes: BENCH_ARGUMENTS = {"quick": [...]}.
        sizes = getattr(importlib.import_module(f"bench.{bench.module}"), "BENCH_ARGUMENTS", None)
        if sizes is not None:
            arguments = [*sizes.get(mode, []), *bench.arguments("full", postgres)]
        shown = " ".join(["python", "-m", f"bench.{bench.module}", *arguments])
        shown = shown.replace(postgres, "URL") if postgres else shown
    environment = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    if postgres:
        environment[POSTGRES_VARIABLE] = postgres
    print(f"== {shown}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        child = subprocess.run(
            [sys.executable, "-m", f"bench.{bench.module}", *arguments],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        partial = expired.stdout if isinstance(expired.stdout, str) else ""
        return Outcome(
            bench, f"timed out after {timeout:g} s", partial, time.perf_counter() - started, shown
        )
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        tail = "\n".join(child.stderr.strip().splitlines()[-15:])
        return Outcome(
            bench, f"failed (exit {child.returncode})", f"{child.stdout}\n{tail}", seconds, shown
        )
    return Outcome(bench, "ok", child.stdout, seconds, shown)


def _machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), CPython {platform.python_version()}"


def section(outcomes: list[Outcome], mode: str, began: datetime, seconds: float, load: str) -> str:
    lines = [
        START,
        "## Latest figures",
        "",
        f"`python -m bench{'' if mode == 'quick' else ' --mode ' + mode}`, {began:%Y-%m-%d %H:%M} "
        f"UTC, {_machine()}; load average {load} before the run; the whole command took "
        f"{seconds:.0f} s. Sizes are the `{mode}` ones (smaller than each module's own default, "
        "so that the run fits in minutes); other work on the machine moves the absolute "
        "figures, the ratio to the baseline measured in the same run much less.",
        "",
        "| benchmark | status | seconds | command |",
        "| --- | --- | --- | --- |",
        *(f"| {o.bench.title} | {o.status} | {o.seconds:.0f} | `{o.command}` |" for o in outcomes),
    ]
    for outcome in outcomes:
        lines += ["", f"### {outcome.bench.title}", ""]
        if outcome.status != "ok":
            lines += [f"**{outcome.status}**", ""]
        if outcome.output.strip():
            lines += _paragraphs(outcome.output.strip())
    lines += ["", END]
    return "\n".join(lines)


def _paragraphs(output: str) -> list[str]:
    """The benchmark's lines, with a blank line where a table starts or ends (Markdown needs
    one between a table and the text around it)."""
    lines: list[str] = []
    for line in output.splitlines():
        table = line.startswith("|")
        if lines and lines[-1] and lines[-1].startswith("|") != table:
            lines.append("")
        lines.append(line)
    return lines


def rewrite(readme: Path, generated: str) -> None:
    """Replace what lies between the markers; the first time, put it after the introduction."""
    text = readme.read_text(encoding="utf-8")
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + generated + after
    else:
        cut = text.find("\n## ")
        cut = len(text) if cut < 0 else cut + 1
        text = text[:cut] + generated + "\n\n" + text[cut:]
    readme.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="quick")
    parser.add_argument("--postgres", default=os.environ.get(POSTGRES_VARIABLE), help="URL")
    parser.add_argument("--only", nargs="+", choices=[b.module for b in BENCHES])
    parser.add_argument("--readme", type=Path, default=README, help="the file to rewrite")
    parser.add_argument("--no-write", action="store_true", help="print, leave README alone")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per benchmark")
    arguments = parser.parse_args()
    began = datetime.now(UTC)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    started = time.perf_counter()
    outcomes = [
        run(bench, arguments.mode, arguments.postgres, arguments.timeout)
        for bench in BENCHES
        if arguments.only is None or bench.module in arguments.only
    ]
    generated = section(outcomes, arguments.mode, began, time.perf_counter() - started, load)
    print(generated)
    if not arguments.no_write:
        rewrite(arguments.readme, generated)
        print(f"\nwrote {arguments.readme}", file=sys.stderr)
    failed = [o for o in outcomes if o.status != "ok" and not o.status.startswith("skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
