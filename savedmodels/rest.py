"""Client-side request bodies for TF Serving, and the server's JSON-to-tensor mapping, offline.

TF Serving (not installable here, reference.md §6) maps a REST body to signature inputs
by fixed rules; reproducing them lets tests check that the bodies in docs/serving.md
really fit our signatures, and lets users validate a body without a server:

* `{"instances": [...]}` (row form): one entry per example; an entry is a dict of named
  inputs, or the bare value when the signature has a single input. Entries are stacked
  into the batch dimension.
* `{"inputs": ...}` (columnar form): a dict of named, already batched inputs, or the
  bare batched value for a single-input signature.
* `{"b64": "..."}` stands for binary data (a DT_STRING element, e.g. `image_bytes`).
* `"signature_name"` picks the signature; `serving_default` when absent.
"""

from __future__ import annotations

import base64

import numpy as np

DEFAULT_SIGNATURE = "serving_default"


def b64(data: bytes) -> dict:
    """The JSON form of one binary string."""
    return {"b64": base64.b64encode(data).decode("ascii")}


def rest_body(inputs: dict, signature_name: str | None = None, form: str = "instances") -> dict:
    """A REST predict body for `inputs` ({input name: batched array, or list of bytes}).

    Bytes become `{"b64": ...}`; arrays become nested lists. `form` is "instances" (row)
    or "inputs" (columnar).
    """
    if form not in ("instances", "inputs"):
        raise ValueError(f"`form` must be 'instances' or 'inputs'. Received: form={form!r}")
    columns = {name: _to_json(value) for name, value in inputs.items()}
    body = {} if signature_name in (None, DEFAULT_SIGNATURE) else {"signature_name": signature_name}
    if form == "inputs":
        body["inputs"] = columns
    else:
        sizes = {name: len(column) for name, column in columns.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"All inputs need the same batch size for the row form. Received sizes {sizes}")
        batch = next(iter(sizes.values()))
        body["instances"] = [{name: column[i] for name, column in columns.items()} for i in range(batch)]
    return body


def _to_json(value):
    if isinstance(value, (bytes, bytearray)):
        return b64(bytes(value))
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "SO":
            return [_to_json(v) for v in value.tolist()]
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    return value


def parse_rest_body(body: dict, signatures: dict) -> tuple[str, dict]:
    """(signature name, {input name: numpy array}) as TF Serving would feed `body`.

    `signatures` maps signature names to their input specs ({input name: tf.TensorSpec}),
    e.g. `input_specs(tf.saved_model.load(path))`. Errors name the offending input and
    what the signature accepts.
    """
    if not isinstance(body, dict):
        raise ValueError(f"A predict body is a JSON object. Received: {type(body).__name__}")
    name = body.get("signature_name", DEFAULT_SIGNATURE)
    if name not in signatures:
        raise ValueError(f"Unknown signature_name {name!r}. The model has: {', '.join(sorted(signatures))}")
    specs = signatures[name]
    forms = [key for key in ("instances", "inputs") if key in body]
    if len(forms) != 1:
        raise ValueError(f"A predict body has exactly one of 'instances' or 'inputs'. Received keys: {sorted(body)}")
    data = body[forms[0]]
    if forms[0] == "instances":
        if not isinstance(data, list) or not data:
            raise ValueError("'instances' must be a non-empty list (one entry per example)")
        if all(isinstance(row, dict) and "b64" not in row for row in data):
            columns = {key: [row.get(key) for row in data] for key in data[0]}
            for i, row in enumerate(data):
                if set(row) != set(data[0]):
                    raise ValueError(f"instances[{i}] has inputs {sorted(row)}, instances[0] has {sorted(data[0])}")
        else:
            columns = {_single_input(specs, name): data}
    else:
        if isinstance(data, dict) and "b64" not in data:
            columns = dict(data)
        else:
            columns = {_single_input(specs, name): data}
    unknown = set(columns) - set(specs)
    missing = set(specs) - set(columns)
    if unknown or missing:
        raise ValueError(
            f"Signature {name!r} takes inputs {sorted(specs)}. Received {sorted(columns)} "
            f"(unknown: {sorted(unknown)}, missing: {sorted(missing)})"
        )
    return name, {key: _to_array(columns[key], specs[key], key) for key in specs}


def _single_input(specs, name):
    if len(specs) != 1:
        raise ValueError(f"Signature {name!r} has several inputs {sorted(specs)}; name them in the body")
    return next(iter(specs))


def _decode(value):
    if isinstance(value, dict):
        if set(value) != {"b64"}:
            raise ValueError(f"A JSON object inside a tensor must be {{'b64': ...}}. Received keys {sorted(value)}")
        return base64.b64decode(value["b64"], validate=True)
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _to_array(value, spec, key):
    decoded = _decode(value)
    if spec.dtype.name == "string":
        array = np.array(decoded, dtype=object)
        flat = array.reshape(-1)
        if not all(isinstance(v, bytes) for v in flat):
            raise ValueError(f"Input {key!r} is a string tensor: send each element as {{'b64': ...}}")
    else:
        try:
            array = np.asarray(decoded, dtype=spec.dtype.as_numpy_dtype)
        except (TypeError, ValueError) as error:
            raise ValueError(f"Input {key!r} must be {spec.dtype.name} numbers: {error}") from None
    expected = spec.shape
    if expected.rank is not None and (array.ndim != expected.rank or not expected.is_compatible_with(array.shape)):
        raise ValueError(
            f"Input {key!r} must have shape {expected.as_list()} (None = any). Received shape {list(array.shape)}"
        )
    return array


def input_specs(loaded) -> dict:
    """{signature name: {input name: tf.TensorSpec}} of a loaded SavedModel."""
    specs = {}
    for name, fn in loaded.signatures.items():
        args, kwargs = fn.structured_input_signature
        specs[name] = dict(kwargs) if kwargs else {spec.name: spec for spec in args}
    return specs
