"""A catalog back to its canonical YAML form (what `guidebot catalog import` stores)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import yaml

from guidebot.knowledge.catalog import FAQ, Catalog, Center, Fee, Item, Material


def _faqs(faqs: tuple[FAQ, ...]) -> list[dict[str, str]]:
    return [{"q": faq.question, "a": faq.answer} for faq in faqs]


def _material(material: Material) -> dict[str, Any]:
    out: dict[str, Any] = {"name": material.name}
    for key in ("form", "copies", "note", "form_url"):
        value = getattr(material, key)
        if value not in ("", None):
            out[key] = value
    return out


def _fee(fee: Fee) -> dict[str, Any]:
    out: dict[str, Any] = {"free": fee.free}
    if fee.amount:
        out["amount"] = fee.amount
    if fee.basis:
        out["basis"] = fee.basis
    return out


def item_to_dict(item: Item) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in fields(Item):
        value = getattr(item, spec.name)
        if value in ("", (), None) or (spec.name == "sample" and value is False):
            continue
        if spec.name == "materials":
            value = [_material(m) for m in value]
        elif spec.name == "faqs":
            value = _faqs(value)
        elif spec.name == "fee":
            value = _fee(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[spec.name] = value
    return out


def center_to_dict(center: Center) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in fields(Center):
        value = getattr(center, spec.name)
        if value in ("", ()):
            continue
        out[spec.name] = _faqs(value) if spec.name == "faqs" else value
    return out


def catalog_to_yaml(catalog: Catalog) -> str:
    document = {"center": center_to_dict(catalog.center), "items": [item_to_dict(i) for i in catalog.items]}
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=120)
