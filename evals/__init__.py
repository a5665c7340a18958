"""Sakuga Hub evals: judges, prompt suites, character recognition and multilingual fidelity runs.

`python -m evals run|report|suites`; see `evals/README.md`. Importing this package is cheap: torch,
timm and transformers are imported by the judge modules when a judge is built.
"""
