"""Python stubs for protos/gantry/v1/*.proto, generated at build time into gantry/v1/.

`make` runs :func:`generate`; processes call :func:`ensure_generated` before importing
``gantry.v1`` so an editable checkout without a build step still works. The generated files
are never edited nor committed.
"""

from __future__ import annotations

from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[2]
PROTO_ROOT = SOURCE_ROOT / "protos"
OUTPUT_ROOT = SOURCE_ROOT  # protos/gantry/v1/x.proto → gantry/v1/x_pb2.py (package gantry.v1)


def proto_files() -> list[Path]:
    """Every .proto under protos/gantry/."""
    return sorted((PROTO_ROOT / "gantry").rglob("*.proto"))


def _outputs(proto: Path) -> list[Path]:
    rel = proto.relative_to(PROTO_ROOT).with_suffix("")
    base = OUTPUT_ROOT / rel.parent
    return [
        base / f"{rel.name}_pb2.py",
        base / f"{rel.name}_pb2_grpc.py",
        base / f"{rel.name}_pb2.pyi",
    ]


def generate() -> list[Path]:
    """Run protoc (grpcio-tools) on every proto; returns the generated files."""
    import grpc_tools
    from grpc_tools import protoc

    include = Path(grpc_tools.__file__).parent / "_proto"
    written: list[Path] = []
    for proto in proto_files():
        args = [
            "protoc",
            f"-I{PROTO_ROOT}",
            f"-I{include}",
            f"--python_out={OUTPUT_ROOT}",
            f"--pyi_out={OUTPUT_ROOT}",
            f"--grpc_python_out={OUTPUT_ROOT}",
            str(proto),
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed on {proto}")
        written += _outputs(proto)
    return written


def ensure_generated() -> None:
    """Generate the stubs if any is missing or older than its .proto."""
    for proto in proto_files():
        outputs = _outputs(proto)
        if any(not o.exists() or o.stat().st_mtime < proto.stat().st_mtime for o in outputs):
            generate()
            return


if __name__ == "__main__":
    for path in generate():
        print(path)
