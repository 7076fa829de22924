"""GET /v1/models: every model, every built version, its card, build record and readiness."""

from __future__ import annotations

from fastapi import APIRouter

from gantry.core.cards import TiledImageSpec
from gateway.deps import StateDep
from gateway.schemas import ModelInfo, ModelList, ModelVersionInfo

router = APIRouter(prefix="/v1", tags=["models"])


@router.get("/models")
async def list_models(state: StateDep) -> ModelList:
    """Every built model with its versions; the summary fields are the default version's."""
    triton = state.pipelines.triton
    models = []
    for model in state.pipelines.catalog.models():
        versions = [
            ModelVersionInfo(
                version=v,
                is_default=v == model.default_version,
                ready=await triton.model_ready(model.name, v),
                card=built.card,
                build=built.build,
            )
            for v, built in sorted(model.versions.items())
        ]
        built = model.default
        card, spec = built.card, built.card.spec
        tiled = spec if isinstance(spec, TiledImageSpec) else None
        models.append(
            ModelInfo(
                name=card.name,
                version=model.default_version,
                task=card.task,
                license=card.license,
                research_only=card.weights.research_only,
                architecture=card.architecture,
                description=card.description,
                scale=tiled.scale if tiled else None,
                tile_size=tiled.tile_size if tiled else None,
                tile_pad=tiled.tile_pad if tiled else None,
                color_order=card.color_order,
                value_range=card.value_range,
                inputs=list(card.inputs),
                outputs=list(card.outputs),
                weights=card.weights,
                default=card.default,
                format=built.build.format,
                gflops_per_input_pixel=built.build.gflops_per_input_pixel,
                parity_max_abs_err=built.build.parity_max_abs_err,
                ready=next(v.ready for v in versions if v.is_default),
                spec=spec,
                versions=versions,
            )
        )
    return ModelList(models=models)
