"""The pure core of leadbot: the script model, its checker and the conversation engine."""

from bot.compiled import CompiledScript
from bot.engine import Transition, step
from bot.errors import BotError, ScriptError, StateError
from bot.loader import LoadResult, load_script, parse_script
from bot.state import ConversationState, Status

__all__ = [
    "BotError",
    "CompiledScript",
    "ConversationState",
    "LoadResult",
    "ScriptError",
    "StateError",
    "Status",
    "Transition",
    "load_script",
    "parse_script",
    "step",
]
