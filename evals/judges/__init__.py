"""Judges turn images (and sometimes text) into scores. Each loads from a Hub id or a local folder.

Heavy imports (torch, timm, transformers) happen inside the judge modules, so importing this package
is cheap.
"""

from evals.judges.base import JudgeInfo, JudgeLoadError
from evals.judges.registry import DEMO_RANDOM_TAGGER, build_judge, ensure_demo_random_tagger

__all__ = ["DEMO_RANDOM_TAGGER", "JudgeInfo", "JudgeLoadError", "build_judge", "ensure_demo_random_tagger"]
