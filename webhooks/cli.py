"""The `leadbot` command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from bot.compiled import CompiledScript
from bot.loader import parse_yaml_model
from bot.mermaid import to_mermaid
from bot.problems import Severity
from bot.scripttest import CaseFile, run_case
from bot.spec import json_schema
from webhooks.channels.telegram_commands import telegram
from webhooks.chat import play
from webhooks.cli_data import db, export
from webhooks.cli_deliveries import deliveries
from webhooks.cli_leads import lead
from webhooks.cli_rep_telegram import link_telegram
from webhooks.cli_reps import apikey, rep
from webhooks.cli_stats import forecast_command, stats
from webhooks.scriptfiles import conversation_test_files, read_script, script_files
from webhooks.serve import serve

EXISTING = click.Path(exists=True, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="leadbot")
def main() -> None:
    """leadbot: follow up on ad leads in chat."""


@main.command()
@click.argument("paths", nargs=-1, required=True, type=EXISTING)
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
def check(paths: tuple[Path, ...], strict: bool) -> None:
    """Check scripts (files, or folders of *.yaml) and report every problem."""
    files = script_files(paths)
    errors = warnings = 0
    for path in files:
        result = read_script(path)
        for problem in result.problems:
            click.echo(problem.render(), err=problem.severity is Severity.ERROR)
        errors += len(result.errors)
        warnings += len(result.warnings)
    click.echo(f"{len(files)} script(s) checked: {errors} error(s), {warnings} warning(s)")
    if errors or (strict and warnings) or not files:
        sys.exit(1)


@main.command()
def schema() -> None:
    """Print the JSON Schema of the script format (for editors' YAML language server)."""
    click.echo(json.dumps(json_schema(), indent=2, ensure_ascii=False))


@main.command()
@click.argument("script", type=EXISTING)
def graph(script: Path) -> None:
    """Print the flow of a script as a Mermaid flowchart."""
    click.echo(to_mermaid(_load_or_exit(script)), nl=False)


@main.command()
@click.argument("script", type=EXISTING)
@click.option("--prefill", multiple=True, metavar="KEY=VALUE", help="A lead field from the form.")
@click.option("--lang", default=None, help="The prospect's language, e.g. es.")
@click.option("--timezone", default=None, help="The prospect's time zone, e.g. Europe/Madrid.")
def chat(script: Path, prefill: tuple[str, ...], lang: str | None, timezone: str | None) -> None:
    """Play a script in the terminal (or from lines piped to stdin)."""
    lead: dict[str, str] = {}
    for item in prefill:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--prefill")
        lead[key.strip()] = value
    compiled = _load_or_exit(script)
    unknown = sorted(set(lead) - set(compiled.spec.lead_field_types()))
    if unknown:
        raise click.BadParameter(
            f"the script declares no lead field {', '.join(unknown)}", param_hint="--prefill"
        )
    play(compiled, lead=lead, language=lang, timezone=timezone, stdin=sys.stdin, echo=click.echo)


@main.command("test")
@click.argument("paths", nargs=-1, required=True, type=EXISTING)
@click.option("-v", "--verbose", is_flag=True, help="Print every conversation.")
def test_command(paths: tuple[Path, ...], verbose: bool) -> None:
    """Run conversation tests (*.test.yaml) found in PATHS."""
    files = conversation_test_files(paths)
    if not files:
        click.echo("no conversation tests (*.test.yaml) found", err=True)
        sys.exit(1)
    passed = failed = 0
    for path in files:
        suite, problems = parse_yaml_model(path.read_text(encoding="utf-8"), CaseFile, str(path))
        if suite is None:
            for problem in problems:
                click.echo(problem.render(), err=True)
            failed += 1
            continue
        loaded = read_script(path.parent / suite.script)
        if loaded.script is None:
            click.echo(f"{path}: script {suite.script} does not load:", err=True)
            for problem in loaded.errors:
                click.echo("  " + problem.render(), err=True)
            failed += 1
            continue
        for case in suite.tests:
            result = run_case(loaded.script, case, suite.now)
            if result.passed:
                passed += 1
                click.echo(f"PASS {path}: {case.name}")
            else:
                failed += 1
                click.echo(f"FAIL {path}: {case.name}")
                for failure in result.failures:
                    click.echo("  " + failure.replace("\n", "\n  "))
            if verbose or not result.passed:
                click.echo("  conversation:\n" + "\n".join(result.transcript))
    click.echo(f"conversation tests: {passed} passed, {failed} failed")
    if failed:
        sys.exit(1)


main.add_command(db)
main.add_command(serve)
main.add_command(export)
main.add_command(telegram)
rep.add_command(link_telegram)  # leadbot rep link-telegram
main.add_command(rep)
main.add_command(apikey)
main.add_command(deliveries)
main.add_command(lead)
main.add_command(stats)
main.add_command(forecast_command)


def _load_or_exit(path: Path) -> CompiledScript:
    result = read_script(path)
    for problem in result.problems:
        click.echo(problem.render(), err=True)
    if result.script is None:
        sys.exit(1)
    return result.script
