"""`config.pbtxt` written from a model card; never edited by hand."""

from __future__ import annotations

from typing import Literal

from gantry.core.cards import ModelCard, TensorSpec, TiledImageSpec

Profile = Literal["cpu", "gpu"]
ModelFormat = Literal["onnx", "tensorrt_plan"]


def _tensor(spec: TensorSpec) -> str:
    dims = ", ".join(str(d) for d in spec.dims)
    return f'  {{ name: "{spec.name}" data_type: {spec.dtype} dims: [ {dims} ] }}'


def optimal_side(card: ModelCard) -> int:
    """The input side TensorRT optimises for: the card's tile, else 256 px."""
    spec = card.spec
    return spec.tile_size if isinstance(spec, TiledImageSpec) and spec.tile_size else 256


def _trt_shapes(card: ModelCard) -> dict[str, str]:
    """TensorRT optimisation profile of the ONNX Runtime TRT accelerator: one tile batch.

    Every input's dynamic dims run from ``min_input_size`` to the tile; fixed dims are kept.
    """
    tile = optimal_side(card)

    def shapes(batch: int, side: int) -> str:
        return ",".join(
            f"{t.name}:"
            + "x".join(str(d) for d in (batch, *(d if d > 0 else side for d in t.dims)))
            for t in card.inputs
        )

    return {
        "trt_profile_min_shapes": shapes(1, card.min_input_size),
        "trt_profile_opt_shapes": shapes(card.max_batch_size, tile),
        "trt_profile_max_shapes": shapes(card.max_batch_size, tile),
    }


def render_config(
    card: ModelCard,
    *,
    profile: Profile = "cpu",
    model_format: ModelFormat = "onnx",
    instances: int = 1,
    intra_op_threads: int = 0,
) -> str:
    """The text of ``config.pbtxt`` for ``card``.

    Args:
        card: the model card.
        profile: ``cpu`` (ONNX Runtime on CPU instances) or ``gpu`` (GPU instances, ONNX
            Runtime with the TensorRT execution accelerator in FP16).
        model_format: ``onnx`` or ``tensorrt_plan`` (a prebuilt engine, GPU only).
        instances: model instances per device.
        intra_op_threads: ONNX Runtime intra-op threads per instance (0 = all cores).
    """
    if model_format == "tensorrt_plan" and profile != "gpu":
        raise ValueError("TensorRT plans only run on the gpu profile")
    lines = [f'name: "{card.name}"']
    if model_format == "onnx":
        lines += ['backend: "onnxruntime"', 'default_model_filename: "model.onnx"']
    else:
        lines += ['backend: "tensorrt"', 'default_model_filename: "model.plan"']
    lines.append(f"max_batch_size: {card.max_batch_size}")
    lines.append("input [\n" + ",\n".join(_tensor(t) for t in card.inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(_tensor(t) for t in card.outputs) + "\n]")
    preferred = ", ".join(str(b) for b in card.preferred_batch_sizes if b <= card.max_batch_size)
    lines.append(
        "dynamic_batching {\n"
        + (f"  preferred_batch_size: [ {preferred} ]\n" if preferred else "")
        + f"  max_queue_delay_microseconds: {card.max_queue_delay_us}\n}}"
    )
    kind = "KIND_GPU" if profile == "gpu" else "KIND_CPU"
    lines.append(f"instance_group [ {{ count: {instances} kind: {kind} }} ]")
    # Every built version is served: clients pin one with `version`, the catalog names the
    # default, and publishing a version loads it beside the others.
    lines.append("version_policy: { all { } }")
    params = {
        "intra_op_thread_count": str(intra_op_threads),
        "inter_op_thread_count": "1",
    }
    if profile == "gpu" and model_format == "onnx":
        accel = {
            "precision_mode": "FP16",
            "max_workspace_size_bytes": str(2 << 30),
            "trt_engine_cache_enable": "1",
            **_trt_shapes(card),
        }
        accel_params = "\n".join(
            f'        parameters {{ key: "{k}" value: "{v}" }}' for k, v in accel.items()
        )
        lines.append(
            "optimization { execution_accelerators {\n"
            "  gpu_execution_accelerator : [ {\n"
            '        name : "tensorrt"\n'
            f"{accel_params}\n"
            "  } ]\n} }"
        )
    for key, value in params.items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: "{value}" }} }}')
    return "\n".join(lines) + "\n"
