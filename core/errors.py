"""The one error class for bad input, at the bottom of the import graph, and `without_paths`, which
keeps server paths out of anything a user reads.

`InputError` carries a short, specific message that is safe to show a user. `leaderboards` raises it
for bad votes, submissions and queue requests; `hub.errors.HubInputError` is the same class under the
hub's name, so the UI turns every refusal (from any layer) into one kind of page message.
"""

import re


class InputError(ValueError):
    """A request refused with a message meant for the user."""


# An absolute path (POSIX, home or a Windows drive) not inside a URL: its folders go, its base name stays.
_ABSOLUTE_PATH = re.compile(r"(?<![\w/.~])(?:~|[A-Za-z]:)?[\\/](?:[^\s'\"`()\[\]{}<>,;:\\/]+[\\/])+(?=[^\\/]|$)")


def first_line(err: BaseException, limit: int = 200) -> str:
    """An error as one short line for a message: its first line, cut to `limit`, else its class name
    (library errors can carry pages of traceback text)."""
    text = str(err).strip()
    return text.splitlines()[0][:limit] if text else type(err).__name__


def without_paths(text: str) -> str:
    """`text` with every absolute path cut to its base name ('/srv/data/x/unet/a.bin' -> 'a.bin'): no
    page, table or message shows where the server keeps its files."""
    return _ABSOLUTE_PATH.sub("", str(text))
