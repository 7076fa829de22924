"""Where the shared real data lies, relative to this checkout."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SET5 = DATA / "superres" / "Set5"
REAL_INPUTS = DATA / "superres" / "realesrgan_inputs"
