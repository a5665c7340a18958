"""What an id may look like, defined once.

Checkpoint, LoRA, judge and suite ids become file names, adapter names, cache keys and URL parts, so
they stay boring: 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit,
and never '..'. A Hub repository id is `org/name`, optionally pinned with `@revision`.

Each caller words its own refusal (a config error names the file, a user message names the field);
the rule itself lives only here.
"""

from __future__ import annotations

import re
from typing import Any

ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
ID_RULE = "1-64 lowercase letters, digits, '.', '_' or '-'"
HUB_REPO_ID = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}(@[A-Za-z0-9._/-]{1,100})?$")


def is_id(value: Any) -> bool:
    return isinstance(value, str) and bool(ID_PATTERN.match(value)) and ".." not in value


def is_hub_repo_id(value: Any) -> bool:
    """`org/name` or `org/name@revision`; '..' and '--' (the Hub cache's folder separator) refused."""
    return (isinstance(value, str) and bool(HUB_REPO_ID.match(value))
            and ".." not in value and "--" not in value)
