"""Errors a user's input causes: the CLI prints the message and exits 2, never a traceback."""

from __future__ import annotations


class UserError(Exception):
    """Input that cannot be worked with; the message says which input and why."""


class PolicyCheckError(UserError):
    """The pack would not start, its config is wrong, or the plan cannot be read."""
