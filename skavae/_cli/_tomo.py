"""Tomograms on the command line: ``simulate tomogram``, ``extract``, and the
particle-list input and STAR output of ``fit`` and ``evaluate``."""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from skavae._cli._common import (
    CLIError,
    UsageError,
    make_dir,
    progress,
    write_templates,
)


# ------------------------------------------------------------------- helpers
def same_file(a, b):
    """Whether two paths name the same file (existing or not)."""
    if a is None or b is None:
        return False
    return os.path.realpath(os.fspath(a)) == os.path.realpath(os.fspath(b))


def check_not_input(output, option, inputs):
    """UsageError when an output path is one of the inputs."""
    for name, path in inputs:
        if path is not None and same_file(output, path):
            raise UsageError(
                f"{option} {output!r} is the same file as {name} {path!r}; give "
                "another output path."
            )


def check_particle_options(args, *, data_dir_name="DATA_DIR"):
    """``--particles`` and ``--tomograms`` go together, instead of DATA_DIR."""
    particles = getattr(args, "particles", None)
    if particles is None:
        if getattr(args, "tomograms", None) is not None:
            raise UsageError("--tomograms needs --particles STAR.")
        if getattr(args, "data_dir", None) is None:
            raise UsageError(
                f"give {data_dir_name} (a folder of .mrc files) or --particles STAR "
                "--tomograms DIR."
            )
        return False
    if getattr(args, "data_dir", None) is not None:
        raise UsageError(
            f"give either {data_dir_name} or --particles, not both "
            f"({args.data_dir!r} and {particles!r})."
        )
    if getattr(args, "tomograms", None) is None:
        raise UsageError("--particles needs --tomograms (a tomogram, or a folder).")
    return True


def add_extraction_options(group):
    """``--tilt-range`` and ``--target-pixel-size`` of ``extract`` and the
    ``--particles`` commands."""
    from skavae._cli._args import positive_float

    group.add_argument(
        "--tilt-range",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="tilt range of every tomogram in degrees, for the wedge-aware loss; "
        "replaces the list's skavaeTiltMin/Max columns (default: those columns "
        "when present, else unknown)",
    )
    group.add_argument(
        "--target-pixel-size",
        type=positive_float,
        metavar="A",
        help="Å per voxel of the subtomograms: each box covers box x A Å, cut at "
        "the tomogram's pixel size and resampled to the box (anti-aliased "
        "cubic spline; default: the tomogram's pixel size)",
    )


def _tilt_range(args):
    """``--tilt-range`` checked (a UsageError), or None when not given."""
    from skavae._wedge import _check_range

    value = getattr(args, "tilt_range", None)
    if value is None:
        return None
    try:
        return _check_range(value, "--tilt-range")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def load_particles(args, box):
    """A SubtomogramStack of ``--particles`` in ``--tomograms`` (one-line errors)."""
    from skavae.io import extract_subtomograms

    tilt_range = _tilt_range(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            stack = extract_subtomograms(
                args.tomograms,
                args.particles,
                box=box,
                edge=args.edge,
                normalize=args.normalize,
                pixel_size=args.pixel_size,
                binning=args.binning,
                tilt_range=tilt_range,
                target_pixel_size=getattr(args, "target_pixel_size", None),
            )
        except ValueError as exc:
            raise CLIError(str(exc)) from None
    for w in caught:
        warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return stack


def particle_labels(stack, column, *, required):
    """Labels of the particles (strings), or None; a CLIError when required."""
    try:
        y = stack.labels(column)
    except ValueError as exc:
        raise CLIError(f"{stack.particles.attrs.get('skavae_source')}: {exc}") from None
    if y is None and required:
        raise CLIError(
            f"{stack.particles.attrs.get('skavae_source')}: the particle list has no "
            "class column (rlnClassNumber, skavaeClassName, class, ...); name one "
            "with --label-column."
        )
    return y


def unknown_flags(Z_ref, Z, ref_row, quantile):
    """Particles farther from the reference map than its own spacing.

    A particle is unknown when the distance to its nearest reference latent
    (itself excluded) exceeds the ``quantile`` of the reference latents'
    nearest-neighbour distances (each to its nearest other reference latent).
    """
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=min(2, len(Z_ref))).fit(Z_ref)
    d_ref, _ = nn.kneighbors(Z_ref)
    spacing = d_ref[:, -1]
    limit = float(np.quantile(spacing, quantile))
    d, i = nn.kneighbors(Z)
    own = i[:, 0] == ref_row
    nearest = np.where(own, d[:, -1], d[:, 0])
    return nearest > limit


