"""Errors the hub shows to users.

`HubInputError` is for bad input: the message is short, specific and safe to show in the page
(the UI turns it into `gr.Error`). Anything else is a bug or an infrastructure failure.
"""


class HubInputError(ValueError):
    """A request the hub refuses, with a message meant for the user."""


class EngineError(RuntimeError):
    """A pipeline call failed (out of memory, bad weights, ...); the engine stays usable."""
