"""The typed JSON values of a skavae model file (see :mod:`skavae._persistence`).

:class:`_Encoder` turns parameters and fitted attributes into JSON values
(tagged ``"$type"`` objects for tuples, dicts, numpy and pandas data, paths,
devices, random states, tensors and the allow-listed skavae classes);
:class:`_Decoder` reads them back, refusing anything outside that grammar, so
a model file never names code to run.
"""

from __future__ import annotations

import inspect
import math
import pathlib

import numpy as np
import pandas as pd
import torch

TENSORS_NAME = "tensors.pt"
_ARRAY_KINDS = "biufUO"  # bool, ints, floats, str, object (of storable values)
_PANDAS_DTYPES = ("object", "str", "string")  # and numpy bool, int, float dtypes


def _pandas_dtype_ok(text):
    if text in _PANDAS_DTYPES:
        return True
    try:
        return len(text) <= 16 and np.dtype(text).kind in "biuf"
    except TypeError:
        return False


class ModelFileError(ValueError):
    """A file that is not a readable skavae model file (the message names it)."""


# -------------------------------------------------------------- allowed classes
def _estimator_classes():
    from skavae import AffinityVAE

    return {"AffinityVAE": AffinityVAE}


#: skavae classes a parameter may hold besides the affinity metrics (when the
#: installed skavae.datasets exports them)
_DATASET_PARAMETER_CLASSES = ("MissingWedge", "CTF")


def _parameter_classes():
    """The skavae classes a parameter may hold, rebuilt by name on load.

    The concrete affinity metrics exported by :mod:`skavae.affinity` and the
    data models of :mod:`skavae.datasets` named in ``_DATASET_PARAMETER_CLASSES``:
    scikit-learn style classes whose ``__init__`` only stores its parameters.
    """
    from sklearn.base import BaseEstimator

    import skavae.affinity as affinity
    import skavae.datasets as datasets

    found = [getattr(affinity, name) for name in affinity.__all__]
    found = [
        cls
        for cls in found
        if isinstance(cls, type)
        and issubclass(cls, affinity.Affinity)
        and not inspect.isabstract(cls)
    ]
    for name in _DATASET_PARAMETER_CLASSES:
        cls = getattr(datasets, name, None)
        if isinstance(cls, type) and issubclass(cls, BaseEstimator):
            found.append(cls)
    return {cls.__name__: cls for cls in found}


# --------------------------------------------------------------------- encoding
class _Encoder:
    """Turns parameter and attribute values into JSON-safe trees.

    Tensors go to ``self.tensors`` (referenced by key); callables that cannot
    be stored become None and are listed in ``self.notes``.
    """

    def __init__(self):
        self.tensors = {}
        self.notes = []

    def __call__(self, value, where):
        if isinstance(value, np.generic):  # before str and float: np.str_, ...
            return self._scalar(value, where)
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, torch.Tensor):
            return self._tensor(value, where)
        if isinstance(value, list):
            return [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, tuple):
            items = [self(v, f"{where}[{i}]") for i, v in enumerate(value)]
            return {"$type": "tuple", "items": items}
        if isinstance(value, dict):
            items = [[self(k, f"{where} key"), self(v, f"{where}[{k!r}]")]
                     for k, v in value.items()]  # fmt: skip
            return {"$type": "dict", "items": items}
        if isinstance(value, pd.DataFrame):
            return self._frame(value, where)
        if isinstance(value, pathlib.PurePath):
            return {"$type": "path", "value": str(value)}
        if isinstance(value, torch.device):
            return {"$type": "device", "value": str(value)}
        if isinstance(value, np.random.RandomState):
            state = self(value.get_state(legacy=True), where)
            return {"$type": "RandomState", "state": state}
        name = type(value).__name__
        if _parameter_classes().get(name) is type(value):
            params = value.get_params(deep=False)
            encoded = {k: self(v, f"{where}.{k}") for k, v in params.items()}
            return {"$type": "object", "class": name, "params": encoded}
        if callable(value):
            what = getattr(value, "__qualname__", type(value).__qualname__)
            self.notes.append(
                {"name": where, "note": f"a callable ({what}) cannot be stored"}
            )
            return None
        raise TypeError(
            f"{where}: a {type(value).__module__}.{type(value).__qualname__} "
            "cannot be stored in a skavae model file."
        )

    def _scalar(self, value, where):
        if value.dtype.kind not in _ARRAY_KINDS.replace("O", ""):
            raise TypeError(f"{where}: numpy scalars of dtype {value.dtype} cannot be "
                            "stored in a skavae model file.")  # fmt: skip
        return {"$type": "scalar", "dtype": value.dtype.str, "value": value.item()}

    def _array(self, value, where):
        if value.dtype.kind not in _ARRAY_KINDS or value.dtype.fields is not None:
            raise TypeError(f"{where}: arrays of dtype {value.dtype} cannot be "
                            "stored in a skavae model file.")  # fmt: skip
        flat = value.ravel()
        if value.dtype.kind == "O":
            data = [self(v, f"{where}[{i}]") for i, v in enumerate(flat)]
        else:
            data = flat.tolist()
        return {"$type": "ndarray", "dtype": value.dtype.str,
                "shape": list(value.shape), "data": data}  # fmt: skip

    def _tensor(self, value, where):
        key = where
        while key in self.tensors:
            key += "'"
        self.tensors[key] = value.detach().to("cpu")
        return {"$type": "tensor", "key": key}

    def _index(self, index, where):
        if index.nlevels != 1:
            raise TypeError(f"{where}: a MultiIndex cannot be stored in a skavae "
                            "model file.")  # fmt: skip
        _check_pandas_dtype(index.dtype, where)
        if isinstance(index, pd.RangeIndex):
            values = {"$type": "range", "items": [index.start, index.stop, index.step]}
        else:
            values = self._array(index.to_numpy(), where)
        return {"values": values, "dtype": str(index.dtype),
                "name": self(index.name, where)}  # fmt: skip

    def _frame(self, frame, where):
        for j, dtype in enumerate(frame.dtypes):
            _check_pandas_dtype(dtype, f"{where} column {j}")
        columns = [
            self._array(frame.iloc[:, j].to_numpy(), f"{where} column {j}")
            for j in range(frame.shape[1])
        ]
        return {
            "$type": "DataFrame",
            "index": self._index(frame.index, f"{where} index"),
            "columns": self._index(frame.columns, f"{where} columns"),
            "dtypes": [str(dtype) for dtype in frame.dtypes],
            "data": columns,
        }


