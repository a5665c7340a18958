"""Prompt syntax as the community writes it (AUTOMATIC1111 / Forge), one parser for every family.

- `(text)` multiplies the attention of `text` by 1.1, `[text]` divides it by 1.1, `(text:1.3)` sets a
  factor; brackets nest and multiply. Unbalanced brackets behave as A1111's do (an unclosed `(` still
  applies to the end of the prompt; a stray `)` is literal).
- `\\(`, `\\)`, `\\[`, `\\]` and `\\\\` are literal characters (Danbooru tags such as `ganyu \\(genshin impact\\)`).
- `BREAK` (upper case, a word of its own) starts a new 75-token chunk on CLIP families.
- `<lora:id:weight>` (or `<lora:id>`, weight 1) asks for a registered LoRA; `split_lora_tags` takes the
  tags out of the text before anything is encoded.

`parse_attention` returns A1111's `parse_prompt_attention` output exactly (fragments and weights, runs of
equal weight merged). CLIP families apply the weights to token embeddings (`hub.families.clip_text`);
every other family gets `plain_text`, the prompt with the syntax removed.
"""

from __future__ import annotations

import re

BREAK = "BREAK"
BREAK_WEIGHT = -1.0  # the fragment ("BREAK", -1.0) marks a chunk break, as in A1111
MIN_WEIGHT, MAX_WEIGHT = -2.0, 4.0
ROUND, SQUARE = 1.1, 1 / 1.1

# One token of the syntax per match: escapes, brackets, a `:weight)` closing, plain text, a lone `:`.
_TOKEN = re.compile(
    r"""
    \\[()\[\]\\]      # escaped bracket or backslash
  | \\                # a lone backslash
  | \(  | \[
  | :\s*([+-]?[.\d]+)\s*\)   # the weight that closes a round bracket
  | \)  | ]
  | [^\\()\[\]:]+     # plain text
  | :
    """,
    re.VERBOSE,
)
_BREAK_SPLIT = re.compile(r"\s*\bBREAK\b\s*")
# A1111's extra-network tags: `<kind:arguments>`.
_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
_LORA_KINDS = ("lora", "lyco")


class PromptSyntaxError(ValueError):
    """A prompt whose syntax the hub refuses (a weight out of range, an unknown extra network)."""


def parse_attention(text: str) -> list[tuple[str, float]]:
    """`text` as (fragment, weight) pairs, A1111's `parse_prompt_attention` semantics."""
    fragments: list[list] = []
    open_round: list[int] = []
    open_square: list[int] = []

    def multiply_from(start: int, factor: float) -> None:
        for item in fragments[start:]:
            item[1] *= factor

    for match in _TOKEN.finditer(text):
        token, weight = match.group(0), match.group(1)
        if token.startswith("\\"):
            fragments.append([token[1:], 1.0])
        elif token == "(":
            open_round.append(len(fragments))
        elif token == "[":
            open_square.append(len(fragments))
        elif weight is not None and open_round:
            try:
                factor = float(weight)
            except ValueError:  # `(a:1.2.3)`: A1111 itself crashes here
                raise PromptSyntaxError(f"{token.lstrip(':').rstrip(')').strip()!r} is not a weight: write (text:1.2).") from None
            multiply_from(open_round.pop(), factor)
        elif token == ")" and open_round:
            multiply_from(open_round.pop(), ROUND)
        elif token == "]" and open_square:
            multiply_from(open_square.pop(), SQUARE)
        else:
            for index, part in enumerate(_BREAK_SPLIT.split(token)):
                if index:
                    fragments.append([BREAK, BREAK_WEIGHT])
                fragments.append([part, 1.0])
    # Brackets left open apply to the end of the prompt.
    for start in open_round:
        multiply_from(start, ROUND)
    for start in open_square:
        multiply_from(start, SQUARE)
    if not fragments:
        fragments = [["", 1.0]]
    merged: list[list] = [fragments[0]]
    for text_part, weight in fragments[1:]:
        if weight == merged[-1][1]:
            merged[-1][0] += text_part
        else:
            merged.append([text_part, weight])
    return [(part, weight) for part, weight in merged]


def is_break(fragment: tuple[str, float]) -> bool:
    return fragment[0] == BREAK and fragment[1] == BREAK_WEIGHT


def check_weights(fragments: list[tuple[str, float]], what: str = "prompt") -> None:
    """Refuse weights outside [MIN_WEIGHT, MAX_WEIGHT] (A1111 takes any number; past these the image is noise)."""
    for part, weight in fragments:
        if is_break((part, weight)) or not part.strip():
            continue
        if not MIN_WEIGHT <= weight <= MAX_WEIGHT:
            shown = part.strip() if len(part.strip()) <= 30 else part.strip()[:27] + "..."
            raise PromptSyntaxError(
                f"The weight of {shown!r} in the {what} is {weight:.3g}; weights must be between "
                f"{MIN_WEIGHT:g} and {MAX_WEIGHT:g}."
            )


def plain_text(text: str) -> str:
    """The prompt with the attention syntax taken out (for families whose encoder takes no weights):
    brackets and weights dropped, escapes resolved, `BREAK` as a comma."""
    parts = [", " if is_break(fragment) else fragment[0] for fragment in parse_attention(text)]
    return re.sub(r"\s*,\s*(,\s*)+", ", ", "".join(parts)).strip()


def has_attention_syntax(text: str) -> bool:
    """Whether parsing changes anything: brackets, weights, escapes or BREAK."""
    return parse_attention(text) != [(text, 1.0)]


def split_lora_tags(text: str) -> tuple[str, tuple[tuple[str, float], ...]]:
    """Take `<lora:id:weight>` tags out of `text`: (the text without them, ((id, weight), ...)).
    Weights that are not numbers and other extra networks (hypernetworks, ...) are refused."""
    found: list[tuple[str, float]] = []

    def take(match: re.Match) -> str:
        kind, arguments = match.group(1), match.group(2)
        if kind.lower() not in _LORA_KINDS:
            raise PromptSyntaxError(f"<{kind}:...> tags are not supported here; only <lora:id:weight>.")
        name, _, rest = arguments.partition(":")
        weight_text = rest.split(":")[0].strip() if rest else "1"
        try:
            weight = float(weight_text)
        except ValueError:
            raise PromptSyntaxError(f"<lora:{name}:{weight_text}>: the weight must be a number.") from None
        found.append((name.strip(), weight))
        return ""

    stripped = _EXTRA_NETWORK.sub(take, text)
    if found:
        # Tags leave their separators behind ("a, <lora:x:1>, b" -> "a, , b"): tidy them.
        stripped = re.sub(r"\s*,\s*(,\s*)+", ", ", stripped)
        stripped = re.sub(r"^[\s,]+|[\s,]+$", "", stripped)
        stripped = re.sub(r"[ \t]{2,}", " ", stripped)
    return stripped, tuple(found)


def lora_tags(loras: tuple[tuple[str, float], ...]) -> str:
    """`<lora:id:w>` tags for a prompt, as A1111 and civitai read them."""
    return " ".join(f"<lora:{name}:{weight:g}>" for name, weight in loras)
