"""TensorRT plans for GPU hosts (``gantry models build --tensorrt``).

Needs the ``tensorrt`` Python package and a CUDA GPU; the CPU stack never imports this.
The plan has one optimisation profile sized for the card's tile batch, FP16 enabled.
"""

from __future__ import annotations

from pathlib import Path

from gantry.core.cards import ModelCard
from trainer.export.triton_config import optimal_side


class TensorRTUnavailableError(RuntimeError):
    """No TensorRT or no GPU on this host."""


def build_plan(onnx_path: Path, card: ModelCard, plan_path: Path, *, fp16: bool = True) -> Path:
    """Compile ``onnx_path`` into a serialized TensorRT engine at ``plan_path``."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailableError(
            "--tensorrt needs a GPU host with the tensorrt package (pip install tensorrt)"
        ) from exc
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_path.read_bytes()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    (inp,) = card.inputs
    channels = inp.dims[0]
    tile = optimal_side(card)
    profile = builder.create_optimization_profile()
    profile.set_shape(
        inp.name,
        (1, channels, 16, 16),
        (card.max_batch_size, channels, tile, tile),
        (card.max_batch_size, channels, tile, tile),
    )
    config.add_optimization_profile(profile)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise RuntimeError(f"TensorRT failed to build an engine for {card.name}")
    plan_path.write_bytes(bytes(engine))
    return plan_path
