"""Estimated cost of an LLM call from its token counts, for the models whose price gati knows.

Prices are USD per 1,000,000 tokens, as published by each provider; a model not listed has no
known price, and gati records no cost for it rather than a guess.
"""

from typing import Dict, Optional

MODEL_PRICING: Dict[str, Dict[str, float]] = {
    "gpt-4": {"input": 30.0, "output": 60.0},
    "gpt-4-32k": {"input": 60.0, "output": 120.0},
    "gpt-4-turbo": {"input": 10.0, "output": 30.0},
    "gpt-4o": {"input": 2.5, "output": 10.0},
    "gpt-4o-mini": {"input": 0.15, "output": 0.6},
    "gpt-3.5-turbo": {"input": 0.5, "output": 1.5},
    "claude-3-opus": {"input": 15.0, "output": 75.0},
    "claude-3-sonnet": {"input": 3.0, "output": 15.0},
    "claude-3-haiku": {"input": 0.25, "output": 1.25},
    "gemini-2-5-flash-lite": {"input": 0.1, "output": 0.4},
    "gemini-2-5-pro": {"input": 1.25, "output": 10.0},
    "gemini-pro": {"input": 0.5, "output": 1.5},
}


def normalize_model_name(model: str) -> str:
    """The key of MODEL_PRICING a provider's model name belongs to (`gpt-4-0613` -> `gpt-4`)."""
    if not model:
        return ""
    name = model.strip().lower()
    if "gpt-4-turbo" in name:
        return "gpt-4-turbo"
    if name.startswith("gpt-4-32k") or "32k" in name:
        return "gpt-4-32k"
    if name.startswith("gpt-4") and "gpt-4o" not in name:
        return "gpt-4"
    if "gpt-4o-mini" in name:
        return "gpt-4o-mini"
    if "gpt-4o" in name:
        return "gpt-4o"
    if name.startswith("gpt-3.5-turbo"):
        return "gpt-3.5-turbo"
    for family in ("claude-3-opus", "claude-3-sonnet", "claude-3-haiku"):
        if family in name:
            return family
    if "gemini" in name:
        if "2-5-pro" in name or "2.5-pro" in name:
            return "gemini-2-5-pro"
        if "2-5-flash-lite" in name or "2.5-flash-lite" in name:
            return "gemini-2-5-flash-lite"
        if "pro" in name:
            return "gemini-pro"
    return name


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
