"""What every intake parser produces, and the one error family they raise."""

from __future__ import annotations

from bot.records import Submission

__all__ = ["IntakeError", "Submission"]


class IntakeError(Exception):
    """A delivery we refuse; `status` and `code` become the HTTP answer, `message` names the
    problem for the sender (never echoing secrets)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
