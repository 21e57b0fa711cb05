"""Turn what a prospect typed into a typed answer, one module per question type."""

from bot.answers.result import Parsed, Rejected

__all__ = ["Parsed", "Rejected"]
