"""The one error class for bad input, at the bottom of the import graph.

`InputError` carries a short, specific message that is safe to show a user. `leaderboards` raises it
for bad votes, submissions and queue requests; `hub.errors.HubInputError` is the same class under the
hub's name, so the UI turns every refusal (from any layer) into one kind of page message.
"""


class InputError(ValueError):
    """A request refused with a message meant for the user."""
