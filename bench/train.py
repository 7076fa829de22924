"""Each family's measured gain from a CPU run on its shipped config, on held-aside data.

For every config named below it trains the shipped config for its ``steps`` (sized to take
well under 15 minutes on one quiet CPU; the wall-clock limit is lifted so that a busy machine
gives the same figures, only later) in a fresh run folder and reports the held-aside figures
at initialisation and at the end, next to the baseline each must beat:

* pix2pix-facades, pix2pixhd-facades-tiny: mean L1 (in [0, 1] pixel units) between G(label
  map) and the true photo on the 37 held-aside val pairs, vs at initialisation and vs the
  mean training photo (pix2pixHD with the encoder's features of the photo).
* cyclegan-celeba-hair, combogan-celeba-hair: on 100 held-aside faces per domain, the
  share of translated faces a hair-colour classifier (trained on real training faces; its
  accuracy on held-aside real faces is the ceiling) puts in the target domain, and the dlib
  descriptor cosine between each face and its translation (two different people's faces
  score the baseline).
* stargan-celeba: the share of held-aside faces asked for yunjey's test targets (a hair
  colour, or sex or age toggled) that an attribute classifier judges to have them, and the
  identity cosine, as above.
* icgan-celeba: the same two figures for IcGAN's edits G(E_z(x), y) with the same targets,
  the L1 (in [-1, 1] units) of its reconstruction G(E_z(x), E_y(x)) against the face (vs the
  L1 between two different faces), and E_y's balanced accuracy on the held-aside faces' five
  attributes (vs the evaluation's attribute classifier).
* genegan-celeba: on 100 held-aside pairs of a blond and a not-blond face, the share of
  not-blond faces given the blond donor's attribute part that a blond/not-blond classifier
  (trained on real training faces) judges blond, the share of blond faces given the other's
  zero attribute part it judges not blond, and the identity cosine of each swap to its own
  face, as above.
* stargan-v2-celeba-hair: per held-aside face and each other hair colour (black, blond,
  brown), the share of latent-guided (a seeded random code) and of reference-guided (a
  held-aside face of that colour) translations a three-way hair-colour classifier puts in
  the target colour, and the identity cosine of both, as above.
* deblurgan-photos: PSNR and SSIM on luma (8-bit rounded, BT.601 Y) of G(blurred) against
  the sharp crop, on the fixed camera-shake pairs of the 33 held-aside natural photos, next
  to the blurred input's own (what returning the input scores).
* pfld-300w: the NME (over the outer-eye-corner distance) and the failure rate at 0.08 on
  the 166 held-aside 300-W faces' fixed crops, next to the mean training shape's.
* glcic-photos: PSNR over the hole's pixels (8-bit RGB) of the completed image (the input
  outside the hole, the completion network's output inside) on the fixed crops and holes
  (rectangles and free-form strokes) of the 33 held-aside natural photos, next to a mean
  fill's (each hole filled with its image's mean known colour) and OpenCV's Telea fill's
  (``cv2.inpaint(..., cv2.INPAINT_TELEA)``, the classical anchor).
* progan-celeba: the discriminator's gap between 100 held-aside real faces and G's faces
  from fixed latents (mean D(real) - mean D(fake), the critic's Wasserstein estimate: lower
  is better), next to its gap between as many training faces and the held-aside ones (what
  a G as good as the data would score). A growing run also gets one row and one sample grid
  per resolution stage, at the stage's last step (bench/results/train-<config>-<side>px.png).
* capg-gan-cmu, tpgan-cmu: on the held-aside people's 72 left and right CMU faces, the
  cosine of MobileFaceNet-ArcFace's embedding of the frontalized chip to the served
  embedding (RetinaFace five-point alignment) of the true frontal image, next to the
  unfrontalized face's own; and the ROC AUC of profile-vs-frontal verification over every
  (profile, frontal) pair of those people, with and without frontalization.
* srresnet-photos, srgan-photos, esrgan-photos-psnr, esrgan-photos: PSNR and SSIM on Y
  (4-px shave) of G(LR) against the HR crop on the fixed bicubic x4 pairs of the 33
  held-aside natural photos, and the gradient energy of G(LR) over the HR's (sharpness, 1 =
  the truth's), next to bicubic upscaling's; each GAN stage starts from the PSNR run before
  it. ``bench/superres_train.py`` adds the network interpolations across alpha.

Run: ``.venv/bin/python -m bench.train [CONFIG ...]`` (writes bench/results/train.md and
copies each run's last sample grid and curves to bench/results/train-<config>*.png).
"""