def _check_pandas_dtype(dtype, where):
    if not _pandas_dtype_ok(str(dtype)):
        raise TypeError(
            f"{where}: pandas data of dtype {dtype} cannot be stored in a skavae "
            "model file (bool, int, float, str and object data can)."
        )


# --------------------------------------------------------------------- decoding
def _fail(path, text):
    return ModelFileError(f"{path!r}: {text}")


def _dtype(text, path):
    try:
        if not isinstance(text, str) or len(text) > 16:
            raise TypeError
        dtype = np.dtype(text)
    except (TypeError, ValueError):
        raise _fail(path, f"unsupported array dtype {text!r}.") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.shape:
        raise _fail(path, f"unsupported array dtype {text!r}.")
    return dtype


def _check_keys(node, keys, path):
    if set(node) != {"$type", *keys}:
        raise _fail(path, f"malformed {node.get('$type')!r} entry {sorted(node)}.")


class _Decoder:
    """Rebuilds values from the JSON trees of :class:`_Encoder`."""

    def __init__(self, path, tensors):
        self.path = path
        self.tensors = tensors
        self.used = set()

    def __call__(self, node):
        if node is None or isinstance(node, (bool, int, float, str)):
            return node
        if isinstance(node, list):
            return [self(v) for v in node]
        if not isinstance(node, dict) or not isinstance(node.get("$type"), str):
            raise _fail(self.path, f"malformed entry of type {type(node).__name__}.")
        kind = node["$type"]
        decode = {
            "tuple": self._tuple,
            "dict": self._dict,
            "scalar": self._scalar,
            "ndarray": self._array,
            "tensor": self._tensor,
            "DataFrame": self._frame,
            "path": self._path,
            "device": self._device,
            "RandomState": self._random_state,
            "object": self._object,
        }.get(kind)
        if decode is None:
            raise _fail(self.path, f"unknown entry type {kind!r}.")
        return decode(node)

    def _list(self, node, key):
        value = node[key]
        if not isinstance(value, list):
            raise _fail(self.path, f"malformed {node['$type']!r} entry.")
        return value

    def _tuple(self, node):
        _check_keys(node, ["items"], self.path)
        return tuple(self(v) for v in self._list(node, "items"))

    def _dict(self, node):
        _check_keys(node, ["items"], self.path)
        out = {}
        for pair in self._list(node, "items"):
            if not isinstance(pair, list) or len(pair) != 2:
                raise _fail(self.path, "malformed 'dict' entry.")
            key = self(pair[0])
            try:
                out[key] = self(pair[1])
            except TypeError:  # an unhashable key
                raise _fail(self.path, "malformed 'dict' entry.") from None
        return out

    def _scalar(self, node):
        _check_keys(node, ["dtype", "value"], self.path)
        dtype = _dtype(node["dtype"], self.path)
        value = node["value"]
        if dtype.kind == "O" or not isinstance(value, (bool, int, float, str)):
            raise _fail(self.path, "malformed 'scalar' entry.")
        return np.array(value, dtype=dtype)[()]

    def _array(self, node):
        _check_keys(node, ["dtype", "shape", "data"], self.path)
        dtype = _dtype(node["dtype"], self.path)
        shape, data = self._list(node, "shape"), self._list(node, "data")
        if not all(type(s) is int and s >= 0 for s in shape) or len(data) != math.prod(
            shape
        ):
            raise _fail(self.path, "malformed 'ndarray' entry (shape and data).")
        if dtype.kind == "O":
            out = np.empty(len(data), dtype=object)
            for i, item in enumerate(data):
                out[i] = self(item)
            return out.reshape(shape)
        if not all(isinstance(v, (bool, int, float, str)) for v in data):
            raise _fail(self.path, "malformed 'ndarray' entry (values).")
        return np.array(data, dtype=dtype).reshape(shape)

    def _tensor(self, node):
        _check_keys(node, ["key"], self.path)
        key = node["key"]
        if not isinstance(key, str) or key not in self.tensors:
            raise _fail(self.path, f"{TENSORS_NAME} lacks the tensor {key!r}.")
        self.used.add(key)
        return self.tensors[key]

    def _pandas_dtype(self, text):
        if not isinstance(text, str) or not _pandas_dtype_ok(text):
            raise _fail(self.path, f"unsupported pandas dtype {text!r}.")
        return text if text in _PANDAS_DTYPES else np.dtype(text)

    def _index(self, node):
        if not isinstance(node, dict) or set(node) != {"values", "dtype", "name"}:
            raise _fail(self.path, "malformed DataFrame index.")
        values, name = node["values"], self(node["name"])
        if isinstance(values, dict) and values.get("$type") == "range":
            _check_keys(values, ["items"], self.path)
            items = self._list(values, "items")
            if len(items) != 3 or not all(type(v) is int for v in items):
                raise _fail(self.path, "malformed DataFrame index.")
            return pd.RangeIndex(*items, name=name)
        array = self(values)
        if not isinstance(array, np.ndarray) or array.ndim != 1:
            raise _fail(self.path, "malformed DataFrame index.")
        return pd.Index(array, dtype=self._pandas_dtype(node["dtype"]), name=name)

    def _frame(self, node):
        _check_keys(node, ["index", "columns", "dtypes", "data"], self.path)
        index, columns = self._index(node["index"]), self._index(node["columns"])
        data, dtypes = self._list(node, "data"), self._list(node, "dtypes")
        if not len(data) == len(dtypes) == len(columns):
            raise _fail(self.path, "malformed 'DataFrame' entry (columns).")
        series = {}
        for j, (column, dtype) in enumerate(zip(data, dtypes)):
            values = self(column)
            if not isinstance(values, np.ndarray) or values.shape != (len(index),):
                raise _fail(self.path, "malformed 'DataFrame' entry (column values).")
            series[j] = pd.Series(values, index=index, dtype=self._pandas_dtype(dtype))
        frame = pd.DataFrame(series, index=index)
        frame.columns = columns
        return frame

    def _text(self, node):
        _check_keys(node, ["value"], self.path)
        if not isinstance(node["value"], str):
            raise _fail(self.path, f"malformed {node['$type']!r} entry.")
        return node["value"]

    def _path(self, node):
        return pathlib.Path(self._text(node))

    def _device(self, node):
        try:
            return torch.device(self._text(node))
        except (RuntimeError, ValueError):
            raise _fail(self.path, f"unknown torch device {node['value']!r}.") from None

    def _random_state(self, node):
        _check_keys(node, ["state"], self.path)
        rng = np.random.RandomState()
        try:
            rng.set_state(self(node["state"]))
        except (TypeError, ValueError):
            raise _fail(self.path, "malformed 'RandomState' entry.") from None
        return rng

    def _object(self, node):
        _check_keys(node, ["class", "params"], self.path)
        name, params = node["class"], node["params"]
        classes = _parameter_classes()
        if name not in classes:
            raise _fail(
                self.path,
                f"names the class {name!r}, which is not one of the skavae "
                f"classes a parameter in a model file may hold "
                f"({', '.join(classes)}).",
            )
        if not isinstance(params, dict):
            raise _fail(self.path, f"malformed parameters of {name}.")
        return _build(classes[name], self.params(params), self.path)

    def params(self, node):
        """Decode a name -> value mapping."""
        return {str(name): self(value) for name, value in node.items()}


def _build(cls, params, path):
    known = cls().get_params(deep=False)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise _fail(
            path,
            f"{cls.__name__} has no parameter(s) {', '.join(unknown)} in this "
            "skavae version (was the file written by a newer one?).",
        )
    return cls(**params)
