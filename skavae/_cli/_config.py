"""Settings of ``skavae fit``: defaults < config file (TOML) < command line."""

from __future__ import annotations

import json
import math
import os
from numbers import Integral

from skavae._cli._common import METRICS, CLIError, UsageError


def _integer(value, low):
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not an integer")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an integer") from None
    if not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer")
    if value < low:
        raise ValueError(f"{value!r} is smaller than {low}")
    return value


def _number(value, low=None, high=None, *, closed_low=True):
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number")
    if low is not None and (value < low or (value == low and not closed_low)):
        raise ValueError(f"{value!r} must be {'>=' if closed_low else '>'} {low}")
    if high is not None and value >= high:
        raise ValueError(f"{value!r} must be < {high}")
    return float(value)


def _seed(value):
    from skavae._cli._common import SEED_MAX

    value = _integer(value, 0)
    if value > SEED_MAX:
        raise ValueError(f"{value!r} is larger than 2**32 - 1 (the seed range)")
    return value


def _filters(value):
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"{value!r} is not a list of channel counts like 8,16,32")
    return [_integer(v, 1) for v in value]


def _choice(choices):
    def check(value):
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return value

    return check


def _text(value):
    if not isinstance(value, str) or not value:
        raise ValueError(f"{value!r} is not a non-empty string")
    return value


def _flag(value):
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _regex(value):
    import re

    value = _text(value)
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
    return value


def _optional_positive(value):
    if value is None or (isinstance(value, str) and value.lower() == "none"):
        return None
    return _number(value, 0.0, closed_low=False)


#: ``skavae fit`` settings that are AffinityVAE parameters: setting -> parameter.
#: Their limits and choices come from ``AffinityVAE._parameter_constraints``
#: and their defaults from ``AffinityVAE().get_params()`` (see
#: :func:`_estimator_setting`), so the two cannot drift apart.
ESTIMATOR_SETTINGS = {
    "latent_dims": "latent_dims",
    "pose_dims": "pose_dims",
    "beta": "beta",
    "gamma": "gamma",
    "epochs": "max_epochs",
    "batch_size": "batch_size",
    "learning_rate": "learning_rate",
    "learning_rate_schedule": "learning_rate_schedule",
    "filters": "filters",
    "validation_fraction": "validation_fraction",
    "patience": "n_iter_no_change",
    "decoder": "decoder",
    "n_splats": "n_splats",
    "upsampling": "upsampling",
    "beta_schedule": "beta_schedule",
    "gamma_schedule": "gamma_schedule",
    "schedule_cycles": "schedule_cycles",
    "schedule_ratio": "schedule_ratio",
    "max_grad_norm": "max_grad_norm",
    "precision": "precision",
    "device": "device",
    "threads": "n_threads",
}


def _interval_check(constraint):
    """A validator with the bounds of one sklearn ``Interval`` constraint."""
    low, high = constraint.left, constraint.right
    if issubclass(constraint.type, Integral):
        low = (
            None
            if low is None
            else int(low) + (constraint.closed in ("right", "neither"))
        )
        top = None
        if high is not None:
            top = int(high) - (constraint.closed in ("left", "neither"))

        def check_int(value):
            value = _integer(value, -math.inf if low is None else low)
            if top is not None and value > top:
                raise ValueError(f"{value!r} is larger than {top}")
            return value

        return check_int
    closed_low = constraint.closed in ("left", "both")
    closed_high = constraint.closed in ("right", "both")

    def check(value):
        value = _number(value, low, closed_low=closed_low)
        if high is not None and (value > high or (value == high and not closed_high)):
            raise ValueError(f"{value!r} must be {'<=' if closed_high else '<'} {high}")
        return value

    return check


def _estimator_validator(param):
    """Validator of an AffinityVAE parameter from its ``_parameter_constraints``."""
    from sklearn.utils._param_validation import Interval, StrOptions

    from skavae import AffinityVAE
    from skavae._schedules import SCHEDULE_NAMES

    if param in ("beta_schedule", "gamma_schedule"):  # callables and arrays aside
        return _choice(tuple(SCHEDULE_NAMES))
    if param == "filters":
        return _filters
    if param == "device":
        return _text
    constraints = AffinityVAE._parameter_constraints[param]
    optional = None in constraints
    kinds = [c for c in constraints if c is not None]
    if len(kinds) == 1 and isinstance(kinds[0], StrOptions):
        check = _choice(tuple(sorted(kinds[0].options)))
    elif len(kinds) == 1 and isinstance(kinds[0], Interval):
        check = _interval_check(kinds[0])
    else:  # other constraints: scikit-learn's own check of the parsed value
        return _sklearn_check(param, constraints)
    if not optional:
        return check
    return lambda v: (
        None if v is None or (isinstance(v, str) and v.lower() == "none") else check(v)
    )


