"""Draw a script's flow as a Mermaid flowchart (questions, conditions, outcomes)."""

from __future__ import annotations

from bot.compiled import CompiledScript, pick_language
from bot.graph import END, adjacency, edges, reachable

_LABEL_LIMIT = 48


def _escape(text: str) -> str:
    text = " ".join(text.split())
    if len(text) > _LABEL_LIMIT:
        text = text[: _LABEL_LIMIT - 1] + "…"
    return text.replace('"', "#quot;").replace("|", "#124;")


def _node_id(script: CompiledScript, name: str) -> str:
    # Prefixes keep ids such as "end" or "start" from clashing with Mermaid's keywords.
    if name == END:
        return "choose_outcome"
    return ("q_" if name in script.questions else "o_") + name


def to_mermaid(script: CompiledScript) -> str:
    spec = script.spec
    language = spec.default_language
    lines = ["flowchart TD", "    start([start])"]
    for question in spec.questions:
        prompt = _escape(pick_language(question.prompt, language, language))
        shape = ('[["', '"]]') if question.type == "handoff" else ('["', '"]')
        node = _node_id(script, question.id)
        lines.append(f"    {node}{shape[0]}{question.id} ({question.type}): {prompt}{shape[1]}")
    flow = edges(spec)
    ends_in_order = END in reachable(spec.questions[0].id, adjacency(flow))
    if ends_in_order:
        lines.append('    choose_outcome{{"choose outcome"}}')
    for outcome in spec.outcomes:
        flags = []
        if outcome.qualified is not None:
            flags.append("qualified" if outcome.qualified else "not qualified")
        if outcome.handoff:
            flags.append("to a rep")
        suffix = f" ({', '.join(flags)})" if flags else ""
        lines.append(f'    {_node_id(script, outcome.id)}(["{outcome.id}{suffix}"])')
    lines.append(f"    start --> {_node_id(script, spec.questions[0].id)}")
    for edge in flow:
        if edge.source == END and not ends_in_order:
            continue
        arrow = "-.->" if edge.label in ("max attempts", "declined") else "-->"
        label = f'|"{_escape(edge.label)}"|' if edge.label else ""
        source, target = _node_id(script, edge.source), _node_id(script, edge.target)
        lines.append(f"    {source} {arrow}{label} {target}")
    return "\n".join(lines) + "\n"
