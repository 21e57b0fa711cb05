"""The exception family of the bot core."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.problems import Problem


class BotError(Exception):
    """Base of every error raised by `bot`."""


class ScriptError(BotError):
    """A script did not load: `problems` lists every error found, with its position."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        first = self.problems[0].render() if self.problems else "invalid script"
        more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        super().__init__(first + more)


class StateError(BotError):
    """A stored conversation state cannot be used with the script given to `step()`."""


class ConcurrentUpdateError(BotError):
    """A conversation changed under us: its version moved between load and save."""


class UnknownConversationError(BotError):
    """No conversation (or lead) has that id."""


class DeliveryError(BotError):
    """A sender could not deliver an outbox item.

    `permanent` failures are not retried (a 400); `unreachable` ones (the prospect blocked the
    bot) also end the conversation's sending; `suppress` ones (the prospect opted out with the
    provider, e.g. Twilio's 21610) do that and put the address on the suppression list; `held`
    ones (outside a channel's messaging window) keep the message, unsent, marked with the
    reason. Others are retried, after `retry_after` seconds when the provider said so (then the
    whole channel waits), else with backoff.
    """

    def __init__(
        self,
        reason: str,
        *,
        permanent: bool = False,
        retry_after: float | None = None,
        unreachable: bool = False,
        suppress: bool = False,
        held: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.unreachable = unreachable or suppress  # stop writing to them
        self.suppress = suppress
        self.held = held
        self.permanent = permanent or self.unreachable or held
        self.retry_after = retry_after


class UnknownScriptError(BotError):
    """No script (or no stored version of it) has that id."""


class ReferenceTakenError(BotError):
    """The reference code chosen for a new lead belongs to another lead: choose another."""


class ConversationExistsError(BotError):
    """The lead already has a conversation in that chat (opened meanwhile by another worker)."""