def soft_probability(Z_ref, y_ref, Z, ref_row, predicted, k):
    """Fraction of the K nearest reference latents carrying the prediction.

    ``K = min(k, smallest reference class)``, so that a small reference map
    does not turn the fraction into the class frequencies; a particle that is
    itself in the reference (``ref_row >= 0``) is not its own neighbour.
    """
    from sklearn.neighbors import NearestNeighbors

    _, counts = np.unique(y_ref, return_counts=True)
    k = int(max(1, min(k, counts.min(), len(Z_ref) - 1)))
    nn = NearestNeighbors(n_neighbors=k + 1).fit(Z_ref)
    _, idx = nn.kneighbors(Z)
    own = idx == np.asarray(ref_row)[:, None]
    own[~own.any(axis=1), -1] = True  # not in the reference: drop the farthest
    keep = idx[~own].reshape(len(Z), k)
    return (y_ref[keep] == np.asarray(predicted)[:, None]).mean(axis=1)


def pose_rotations(model, pose):
    """Reference-to-particle rotations on ``(x, y, z)`` of a 3D splat model's
    explicit pose (axis-angle in array-axis order ``(z, y, x)``), else None.

    The conv decoder's pose is a free code, not a rotation: nothing to write.
    """
    shape = getattr(model, "input_shape_", ())
    if getattr(model, "decoder", "conv") != "splat" or len(shape) != 3:
        return None  # a 3D splat model's pose has 3 or 6 values (splat_pose_dims)
    import torch

    from skavae._splat import rotation_matrices

    pose = torch.as_tensor(np.asarray(pose), dtype=torch.float64)
    R = rotation_matrices(pose, 3).numpy()
    return np.ascontiguousarray(R[:, ::-1, ::-1])  # P R P, P: (z, y, x) <-> (x, y, z)


def write_star_results(
    args, stack, model, res, mu, pose, ref_row, Z_ref, y_ref, star_path
):
    """Write the particle rows with the KNN results (``evaluate --particles``)."""
    from skavae.io import write_particles
    from skavae.io._writer import class_order

    hard = res["hard"]
    y_ref = np.asarray(y_ref).astype(str)
    Z = mu.astype(np.float64)
    proba = soft_probability(Z_ref, y_ref, Z, ref_row, hard, args.soft_neighbors)
    unknown = unknown_flags(Z_ref, Z, ref_row, args.unknown_quantile)
    classes = class_order(getattr(model, "classes_", None), [*y_ref, *hard])
    try:
        return write_particles(
            star_path,
            stack.particles,
            predictions=hard,
            classes=classes,
            probabilities=proba,
            unknown=unknown,
            latents=mu,
            poses=pose if pose.shape[1] else None,
            rotations=pose_rotations(model, pose),
            split_by_class=args.split_by_class,
            overwrite=True,
        )
    except ValueError as exc:
        raise CLIError(str(exc)) from None


