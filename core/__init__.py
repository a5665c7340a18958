"""The shared kernel: what every layer agrees on and nothing of ours below it.

- `core.errors`: `InputError` (a refusal safe to show a user) and `without_paths`.
- `core.keys`: canonical JSON, hashes and adapter strings (cache keys and board grouping).
- `core.ids`: what an id and a Hub repository id may look like.

`core` imports only the standard library, so `hub`, `evals` and `leaderboards` can all use it without
importing each other.
"""