from __future__ import annotations

import csv
import shutil
import sys
import tempfile
from pathlib import Path

from bench.stack import REPO, write_result
from gantry.core.settings import get_settings
from gantry.core.training import ProGANConfig, TrainConfig

UNPAIRED_HAIR: list[tuple[str, str, str, str]] = [
    ("val_domain_acc_a2b", "black→blond judged blond", "classifier_real_acc", "real faces"),
    ("val_domain_acc_b2a", "blond→black judged black", "classifier_real_acc", "real faces"),
    (
        "val_identity_cos_a2b",
        "identity cosine, black→blond",
        "identity_cos_other_people",
        "other people",
    ),
    (
        "val_identity_cos_b2a",
        "identity cosine, blond→black",
        "identity_cos_other_people",
        "other people",
    ),
]
SUPERRES: list[tuple[str, str, str, str]] = [
    ("val_psnr", "PSNR on Y (4-px shave), dB", "val_psnr_bicubic", "bicubic"),
    ("val_ssim", "SSIM on Y (4-px shave)", "val_ssim_bicubic", "bicubic"),
    ("val_sharpness", "gradient energy / HR's (1 = HR)", "val_sharpness_bicubic", "bicubic"),
]
# config → (metric, what it is, baseline metric, what the baseline is)
FRONTALIZATION = [
    (
        "val_identity_frontalized",
        "identity cosine to the true frontal",
        "val_identity_unfrontalized",
        "unfrontalized face",
    ),
    (
        "val_auc_frontalized",
        "profile-vs-frontal verification AUC",
        "val_auc_unfrontalized",
        "unfrontalized face",
    ),
]
MEASURES: dict[str, list[tuple[str, str, str, str]]] = {
    "pix2pix-facades": [
        ("val_l1", "L1 to the true photo (lower is better)", "val_l1_mean_photo", "mean photo")
    ],
    "pix2pixhd-facades-tiny": [
        ("val_l1", "L1 to the true photo (lower is better)", "val_l1_mean_photo", "mean photo")
    ],
    "cyclegan-celeba-hair": UNPAIRED_HAIR,
    "combogan-celeba-hair": UNPAIRED_HAIR,
    "stargan-celeba": [
        (
            "val_target_attr_acc",
            "asked-for attribute judged present",
            "classifier_real_acc",
            "real faces",
        ),
        ("val_identity_cos", "identity cosine", "identity_cos_other_people", "other people"),
    ],
    "icgan-celeba": [
        (
            "val_target_attr_acc",
            "asked-for attribute judged present",
            "classifier_real_acc",
            "real faces",
        ),
        ("val_identity_cos", "identity cosine", "identity_cos_other_people", "other people"),
        (
            "val_reconstruction_l1",
            "L1 of G(E_z(x), E_y(x)) to x (lower is better)",
            "val_l1_other_faces",
            "another face",
        ),
        (
            "val_encoder_y_acc",
            "E_y attribute accuracy (balanced)",
            "classifier_real_acc",
            "attribute classifier",
        ),
    ],
    "genegan-celeba": [
        (
            "val_attr_added_acc",
            "not-blond given a blond donor's part judged blond",
            "classifier_real_acc",
            "real faces",
        ),
        (
            "val_attr_removed_acc",
            "blond given a not-blond donor's part judged not blond",
            "classifier_real_acc",
            "real faces",
        ),
        ("val_identity_cos", "identity cosine", "identity_cos_other_people", "other people"),
    ],
    "stargan-v2-celeba-hair": [
        (
            "val_domain_acc_latent",
            "latent-guided: target hair colour judged",
            "classifier_real_acc",
            "real faces",
        ),
        (
            "val_domain_acc_reference",
            "reference-guided: target hair colour judged",
            "classifier_real_acc",
            "real faces",
        ),
        (
            "val_identity_cos_latent",
            "identity cosine, latent-guided",
            "identity_cos_other_people",
            "other people",
        ),
        (
            "val_identity_cos_reference",
            "identity cosine, reference-guided",
            "identity_cos_other_people",
            "other people",
        ),
    ],
    "deblurgan-photos": [
        ("val_psnr", "PSNR on Y, dB", "val_psnr_blurred", "blurred input"),
        ("val_ssim", "SSIM on Y", "val_ssim_blurred", "blurred input"),
    ],
    "pfld-300w": [
        ("val_nme", "NME (lower is better)", "val_nme_mean_shape", "mean shape"),
        (
            "val_failure_rate",
            "failure rate at NME 0.08 (lower is better)",
            "val_failure_rate_mean_shape",
            "mean shape",
        ),
    ],
    "glcic-photos": [
        ("val_psnr_hole", "PSNR in the hole, dB", "val_psnr_hole_mean_fill", "mean fill"),
        ("val_psnr_hole", "PSNR in the hole, dB", "val_psnr_hole_telea", "OpenCV Telea"),
    ],
    "progan-celeba": [
        (
            "val_d_gap",
            "D(real) - D(fake) on held-aside faces (lower is better)",
            "val_d_gap_real",
            "training vs held-aside real faces",
        ),
    ],
    "capg-gan-cmu": FRONTALIZATION,
    "tpgan-cmu": FRONTALIZATION,
    # In this order: each GAN stage starts from the PSNR run named like its config.
    "srresnet-photos": SUPERRES,
    "srgan-photos": SUPERRES,
    "esrgan-photos-psnr": SUPERRES,
    "esrgan-photos": SUPERRES,
}


