"""Gantry: GAN image models and face models, exported to ONNX and served by Triton.

Layers, top to bottom (``import-linter`` contracts in ``pyproject.toml`` keep them so):
``gantry.cli`` → ``gateway`` | ``workers`` → ``gantry.serving`` → ``gantry.core``. Everything
that needs PyTorch lives in ``trainer``, which imports ``gantry.core`` only.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gantry")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"
