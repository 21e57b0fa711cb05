"""The direction of imports: `bot` is the pure core, `storage` never reaches up into `webhooks`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

# What each package may not import: the layers above it, and for the core, anything that does
# I/O (the network, databases, files). The service, dispatcher and scheduler in `bot` do their
# I/O through the ports they are given (bot/ports.py), so asyncio is allowed there.
FORBIDDEN = {
    "bot": {
        "webhooks",
        "storage",
        "aiohttp",
        "sqlalchemy",
        "sqlmodel",
        "telegram",
        "twilio",
        "socket",
        "pathlib",
        "httpx",
        "requests",
        "aiosqlite",
        "asyncpg",
    },
    "storage": {"webhooks", "aiohttp", "telegram", "twilio"},
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_what_its_layer_allows(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    offenders = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in files
        for module in sorted(imported_modules(path))
        if module.split(".")[0] in FORBIDDEN[package]
    ]
    assert offenders == []


def test_bot_never_opens_files() -> None:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("open", "eval", "exec")
        ]
        assert calls == [], f"{path.relative_to(ROOT)} calls {[c.func.id for c in calls]}"  # type: ignore[attr-defined]


def test_the_checker_itself_catches_a_violation(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from webhooks.cli import main\nimport storage.tables\n")
    assert imported_modules(module) == {"webhooks.cli", "storage.tables"}


def test_the_engine_modules_are_synchronous() -> None:
    orchestration = {
        "service.py",
        "dispatcher.py",
        "crm_delivery.py",
        "locks.py",
        "scheduler.py",
        "wakeups.py",
    }
    for path in sorted((ROOT / "bot").rglob("*.py")):
        if path.name in orchestration:
            continue
        assert "asyncio" not in {m.split(".")[0] for m in imported_modules(path)}, path.name
