"""Puts the wheels the GPU session carried (unpacked into $GPU_SESSION_SITE by benchmarks/gpu_session.sh)
*after* the machine's own site-packages: PYTHONPATH would put them in front and hide the machine's torch
and transformers. Python imports this module at start-up when this folder is on PYTHONPATH; it then runs
the machine's own sitecustomize, if it has one, which this module would otherwise shadow."""

import importlib.util
import os
import sys
from importlib.machinery import PathFinder

_here = os.path.dirname(os.path.abspath(__file__))
_site = os.environ.get("GPU_SESSION_SITE")
if _site and _site not in sys.path:
    sys.path.append(_site)

_theirs = PathFinder.find_spec("sitecustomize", [p for p in sys.path if os.path.abspath(p or ".") != _here])
if _theirs is not None and _theirs.loader is not None:
    _module = importlib.util.module_from_spec(_theirs)
    _theirs.loader.exec_module(_module)