# --------------------------------------------------------- simulate tomogram
def simulate_tomogram(args):
    """Write tomograms with molecules in random poses and their ground truth."""
    from skavae._cli._simulate import _classes
    from skavae._files import atomic_path
    from skavae.affinity import FSCAffinity, class_affinity_matrix, write_affinity_csv
    from skavae.datasets import CTF, make_tomogram
    from skavae.io import write_particles
    from skavae.io._extract import write_mrc

    start = time.perf_counter()
    classes = _classes(args.classes)
    if classes in ("seen", "unseen"):
        raise UsageError(
            "tomograms have no seen/unseen sets; give --classes all, ecoli or PDB "
            "ids (e.g. --classes 1aon,5a1a,1ecp)."
        )
    structures = None if classes is None else classes
    voxel = args.voxel_size if args.voxel_size is not None else 10.0
    box = args.size if args.size is not None else 32
    shape = args.shape
    out = args.out_dir
    make_dir(out, "OUT_DIR")
    names = [f"tomo_{k:03d}" for k in range(args.n_tomograms)]
    targets = [
        os.path.join(out, f"{n}.{ext}") for n in names for ext in ("mrc", "star")
    ]
    targets.append(os.path.join(out, "particles.star"))
    if not args.overwrite:
        existing = [t for t in targets if os.path.exists(t)]
        if existing:
            raise CLIError(
                f"{existing[0]!r} already exists; pass --overwrite to replace it."
            )
    lo, hi = args.tilt_range
    frames = []
    templates = None
    bar = progress(
        desc="simulating", total=args.n_tomograms, unit="tomogram", quiet=args.quiet
    )
    with bar:
        for k, name in enumerate(names):
            try:
                tomo, particles, templates, _ = make_tomogram(
                    shape,
                    n_particles=args.n_particles,
                    structures=structures,
                    voxel_size=voxel,
                    tilt_range=(lo, hi),
                    ctf=CTF() if not args.no_ctf else False,
                    snr=args.snr,
                    box=box,
                    name=name,
                    fiducials=args.fiducials,
                    vesicles=args.vesicles,
                    return_templates=True,
                    random_state=args.seed + k,
                )
            except ValueError as exc:
                raise UsageError(str(exc)) from None
            write_mrc(os.path.join(out, f"{name}.mrc"), tomo, voxel_size=voxel)
            particles = particles.rename(columns={"radius_px": "skavaeRadiusPx"})
            write_particles(
                os.path.join(out, f"{name}.star"), particles, overwrite=True
            )
            frames.append(particles)
            bar.update(1)
    import pandas as pd

    everything = pd.concat(frames, ignore_index=True)
    everything.attrs = {}
    write_particles(os.path.join(out, "particles.star"), everything, overwrite=True)
    labels = write_templates(out, templates, voxel, overwrite=True)
    matrix = class_affinity_matrix(
        metric=FSCAffinity(voxel_size=voxel), templates=templates
    )
    write_affinity_csv(matrix, os.path.join(out, "affinity.csv"))
    with atomic_path(os.path.join(out, "README.txt")) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(_readme(args, shape, voxel, box, labels, names))
    size = "x".join(str(s) for s in shape)
    print(
        f"Wrote {len(names)} tomograms ({size} voxels at {voxel:g} Å, "
        f"{args.n_particles} molecules each of {' '.join(labels)}, tilt "
        f"{lo:g}..{hi:g}, SNR {args.snr}) to {os.path.join(out, '')}: "
        f"{names[0]}.mrc/.star, ..., particles.star, templates/, affinity.csv in "
        f"{time.perf_counter() - start:.1f} s."
    )
    return 0


def _readme(args, shape, voxel, box, labels, names):
    return (
        "Synthetic tomograms written by `skavae simulate tomogram`.\n\n"
        f"shape (z, y, x): {tuple(shape)} voxels at {voxel:g} Å; beam along z, "
        "tilt axis y\n"
        f"molecules per tomogram: {args.n_particles} of {', '.join(labels)}\n"
        f"tilt range: {args.tilt_range[0]:g} to {args.tilt_range[1]:g} degrees; "
        f"CTF: {'no' if args.no_ctf else 'yes (one defocus per tomogram)'}; "
        f"SNR of {box}-voxel boxes: {args.snr}\n"
        f"distractors per tomogram (not in the particle lists): "
        f"{args.fiducials} gold beads of 100 Å, {args.vesicles} membrane vesicles\n"
        f"seeds: {args.seed} to {args.seed + len(names) - 1}\n\n"
        "<name>.star: the ground truth of <name>.mrc (rlnTomoName, "
        "rlnCoordinateX/Y/Z in voxels, RELION ZYZ angles rlnAngleRot/Tilt/Psi "
        "turning the template into the molecule, rlnClassNumber, skavaeClassName, "
        "skavaeTiltMin/Max, rlnDefocusU); particles.star: all of them.\n"
        "templates/: each structure unrotated, centred on voxel box // 2.\n"
        "affinity.csv: FSC affinity of the templates (for `skavae fit --affinity`).\n"
    )


def load_model_particles(args, model):
    """``(stack, labels or None)`` of ``--particles`` in the box of ``model``.

    The box is ``--box`` or the side of the model's cubic input; a model of
    another input shape is refused.
    """
    shape = tuple(int(v) for v in model.input_shape_)
    if len(shape) != 3 or len(set(shape)) != 1:
        raise CLIError(
            f"{args.model!r} was trained on objects of shape {shape}, not "
            "cubic subtomograms."
        )
    stack = load_particles(args, args.box or shape[0])
    return stack, particle_labels(stack, args.label_column, required=False)


def refuse_folder_options(args, on_particles):
    """Folder options (but --follow-symlinks) do not apply to --particles."""
    from skavae._cli._config import FOLDER_SETTINGS

    if not on_particles:
        return
    for name in FOLDER_SETTINGS:
        if name != "follow_symlinks" and getattr(args, name, None) not in (None, False):
            option = "--" + name.replace("_", "-")
            raise UsageError(
                f"{option} applies to a DATA_DIR folder, not to --particles "
                "(labels come from --label-column)."
            )
