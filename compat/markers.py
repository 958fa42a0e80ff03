"""The skip markers smolagents' tests import from ``tests/utils/markers.py`` (not in its sdist)."""

import importlib.util
import os

import pytest

require_run_all = pytest.mark.skipif(not os.getenv("RUN_ALL"), reason="needs RUN_ALL (network, real services)")
require_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="needs torch")
require_soundfile = pytest.mark.skipif(importlib.util.find_spec("soundfile") is None, reason="needs soundfile")