def stage_rows(config: TrainConfig, name: str, run_dir: Path, results: Path) -> list[str]:
    """For a growing (ProGAN) config: per resolution stage, its figures at its last step
    (from the run's metrics.csv) and a copy of its sample grid; none for other configs.

    The shipped config evaluates and samples at every stage end (``eval_every`` and
    ``sample_every`` divide the schedule), so both are there.
    """
    from trainer.metrics import METRICS_FILE, SAMPLES_DIR

    if not isinstance(config, ProGANConfig):
        return []
    with (run_dir / METRICS_FILE).open(newline="") as f:
        rows = [row for row in csv.DictReader(f) if row.get("val_d_gap")]
    lines = [
        "",
        f"Per resolution stage of {name}, at each stage's last step:",
        "",
        "| stage | side | step | seconds | D(real) - D(fake) | training vs held-aside real |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for stage in range(config.stages):
        last = stage == config.stages - 1  # the last stage trains on until `steps`
        end = config.steps if last else config.stage_end(stage)
        row = next((r for r in rows if int(float(r["step"])) == end), None)
        if row is None:
            continue
        side = int(float(row["val_resolution"]))
        lines.append(
            f"| {stage} | {side} | {end} | {float(row['seconds']):.0f} "
            f"| {float(row['val_d_gap']):.4f} | {float(row['val_d_gap_real']):.4f} |"
        )
        grid = run_dir / SAMPLES_DIR / f"step-{end:06d}.png"
        if grid.is_file():
            shutil.copy(grid, results / f"train-{name}-{side}px.png")
    return lines


def main(names: list[str] | None = None) -> None:
    """Train and measure ``names`` (default: every config in MEASURES; ``gantry bench
    train`` runs them all)."""
    from trainer import runs

    names = names or []
    settings = get_settings()
    lines = [
        "| config | steps | seconds | metric | at init | trained | baseline |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    results = REPO / "bench" / "results"
    staged: list[str] = []
    with tempfile.TemporaryDirectory(prefix="gantry-bench-train-") as home:
        run_settings = settings.model_copy(update={"checkpoint_dir": Path(home)})
        for name in names or list(MEASURES):
            overrides = {"time_limit_s": None}
            spec = runs.RunSpec(config_name=name, overrides=overrides, run_name=name)
            result = runs.run(spec, run_settings)
            for metric, what, baseline, base_what in MEASURES[name]:
                lines.append(
                    f"| {name} | {result.step} | {result.seconds:.0f} | {what}"
                    f" | {result.metrics_at_init[metric]:.4f} | {result.metrics[metric]:.4f}"
                    f" | {result.metrics[baseline]:.4f} ({base_what}) |"
                )
            run_dir = Path(result.run_dir)
            staged.extend(stage_rows(spec.config(), name, run_dir, results))
            shutil.copy(run_dir / result.artifacts["samples"], results / f"train-{name}.png")
            shutil.copy(run_dir / "curves.png", results / f"train-{name}-curves.png")
    # A run of some configs only writes its own file, next to the full table.
    report = "\n".join(lines + staged)
    write_result("train" if not names else "train-" + "-".join(names), report)


if __name__ == "__main__":
    main(sys.argv[1:])
