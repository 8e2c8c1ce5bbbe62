"""Model registry: `config.model.name` picks the module that builds the model.

Model modules live in the method packages (mer_jax/methods/<family>/, listed in each package's
``MODEL_MODULES``); this package holds the registry and the layers they share. Every model module defines

- ``NAMES``: the model names it builds (default: the module's own name);
- ``default_config()``: an ``ml_collections.ConfigDict`` of every key the
  family reads, with its default and meaning;
- ``create(config, *, num_classes, input_shape, rngs)``: the Flax NNX module
  for inputs of ``input_shape`` (one example's shape, of any rank).

A new model is one such file in a method package, named in its
``MODEL_MODULES``, plus one config in configs/; nothing else is edited. ``config.model.name`` may also be a dotted module path
(``my_lab.models.tiny``) to a module with ``default_config`` and ``create``
outside this package.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

import jax
import ml_collections
from flax import nnx


@functools.cache
def _families() -> dict[str, ModuleType]:
    """Model name -> the module of a method package that builds it."""
    from mer_jax import methods  # the method packages' models use this package's layers

    names = {}
    for package in methods.packages().values():
        for module_name in getattr(package, "MODEL_MODULES", ()):
            module = importlib.import_module(f"{package.__name__}.{module_name}")
            for name in getattr(module, "NAMES", (module_name,)):
                names[name] = module
    return names


def method_of(name: str) -> str:
    """The method package (mer_jax/methods/) whose models include `name`; '' for a dotted module path."""
    if "." in name:
        return ""
    module = model_module(name)
    return module.__name__.split(".")[2]


def model_names() -> tuple[str, ...]:
    """Every model name the method packages build."""
    return tuple(_families())


def model_module(name: str) -> ModuleType:
    """The module that builds model `name` (a name of a method package's model, or a dotted module path)."""
    if "." in name:
        try:
            module = importlib.import_module(name)
        except ImportError as error:
            raise ValueError(f"model.name {name!r}: cannot import that module ({error})") from error
        missing = [attr for attr in ("default_config", "create") if not callable(getattr(module, attr, None))]
        if missing:
            raise ValueError(f"model.name {name!r}: the module defines no {' or '.join(f'{m}()' for m in missing)}")
        return module
    families = _families()
    if name not in families:
        raise ValueError(f"unknown model.name {name!r}; valid: {', '.join(families)} or a dotted module path")
    return families[name]


def model_config(name: str) -> ml_collections.ConfigDict:
    """The keys model `name` reads, with their defaults, and `name` itself: a config's `config.model`."""
    config = model_module(name).default_config()
    config.name = name
    return config


def create_model(
    config: Mapping[str, Any], *, num_classes: int, input_shape: Sequence[int], rngs: nnx.Rngs
) -> nnx.Module:
    """Builds the model `config['name']` for examples of `input_shape`.

    Keys the model reads but `config` lacks take the model's defaults; a key
    the model does not read is an error (a value given for nothing).
    """
    config = dict(config.to_dict() if isinstance(config, ml_collections.ConfigDict) else config)
    name = config["name"]
    merged = model_config(name)
    unknown = sorted(set(config) - set(merged))
    if unknown:
        raise ValueError(
            f"model {name!r} does not read model.{', model.'.join(unknown)}; it reads: {', '.join(sorted(merged))}"
        )
    merged.update(config)
    return model_module(name).create(
        merged, num_classes=num_classes, input_shape=tuple(int(d) for d in input_shape), rngs=rngs
    )


def count_params(model: nnx.Module) -> int:
    """Trainable parameters: weights, biases and BatchNorm scale/bias; running statistics excluded."""
    return sum(int(leaf.size) for leaf in jax.tree_util.tree_leaves(nnx.state(model, nnx.Param)))
