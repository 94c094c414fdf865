"""The safe model file format: ``AffinityVAE.save`` / ``skavae.load``.

Round trips are bit-identical on the CPU; malicious files (pickles, joblib
files, zip archives whose tensors are a pickle payload) never run code, in
``skavae.load`` or in the command line; broken files give clear errors.
"""

import copy
import io
import json
import os
import pathlib
import pickle
import shutil
import subprocess
import sys
import warnings
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

import skavae
from skavae import AffinityVAE
from skavae._persistence import FORMAT_VERSION, ModelFileError, save_model
from skavae.affinity import FSCAffinity, MeanDifference
from skavae.cli import main
from skavae.datasets import save_mrc_folder

RNG = np.random.RandomState(0)
IMAGES = RNG.rand(24, 16, 16).astype(np.float32)
LABELS = np.repeat(["a", "b", "c"], 8)
VOLUMES = RNG.rand(12, 8, 8, 8).astype(np.float32)
TINY = dict(latent_dims=3, filters=(4, 8), max_epochs=2, batch_size=8, random_state=0)

CASES = {
    "conv-labels-fsc": (dict(affinity=FSCAffinity()), IMAGES, LABELS),
    "splat": (dict(decoder="splat", n_splats=4, pose_dims=1), IMAGES, LABELS),
    "no-pose": (dict(pose_dims=0), IMAGES, LABELS),
    "no-labels": (dict(affinity=MeanDifference(scale=1.0)), IMAGES, None),
    "volumes": (dict(filters=(4,), pose_dims=3), VOLUMES, None),
    "shuffle-volumes": (dict(filters=(4,), upsampling="shuffle"), VOLUMES, None),
    "flat-frame": (
        dict(input_shape=(16, 16)),
        pd.DataFrame(IMAGES.reshape(24, -1)).add_prefix("px"),
        LABELS,
    ),
    "signals": (dict(filters=(4,), pose_dims=0), IMAGES[:, 0, :], None),
}


@pytest.fixture(scope="module", params=list(CASES))
def fitted(request):
    params, X, y = CASES[request.param]
    with warnings.catch_warnings():  # random data: an uninformative affinity
        warnings.simplefilter("ignore", UserWarning)
        return AffinityVAE(**{**TINY, **params}).fit(X, y), X, y


def _same(a, b):
    """Exact equality of fitted values (arrays, frames, tensors, containers)."""
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        assert type(a.index) is type(b.index)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, z in zip(a, b):
            _same(x, z)
    else:
        assert type(a) is type(b) and (a == b or (a != a and b != b)), (a, b)


def _outputs(model, X, y):
    Z = model.transform(X)
    pose = model.encode(X)[2]
    return {
        "transform": Z,
        "inverse_transform": model.inverse_transform(
            Z, pose=pose if pose.size else None
        ),
        "inverse_transform_default_pose": model.inverse_transform(Z),
        "reconstruct": model.reconstruct(X),
        "encode": np.concatenate(model.encode(X), axis=1),
        "sample": model.sample(3, random_state=0),
        "score": model.score(X, y),
        "names": model.get_feature_names_out(),
    }


# ------------------------------------------------------------------ round trips
def test_round_trip_is_bit_identical(fitted, tmp_path):
    model, X, y = fitted
    path = tmp_path / "model.skavae"
    model.save(path)
    loaded = skavae.load(path)
    assert type(loaded) is AffinityVAE
    expected, got = _outputs(model, X, y), _outputs(loaded, X, y)
    for name in expected:
        assert np.array_equal(expected[name], got[name]), name
    assert loaded.get_params().keys() == model.get_params().keys()
    for name, value in model.get_params(deep=False).items():
        if name == "affinity" and value is not None:
            assert type(loaded.affinity) is type(value)
            assert loaded.affinity.get_params() == value.get_params()
        else:
            _same(value, getattr(loaded, name))
    for name, value in vars(model).items():
        if name not in model.get_params(deep=False) and name != "module_":
            _same(value, getattr(loaded, name))
    _same(model.module_.state_dict(), loaded.module_.state_dict())
    assert next(loaded.module_.parameters()).device.type == "cpu"


