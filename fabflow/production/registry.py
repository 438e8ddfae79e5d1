"""The product catalogue: built-ins and plugins from the ``fabflow.products`` entry points.

Products are found by name in orders. Worker processes find a product by its import path
(``module:Class``), so a product registered with ``register`` in the parent works in a freshly
spawned worker too, as long as its class lives at module level.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import threading
from importlib.metadata import entry_points
from typing import Any

from fabflow.errors import UnknownProduct as UnknownProduct  # re-exported for callers
from fabflow.production.products.base import Product

log = logging.getLogger(__name__)

ProductClass = type[Product[Any]]
_PRODUCTS: dict[str, ProductClass] = {}
_loaded = False
_load_lock = threading.Lock()  # API threads may ask for the catalogue at the same time


def register(product: ProductClass) -> ProductClass:
    """Add a product class to the catalogue (usable as a decorator); replaces a same-named one."""
    _PRODUCTS[product.name] = product
    return product


def unregister(name: str) -> None:
    """Remove a product (tests use this to undo ``register``)."""
    _PRODUCTS.pop(name, None)


def load_entry_points() -> None:
    """Import every product named in the ``fabflow.products`` entry points, once."""
    global _loaded
    if _loaded:
        return
    with _load_lock:
        if _loaded:
            return
        for ep in entry_points(group="fabflow.products"):
            try:
                product = ep.load()
            except Exception:  # a broken plugin must not take the catalogue down
                log.exception("could not load product %r from %s", ep.name, ep.value)
                continue
            _PRODUCTS.setdefault(product.name, product)
        _loaded = True  # only now: another thread must never see a half-filled catalogue


def products() -> dict[str, ProductClass]:
    """Every known product by name."""
    load_entry_points()
    return dict(_PRODUCTS)


def get(name: str) -> ProductClass:
    """The product called ``name``; raises ``UnknownProduct`` with the nearest name."""
    known = products()
    if name in known:
        return known[name]
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    raise UnknownProduct(name, close[0] if close else None)


def catalogue() -> list[dict[str, Any]]:
    """What the API publishes: each product's name, title, description and JSON Schema."""
    return [
        {
            "name": product.name,
            "title": product.title,
            "description": product.description,
            "parametersSchema": product.parameters.model_json_schema(by_alias=True),
        }
        for _, product in sorted(products().items())
    ]


def import_path(product: ProductClass) -> str:
    """``module:Class`` of a product, for a worker process to import it."""
    return f"{product.__module__}:{product.__qualname__}"


def load_path(path: str) -> ProductClass:
    """The product class at ``module:Class`` (the inverse of ``import_path``)."""
    module_name, _, qualname = path.partition(":")
    target: Any = importlib.import_module(module_name)
    for attribute in qualname.split("."):
        target = getattr(target, attribute)
    if not (isinstance(target, type) and issubclass(target, Product)):
        raise TypeError(f"{path} is not a Product class")
    return target
