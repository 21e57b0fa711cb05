"""The scripts a server plays: the current version of each, and older ones on demand."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta

from bot.compiled import CompiledScript
from bot.errors import UnknownScriptError
from bot.loader import load_script
from bot.ports import ScriptVersions


@dataclass(frozen=True, slots=True)
class LoadedScript:
    script: CompiledScript
    source: str


class ScriptCatalog:
    """Conversations finish on the version they started on; new ones take the current one.

    Old versions come back from storage (their YAML is kept there) and are compiled once; at
    most `keep_old` of them stay in memory.
    """

    def __init__(
        self,
        scripts: Iterable[LoadedScript],
        keep_old: int = 32,
        *,
        handoff_timeout: timedelta | None = None,
    ) -> None:
        # The server's default wait for a rep, for scripts that do not set handoff.timeout.
        self._handoff_timeout = handoff_timeout
        self._current = {
            loaded.script.id: replace(loaded, script=self._with_defaults(loaded.script))
            for loaded in scripts
        }
        self._old: OrderedDict[str, CompiledScript] = OrderedDict()
        self._keep_old = keep_old
        self._lock = threading.Lock()

    def current(self, script_id: str) -> LoadedScript:
        try:
            return self._current[script_id]
        except KeyError:
            raise UnknownScriptError(f"no script with id {script_id!r}") from None

    def ids(self) -> list[str]:
        return sorted(self._current)

    def version(self, script_id: str, version: str, store: ScriptVersions) -> CompiledScript:
        loaded = self._current.get(script_id)
        if loaded is not None and loaded.script.version == version:
            return loaded.script
        with self._lock:  # called from the database's thread as well as the event loop's
            cached = self._old.get(version)
            if cached is not None:
                self._old.move_to_end(version)
                return cached
        source = store.source(version)
        if source is None:
            raise UnknownScriptError(f"script {script_id} version {version} is not stored")
        script = self._with_defaults(load_script(source, f"{script_id}@{version}"))
        with self._lock:
            self._old[version] = script
            if len(self._old) > self._keep_old:
                self._old.popitem(last=False)
        return script

    def _with_defaults(self, script: CompiledScript) -> CompiledScript:
        if self._handoff_timeout is None or script.spec.handoff.timeout is not None:
            return script
        return replace(script, handoff_timeout=self._handoff_timeout)