def test_loaded_model_continues_training_as_the_original(tmp_path):
    model = AffinityVAE(**TINY).fit(IMAGES, LABELS)
    model.save(tmp_path / "m.skavae")
    loaded = skavae.load(tmp_path / "m.skavae")
    original = copy.deepcopy(model)
    for m in (original, loaded):
        m.set_params(warm_start=True, max_epochs=1).fit(IMAGES, LABELS)
    np.testing.assert_array_equal(original.transform(IMAGES), loaded.transform(IMAGES))
    assert loaded.n_iter_ == 3


def test_parameters_of_every_kind_round_trip(tmp_path):
    affinity = pd.DataFrame(
        [[1.0, 0.25, -0.5], [0.25, 1.0, 0.0], [-0.5, 0.0, 1.0]],
        index=["a", "b", "c"],
        columns=["a", "b", "c"],
    )
    model = AffinityVAE(
        **{**TINY, "random_state": np.random.RandomState(3)},
        affinity=affinity,
        beta_schedule=np.array([0.0, 0.5, 1.0]),
        gamma_schedule="ramp",
        device=torch.device("cpu"),
        checkpoint_dir=pathlib.Path(tmp_path / "ckpt"),
    )
    model.save(tmp_path / "unfitted.skavae")  # an unfitted model saves too
    unfitted = skavae.load(tmp_path / "unfitted.skavae")
    assert not hasattr(unfitted, "module_")
    model.fit(IMAGES, LABELS)
    model.save(tmp_path / "m.skavae")
    loaded = skavae.load(tmp_path / "m.skavae")
    pd.testing.assert_frame_equal(loaded.affinity, affinity)
    _same(loaded.beta_schedule, model.beta_schedule)
    assert loaded.gamma_schedule == "ramp"
    assert loaded.device == torch.device("cpu")
    assert loaded.checkpoint_dir == pathlib.Path(tmp_path / "ckpt")
    state, saved = loaded.random_state.get_state(), model.random_state.get_state()
    assert state[0] == saved[0] and np.array_equal(state[1], saved[1])
    assert state[2:] == saved[2:]
    np.testing.assert_array_equal(loaded.transform(IMAGES), model.transform(IMAGES))
    assert loaded.score(IMAGES, LABELS) == model.score(IMAGES, LABELS)


def test_skavae_objects_in_parameters_round_trip(tmp_path):
    import skavae.datasets

    wedge = getattr(skavae.datasets, "MissingWedge", None)
    if wedge is None or "missing_wedge" not in AffinityVAE().get_params():
        pytest.skip("this skavae has no missing_wedge parameter")
    model = AffinityVAE(affinity=FSCAffinity(resolution=8.0), missing_wedge=wedge())
    model.save(tmp_path / "m.skavae")
    loaded = skavae.load(tmp_path / "m.skavae")
    for name in ("affinity", "missing_wedge"):
        original, again = getattr(model, name), getattr(loaded, name)
        assert type(again) is type(original)
        assert again.get_params() == original.get_params()


