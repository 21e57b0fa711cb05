"""`python -m bench`: the one benchmark command runs end to end at its smallest size, and
rewrites only the generated part of bench/README.md."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import BENCHES, END, START, rewrite
from tests.conftest import POSTGRES_URL_VARIABLE, postgres_url

ROOT = Path(__file__).parent.parent


def test_rewriting_replaces_the_generated_part_and_keeps_the_prose(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nIntro.\n\n## Engine\n\nProse.\n")
    rewrite(readme, f"{START}\nfirst\n{END}")
    assert (
        readme.read_text()
        == f"# Benchmarks\n\nIntro.\n\n{START}\nfirst\n{END}\n\n## Engine\n\nProse.\n"
    )
    rewrite(readme, f"{START}\nsecond\n{END}")
    text = readme.read_text()
    assert "first" not in text
    assert text.count(START) == 1
    assert text.endswith(f"{START}\nsecond\n{END}\n\n## Engine\n\nProse.\n")


@pytest.mark.slow
def test_the_smoke_run_measures_every_benchmark_and_rewrites_the_readme(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    original = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
    readme.write_text(original, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADBOT_")}
    command = [sys.executable, "-m", "bench", "--mode", "smoke", "--readme", str(readme)]
    if postgres_url():
        env[POSTGRES_URL_VARIABLE] = str(postgres_url())
    run = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    written = readme.read_text(encoding="utf-8")
    # The prose around the markers is untouched.
    assert written.split(START)[0] == original.split(START)[0]
    assert written.split(END)[1] == original.split(END)[1]
    generated = written.split(START)[1].split(END)[0]
    for bench in BENCHES:
        row = next(line for line in generated.splitlines() if line.startswith(f"| {bench.title} |"))
        status = row.split(" | ")[1]
        assert status == "ok" or (bench.optional and status.startswith("skipped")), row
    assert "| leadbot |" in generated  # figures, beside their baselines
    assert "baseline" in generated
