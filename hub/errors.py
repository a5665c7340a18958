"""Errors the hub shows to users.

`HubInputError` is for bad input: the message is short, specific and safe to show in the page
(the UI turns it into `gr.Error`). It is `core.errors.InputError` under the hub's name, so a
refusal raised by the database layer (a forged vote, a duplicate submission) is the same class.
Anything else is a bug or an infrastructure failure.
"""

from core.errors import InputError as HubInputError

__all__ = ["EngineError", "HubInputError", "JobCancelled", "OverBudget"]


class EngineError(RuntimeError):
    """A pipeline call failed (out of memory, bad weights, ...); the engine stays usable."""


class JobCancelled(EngineError):
    """The job was stopped between denoising steps: its caller left or pressed Stop, or the watchdog
    stopped a call past its hard limit. Nothing of it was kept."""


class OverBudget(HubInputError):
    """The request's estimated time on this device is over the limit; the message gives the estimate."""
