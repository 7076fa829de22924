"""Built cards for pipeline tests that need no model file."""

from gantry.core.cards import BuildInfo, BuiltCard, ModelCard


def built(model_card: ModelCard, version: int = 1) -> BuiltCard:
    """``model_card`` as if version ``version`` had been built (placeholder build record)."""
    build = BuildInfo(
        version=version,
        weights_file="-",
        onnx_sha256="0" * 64,
        opset=17,
        parity_max_abs_err=0.0,
        parity_images=[],
        gflops_per_input_pixel=1e-6,
        parameters=1,
        built_at="2026-12-01T00:00:00+00:00",
    )
    return BuiltCard(card=model_card, build=build)