def test_callables_are_stored_as_none_with_one_warning(tmp_path):
    model = AffinityVAE(
        **TINY,
        affinity=lambda A, B=None: MeanDifference(scale=1.0)(A, B),
        beta_schedule=lambda epoch: 1.0,
    ).fit(IMAGES)
    path = tmp_path / "m.skavae"
    with pytest.warns(UserWarning, match="affinity, beta_schedule"):
        model.save(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = skavae.load(path)
    assert len(caught) == 1 and caught[0].category is UserWarning
    message = str(caught[0].message)
    assert "affinity" in message and "beta_schedule" in message
    assert "replaced by None" in message and str(path) in message
    assert loaded.affinity is None and loaded.beta_schedule is None
    notes = json.loads(zipfile.ZipFile(path).read("skavae.json"))["notes"]
    assert [n["name"] for n in notes] == ["affinity", "beta_schedule"]
    np.testing.assert_array_equal(loaded.transform(IMAGES), model.transform(IMAGES))
    Z = model.transform(IMAGES[:3])
    np.testing.assert_array_equal(
        loaded.inverse_transform(Z), model.inverse_transform(Z)
    )


def test_the_file_is_a_zip_of_json_and_tensors(tmp_path):
    model = AffinityVAE(**TINY).fit(IMAGES, LABELS)
    path = tmp_path / "m.skavae"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["skavae.json", "tensors.pt"]
        document = json.loads(archive.read("skavae.json"))
        tensors = torch.load(io.BytesIO(archive.read("tensors.pt")), weights_only=True)
    assert document["format_version"] == FORMAT_VERSION
    assert document["class"] == "AffinityVAE"
    assert document["skavae_version"] == skavae.__version__
    assert document["params"]["latent_dims"] == 3
    assert document["fitted"]["n_iter_"] == 2
    assert set(model.module_.state_dict()) == {
        k.removeprefix("module_.") for k in tensors if k.startswith("module_.")
    }
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())


