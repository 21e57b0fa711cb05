"""Message templates and conditions in Jinja2's sandbox, and what names they refer to."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from jinja2 import ChainableUndefined, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

# Names a template or condition may use at the top level.
CONTEXT_NAMES = frozenset({"lead", "answers", "score", "outcome", "value"})

Condition = Callable[[Mapping[str, Any]], bool]


def make_environment() -> SandboxedEnvironment:
    # ChainableUndefined: `answers.budget` before budget is answered renders as "" and compares
    # as false instead of raising, so a condition over an unanswered question is simply false.
    return SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False)


def is_template(text: str) -> bool:
    """Plain texts skip Jinja entirely: most prompts have no placeholders, and speed matters."""
    return "{{" in text or "{%" in text or "{#" in text


@dataclass(frozen=True, slots=True)
class Reference:
    """A name a template uses: `lead.email` is Reference("lead", "email")."""

    root: str
    attribute: str | None


def references_in_template(env: SandboxedEnvironment, source: str) -> list[Reference]:
    """Parse `source` as a template; raise `TemplateError` if it does not compile."""
    return list(_references(env.parse(source)))


def references_in_expression(env: SandboxedEnvironment, source: str) -> list[Reference]:
    """Parse `source` as a condition; raise `TemplateError` if it does not compile."""
    env.compile_expression(source)  # the authoritative check, with Jinja's own message
    tree = env.parse("{{ (" + source + ") }}")
    return list(_references(tree))


def _references(tree: nodes.Node) -> Iterator[Reference]:
    # Loop variables and {% set %} targets are local, not context names.
    local = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    attributed: set[int] = set()
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        target = node.node  # type: ignore[attr-defined]  # both node classes have .node
        if isinstance(target, nodes.Name) and target.name not in local:
            attribute: str | None = None
            if isinstance(node, nodes.Getattr):
                attribute = node.attr
            elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
                attribute = node.arg.value if isinstance(node.arg.value, str) else None
            attributed.add(id(target))
            yield Reference(target.name, attribute)
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in local and id(name) not in attributed:
            yield Reference(name.name, None)


def compile_condition(env: SandboxedEnvironment, source: str) -> Condition:
    expression = env.compile_expression(source)

    def evaluate(context: Mapping[str, Any]) -> bool:
        # Conditions are written by the business and run over prospect data: a type mismatch
        # (comparing text with a number, say) means "does not hold", never a crash.
        try:
            return bool(expression(**context))
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError):
            return False

    return evaluate


_MARKUP = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.DOTALL)


def safe_render(render: Callable[..., str], context: Mapping[str, Any], source: str) -> str:
    """Render; if the data does not fit the template (text compared with a number, say), say
    the text without its placeholders rather than show a prospect raw template markup."""
    try:
        return render(**context)
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError):
        return " ".join(_MARKUP.sub("", source).split())
