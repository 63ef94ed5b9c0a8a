"""Estimated cost of an LLM call from its token counts, for the models whose price gati knows.

Prices are USD per 1,000,000 tokens, as published by each provider; a model not listed has no
known price, and gati records no cost for it rather than a guess. The prices and the rules that
map a provider's model name to them live in `gati/prices.json`, the one table the backend reads
too (for the spans it receives over OpenTelemetry), so both give a call the same cost.
"""

import json
from importlib import resources
from typing import Any, Dict, List, Optional

_TABLE: Dict[str, Any] = json.loads(resources.files("gati").joinpath("prices.json").read_text(encoding="utf-8"))

MODEL_PRICING: Dict[str, Dict[str, float]] = _TABLE["models"]
_RULES: List[Dict[str, Any]] = _TABLE["rules"]


def _matches(rule: Dict[str, Any], name: str) -> bool:
    return (
        name.startswith(rule.get("prefix", ""))
        and all(s in name for s in rule.get("all", ()))
        and ("any" not in rule or any(s in name for s in rule["any"]))
        and not any(s in name for s in rule.get("none", ()))
    )


def normalize_model_name(model: str) -> str:
    """The key of MODEL_PRICING a provider's model name belongs to (`gpt-4-0613` -> `gpt-4`)."""
    if not model:
        return ""
    name = model.strip().lower()
    return next((rule["model"] for rule in _RULES if _matches(rule, name)), name)


def price(model: str, input_tokens: int, output_tokens: int) -> Optional[float]:
    """USD for this call, rounded to a millionth; None when the model's price is unknown."""
    pricing = MODEL_PRICING.get(normalize_model_name(model or ""))
    if pricing is None:
        return None
    try:
        total = int(input_tokens or 0) * pricing["input"] / 1e6 + int(output_tokens or 0) * pricing["output"] / 1e6
    except (TypeError, ValueError):
        return None
    return round(total, 6)


def calculate_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    """gati 0.0.3's name: like `price`, but 0.0 for a model whose price is unknown."""
    return price(model, input_tokens, output_tokens) or 0.0


__all__ = ["MODEL_PRICING", "normalize_model_name", "price", "calculate_cost"]