def _sklearn_check(param, constraints):
    """A validator that parses a command-line value (an int, a float, true,
    false, none, or text) and checks it with scikit-learn's constraints."""
    from sklearn.utils._param_validation import (
        InvalidParameterError,
        validate_parameter_constraints,
    )

    def parse(value):
        if not isinstance(value, str):
            return value
        words = {"true": True, "false": False, "none": None}
        if value.lower() in words:
            return words[value.lower()]
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value

    def check(value):
        value = parse(value)
        try:
            validate_parameter_constraints(
                {param: constraints}, {param: value}, caller_name="AffinityVAE"
            )
        except InvalidParameterError as exc:
            raise ValueError(str(exc).rstrip(".")) from None
        return value

    return check


def _estimator_setting(param, text):
    from skavae import AffinityVAE

    default = AffinityVAE().get_params()[param]
    if isinstance(default, tuple):
        default = list(default)  # written to TOML as an array
    return (_estimator_validator(param), default, text)


_HELP = {
    "latent_dims": "size of the latent code",
    "pose_dims": "size of the pose code (0: none)",
    "beta": "weight of the KL term",
    "gamma": "weight of the affinity term",
    "epochs": "training epochs",
    "batch_size": "objects per optimiser step",
    "learning_rate": "Adam learning rate",
    "learning_rate_schedule": (
        "learning rate per epoch: constant, or cosine annealing towards 0"
    ),
    "filters": "encoder channels per stage",
    "validation_fraction": "fraction held out for val_* losses",
    "patience": "stop after this many epochs without improvement (default: never)",
    "decoder": (
        "decoder: conv, or splat (Gaussians rotated by an explicit pose; "
        "pose_dims 1 or 3 in 2D, 3 or 6 in 3D)"
    ),
    "n_splats": "Gaussians of the splat decoder",
    "upsampling": (
        "how the conv decoder doubles the size: transpose (kernel 4), "
        "transpose2 (kernel 2), nearest (+ convolution), shuffle (sub-pixel)"
    ),
    "beta_schedule": (
        "annealing of beta per epoch (cyclical linear/cosine/sigmoid, ramp)"
    ),
    "gamma_schedule": "annealing of gamma per epoch",
    "schedule_cycles": "cycles of cyclical schedules",
    "schedule_ratio": "fraction of a cycle spent rising, in (0, 1]",
    "max_grad_norm": "clip the gradient norm of every step (default: no clipping)",
    "precision": "training precision",
    "device": "torch device: auto, cpu, cuda, cuda:1, ...",
    "threads": "torch CPU threads",
}

#: name -> (validator, default, help). Option ``--a-b`` is setting ``a_b``.
SETTINGS = {
    "output": (_text, "model.skavae", "model file to write"),
    "affinity": (_text, None, "class-level affinity CSV (from `skavae affinity`)"),
    "metric": (
        _choice((*METRICS, "none")),
        "fsc",
        "metric of the class-level affinity when no --affinity is given "
        "(none: plain beta-VAE term, gamma unused)",
    ),
    "n_per_class": (lambda v: _integer(v, 1), 16, "files per class for the metric"),
    **{
        name: _estimator_setting(param, _HELP[name])
        for name, param in ESTIMATOR_SETTINGS.items()
        if name != "device" and name != "threads"
    },
    "checkpoint_dir": (
        lambda v: None if v is None else _text(v),
        None,
        "folder of training checkpoints; a rerun resumes from the newest",
    ),
    "device": _estimator_setting("device", _HELP["device"]),
    "threads": _estimator_setting("n_threads", _HELP["threads"]),
    "seed": (_seed, 0, "random seed, in [0, 2**32 - 1]"),
    "resolution": (
        _optional_positive,
        None,
        "with --metric fsc: highest resolution compared, in Å (needs the voxel "
        "size: from the headers or --voxel-size; default: 4 voxels)",
    ),
    # how DATA_DIR is read (skavae._cli._args.add_folder_options)
    "label_regex": (_regex, None, "labels from a regular expression"),
    "classes": (_text, None, "labels from a CSV table (file,label)"),
    "skip_unlisted": (_flag, False, "leave out files --classes does not list"),
    "unlabelled": (_flag, False, "no labels"),
    "resample": (_flag, False, "resample mixed voxel sizes"),
    "voxel_size": (_optional_positive, None, "voxel size in Å of the files"),
    "follow_symlinks": (_flag, False, "follow links outside DATA_DIR"),
}