# --------------------------------------------------------------- atomic writes
def test_save_is_atomic_and_honours_the_umask(tmp_path, monkeypatch):
    import skavae._persistence as persistence

    model = AffinityVAE(**TINY).fit(IMAGES)
    path = tmp_path / "m.skavae"
    previous = os.umask(0o027)
    try:
        model.save(path)
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == 0o640
    before = path.read_bytes()

    def broken(file, document, tensors):
        pathlib.Path(file).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(persistence, "_write_archive", broken)
    with pytest.raises(OSError, match="No space left") as info:
        model.save(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before  # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.skavae"]
    monkeypatch.undo()
    missing = tmp_path / "no" / "m.skavae"
    with pytest.raises(FileNotFoundError) as info:
        model.save(missing)
    assert str(missing) in str(info.value)


def test_save_refuses_what_it_cannot_store(tmp_path):
    with pytest.raises(TypeError, match="AffinityVAE"):
        save_model(MeanDifference(), tmp_path / "m.skavae")
    model = AffinityVAE(random_state=np.random.default_rng(0))
    with pytest.raises(TypeError, match="random_state"):
        model.save(tmp_path / "m.skavae")
    assert not (tmp_path / "m.skavae").exists()


# ------------------------------------------------------------ malicious files
class _Payload:
    """Unpickling this creates ``marker`` (what an attacker's code would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _rewrite(source, target, *, document=None, tensors=None, extra=None):
    """Copy a model file, replacing its JSON and/or tensors.pt bytes."""
    with zipfile.ZipFile(source) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if document is not None:
        members["skavae.json"] = json.dumps(document).encode()
    if tensors is not None:
        members["tensors.pt"] = tensors
    members.update(extra or {})
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    path = root / "model.skavae"
    AffinityVAE(**TINY).fit(IMAGES, LABELS).save(path)
    data = root / "data"
    save_mrc_folder(IMAGES[:6], LABELS[:6], data)
    return path, data


def _document(path):
    with zipfile.ZipFile(path) as archive:
        return json.loads(archive.read("skavae.json"))


def _malicious_files(saved, folder, marker):
    path, _ = saved
    payload = pickle.dumps(_Payload(marker))
    torch_payload = io.BytesIO()
    torch.save({"module_.encoder.0.weight": _Payload(marker)}, torch_payload)
    folder.mkdir(exist_ok=True)
    (folder / "pickle.skavae").write_bytes(payload)
    joblib.dump(_Payload(marker), folder / "joblib.skavae")
    (folder / "model.pkl").write_bytes(payload)
    _rewrite(path, folder / "zip-pickle.skavae", tensors=payload)
    _rewrite(path, folder / "zip-torch.skavae", tensors=torch_payload.getvalue())
    return sorted(folder.iterdir())


def test_the_payload_is_real(tmp_path):
    marker = tmp_path / "marker"
    pickle.loads(pickle.dumps(_Payload(marker))).close()
    assert marker.exists()


def test_malicious_files_never_run_code_in_load(saved, tmp_path):
    marker = tmp_path / "marker"
    for file in _malicious_files(saved, tmp_path / "bad", marker):
        with pytest.raises(ValueError) as info:
            skavae.load(file)
        message = str(info.value)
        assert str(file) in message and "\n" not in message
        if file.name.startswith("zip-"):
            assert "tensors.pt is not a plain file of tensors" in message
        else:
            assert "is not a skavae model file" in message
            assert "pickle and joblib files are never loaded" in message
        assert not marker.exists(), file.name


# every command that reads a model, as argv for a model file
MODEL_COMMANDS = {
    "evaluate": lambda model, data, out: [
        "evaluate",
        str(model),
        str(data),
        "--out",
        str(out),
        "--no-figures",
        "-q",
    ],  # fmt: skip
    "explore": lambda model, data, out: [
        "explore",
        str(model),
        str(data),
        "--out",
        str(out) + ".html",
        "-q",
    ],  # fmt: skip
}


@pytest.mark.parametrize("command", list(MODEL_COMMANDS))
def test_malicious_files_never_run_code_in_the_cli(saved, tmp_path, capsys, command):
    _, data = saved
    marker = tmp_path / "marker"
    for file in _malicious_files(saved, tmp_path / "bad", marker):
        argv = MODEL_COMMANDS[command](file, data, tmp_path / "out")
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(file) in err[0], err
        assert "Traceback" not in err[0]
        if not file.name.startswith("zip-"):
            assert "not a skavae model file" in err[0] and "run" in err[0]
        assert not marker.exists(), file.name
    assert not (tmp_path / "out").exists()


def test_malicious_file_via_the_console_script(saved, tmp_path):
    script = shutil.which("skavae", path=os.path.dirname(sys.executable))
    assert script is not None
    _, data = saved
    marker = tmp_path / "marker"
    files = _malicious_files(saved, tmp_path / "bad", marker)
    for file in (
        tmp_path / "bad" / "joblib.skavae",
        tmp_path / "bad" / "zip-pickle.skavae",
        tmp_path / "bad" / "zip-torch.skavae",
    ):
        assert file in files
        argv = MODEL_COMMANDS["evaluate"](file, data, tmp_path / "out")
        run = subprocess.run([script, *argv], capture_output=True, text=True)
        assert run.returncode == 1
        assert run.stderr.count("\n") == 1 and str(file) in run.stderr
        assert "Traceback" not in run.stderr
        assert not marker.exists()


# ----------------------------------------------------------------- bad files
def test_missing_file_folder_truncated_and_corrupted(saved, tmp_path):
    path, _ = saved
    with pytest.raises(FileNotFoundError, match="does not exist") as info:
        skavae.load(tmp_path / "none.skavae")
    assert "none.skavae" in str(info.value)
    with pytest.raises(IsADirectoryError, match="folder"):
        skavae.load(tmp_path)
    raw = path.read_bytes()
    truncated = tmp_path / "truncated.skavae"
    truncated.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ModelFileError, match="not a zip archive") as info:
        skavae.load(truncated)
    assert str(truncated) in str(info.value)
    # flip bytes inside the stored members: CRC/zlib errors, named
    corrupted = tmp_path / "corrupted.skavae"
    with zipfile.ZipFile(path) as archive:
        info_json = archive.getinfo("skavae.json")
        info_pt = archive.getinfo("tensors.pt")
    for member in (info_json, info_pt):
        start = member.header_offset + 30 + len(member.filename) + 10
        data = bytearray(raw)
        data[start : start + 8] = bytes(255 - b for b in data[start : start + 8])
        corrupted.write_bytes(bytes(data))
        with pytest.raises(ModelFileError, match="corrupted|not a plain") as info:
            skavae.load(corrupted)
        assert str(corrupted) in str(info.value) and member.filename in str(info.value)
    empty = tmp_path / "empty.skavae"
    empty.write_bytes(b"")
    with pytest.raises(ModelFileError, match="not a skavae model file"):
        skavae.load(empty)


def test_other_zip_files_are_not_models(saved, tmp_path):
    path, _ = saved
    torch_file = tmp_path / "weights.pt"  # torch files are zip archives too
    torch.save({"w": torch.zeros(2)}, torch_file)
    other = tmp_path / "other.skavae"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("skavae.json", json.dumps({"format": "something else"}))
        archive.writestr("tensors.pt", b"")
    for file in (torch_file, other):
        with pytest.raises(ModelFileError, match="not a skavae model file"):
            skavae.load(file)
    extra = _rewrite(path, tmp_path / "extra.skavae", extra={"run.py": b"print(1)"})
    with pytest.raises(ModelFileError, match="exactly skavae.json and tensors.pt"):
        skavae.load(extra)


def test_a_newer_format_version_is_refused(saved, tmp_path):
    path, data = saved
    document = _document(path)
    document["format_version"] = FORMAT_VERSION + 1
    document["skavae_version"] = "9.0"
    future = _rewrite(path, tmp_path / "future.skavae", document=document)
    with pytest.raises(ModelFileError, match="upgrade skavae") as info:
        skavae.load(future)
    message = str(info.value)
    assert str(future) in message and f"version {FORMAT_VERSION + 1}" in message
    assert "9.0" in message
    argv = MODEL_COMMANDS["evaluate"](future, data, tmp_path / "out")
    assert main(argv) == 1


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda d: d.update({"class": "Popen"}), "class 'Popen'"),
        (lambda d: d.update({"class": "subprocess.Popen"}), "not one a skavae"),
        (
            lambda d: d["params"].update(
                {"affinity": {"$type": "object", "class": "Popen", "params": {}}}
            ),
            "class 'Popen', which is not one of the skavae",
        ),
        (
            lambda d: d["params"].update(
                {"affinity": {"$type": "object", "class": "Affinity", "params": {}}}
            ),
            "class 'Affinity'",
        ),
        (
            lambda d: d["fitted"].update(
                {"classes_": {"$type": "pickle", "data": "gASV"}}
            ),
            "unknown entry type 'pickle'",
        ),
        (
            lambda d: d["fitted"].update(
                {
                    "classes_": {
                        "$type": "ndarray",
                        "dtype": "V8",
                        "shape": [1],
                        "data": [0],
                    }
                }  # fmt: skip
            ),
            "dtype 'V8'",
        ),
        (lambda d: d["fitted"].update({"transform": 1}), "attribute name"),
        (lambda d: d["params"].update({"evil": 1}), "no parameter"),
        (lambda d: d.update({"format_version": "1"}), "format version"),
        (lambda d: d.pop("params"), "'params'"),
        (
            lambda d: d["params"].update({"latent_dims": 4}),
            "weights do not fit",
        ),
    ],
)
def test_malformed_descriptions_are_refused(saved, tmp_path, edit, match):
    path, _ = saved
    document = _document(path)
    edit(document)
    bad = _rewrite(path, tmp_path / "bad.skavae", document=document)
    with pytest.raises(ModelFileError, match=match) as info:
        skavae.load(bad)
    assert str(bad) in str(info.value)


def test_cli_errors_for_missing_unfitted_and_truncated_models(saved, tmp_path, capsys):
    path, data = saved
    AffinityVAE().save(tmp_path / "unfitted.skavae")
    truncated = tmp_path / "truncated.skavae"
    truncated.write_bytes(path.read_bytes()[:100])
    for file, words in (
        (tmp_path / "none.skavae", "does not exist"),
        (tmp_path / "unfitted.skavae", "not fitted"),
        (truncated, "not a skavae model file"),
    ):
        assert main(MODEL_COMMANDS["evaluate"](file, data, tmp_path / "out")) == 1
        line = capsys.readouterr().err.strip()
        assert str(file) in line and words in line and "\n" not in line
