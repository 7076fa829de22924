"""GET /v1/models."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gateway.deps import StateDep

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models")
async def list_models(state: StateDep) -> dict[str, list[dict[str, Any]]]:
    """Every built model with its card, build record and Triton readiness."""
    state.catalog.refresh()
    models = []
    for built in state.catalog.all():
        card = built.card
        models.append(
            {
                "name": card.name,
                "version": card.version,
                "task": card.task,
                "license": card.license,
                "architecture": card.architecture,
                "description": card.description,
                "scale": card.scale,
                "tile_size": card.tile_size,
                "tile_pad": card.tile_pad,
                "color_order": card.color_order,
                "value_range": list(card.value_range),
                "inputs": [t.model_dump() for t in card.inputs],
                "outputs": [t.model_dump() for t in card.outputs],
                "weights": card.weights.model_dump(),
                "default": card.default,
                "format": built.build.format,
                "gflops_per_input_pixel": built.build.gflops_per_input_pixel,
                "parity_max_abs_err": built.build.parity_max_abs_err,
                "ready": await state.triton.model_ready(card.name),
            }
        )
    return {"models": models}
