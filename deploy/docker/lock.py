"""Pin the serving images' packages: ``.venv/bin/python -m deploy.docker.lock``.

Resolves the project's base dependencies (what the gateway and inference workers install,
without any extra) with pip's resolver, as of today's package index, and writes them to
``deploy/docker/requirements/serve.txt``. The trainer's list extends it by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "deploy" / "docker" / "requirements" / "serve.txt"
HEADER = """\
# The gateway's and inference workers' Python packages, pinned: the project's base
# dependencies resolved (no torch: the serving path never imports it; tests/deploy check it).
# Regenerate: .venv/bin/python -m deploy.docker.lock
"""


def resolve() -> list[str]:
    """``name==version`` of every package ``pip install .`` would install, but the project."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--ignore-installed",
                "--quiet",
                "--report",
                str(report),
                str(ROOT),
            ],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    pins = {(i["metadata"]["name"].lower(), i["metadata"]["version"]) for i in installs}
    return [f"{name}=={version}" for name, version in sorted(pins) if name != "gantry"]


def main() -> None:
    SERVE.write_text(HEADER + "\n".join(resolve()) + "\n")
    print(SERVE)


if __name__ == "__main__":
    main()