#: the settings of how DATA_DIR is read; options of every folder command
FOLDER_SETTINGS = (
    "label_regex",
    "classes",
    "skip_unlisted",
    "unlabelled",
    "resample",
    "voxel_size",
    "follow_symlinks",
)


def folder_options(args):
    """The folder settings of a command's ``args`` (defaults where not given)."""
    options = {}
    for name in FOLDER_SETTINGS:
        value = getattr(args, name, None)
        options[name] = SETTINGS[name][1] if value is None else value
    return options


def _tomllib():
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # Python 3.10: the same parser as a package
        import tomli as tomllib
    return tomllib


def load_config(path):
    """Settings from a TOML file: top-level keys and/or a ``[fit]`` table.

    Both are read and merged (a ``[run]`` table, written by ``skavae fit``, is
    ignored); a setting given both at the top level and in ``[fit]`` is
    ambiguous and refused.
    """
    tomllib = _tomllib()

    if os.path.isdir(path):
        raise UsageError(f"--config {path!r} is a folder; give a TOML file.")
    if not os.path.isfile(path):
        raise CLIError(f"config file {path!r} does not exist.")
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CLIError(f"{path!r} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise CLIError(f"cannot read {path!r}: {exc}") from None
    data.pop("run", None)  # information written by `skavae fit`, not settings
    if isinstance(data.get("fit"), dict):
        table = data.pop("fit")
        both = sorted(set(data) & set(table))
        if both:
            raise UsageError(
                f"{path}: {', '.join(map(repr, both))} given both at the top level "
                "and in [fit]; keep one."
            )
        data.update(table)
    settings = {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in SETTINGS:
            raise UsageError(
                f"{path}: unknown setting {key!r} (known: {', '.join(SETTINGS)})."
            )
        settings[name] = check_setting(name, value, source=f"{path}: {key}")
    return settings


def check_setting(name, value, *, source):
    try:
        return SETTINGS[name][0](value)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}.") from None


def resolve(args):
    """Final settings and where each came from ("default", "config", "command line")."""
    config = load_config(args.config) if args.config else {}
    settings, origin = {}, {}
    for name, (_, default, _) in SETTINGS.items():
        cli_value = getattr(args, name, None)
        if cli_value is not None:
            settings[name], origin[name] = cli_value, "command line"
        elif name in config:
            settings[name], origin[name] = config[name], "config"
        else:
            settings[name], origin[name] = default, "default"
    if settings["affinity"] is not None and origin["metric"] != "default":
        if origin["affinity"] == origin["metric"]:
            raise UsageError(
                "give either an affinity CSV (--affinity) or a metric (--metric), "
                "not both."
            )
    if settings["affinity"] is not None and origin["metric"] == "default":
        settings["metric"] = None
    if settings["affinity"] is not None and settings["metric"] is not None:
        # one came from the config, the other from the command line: the
        # command line wins
        if origin["affinity"] == "command line":
            settings["metric"] = None
        else:
            settings["affinity"] = None
    return settings, origin


def _toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # TOML basic strings use JSON's escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def to_toml(settings, origin, run):
    """The settings used (reusable with ``--config``) and a ``[run]`` record."""
    lines = [
        "# Settings used by `skavae fit` (reuse with: skavae fit DATA_DIR "
        "--config THIS_FILE).",
    ]
    for name, value in settings.items():
        note = f"  # {origin[name]}"
        if value is None:
            lines.append(f"# {name} = (not set){note}")
        else:
            lines.append(f"{name} = {_toml_value(value)}{note}")
    lines += ["", "[run]", "# What happened (ignored when read back as a config)."]
    for name, value in run.items():
        if value is not None:
            lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
