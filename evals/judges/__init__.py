"""Judges turn images (and sometimes text) into scores. Each loads from a Hub id or a local folder.

Heavy imports (torch, timm, transformers) happen inside the judge modules, so importing them is cheap.
`evals.judges.base` says what a judge is; `evals.judges.registry` finds kinds by name and builds judges
from config entries (`build_judge`). This file imports neither, so a suite kind can use a judge's types
without loading the registry, which reads the suites.
"""
