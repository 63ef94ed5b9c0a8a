"""The price table (gati/prices.json) gives the costs the SDK's calculator gave before it left
Python; the backend checks the same cases (backend/src/otlp/prices.rs), so both agree."""

import json
from pathlib import Path

import pytest

from gati.utils.cost_calculator import MODEL_PRICING, calculate_cost, normalize_model_name, price

CASES = json.loads((Path(__file__).parent / "price_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['model']!r}-{c['tokens_in']}-{c['tokens_out']}")
def test_price_matches_the_shared_expected_table(case):
    assert normalize_model_name(case["model"]) == case["normalized"]
    assert price(case["model"], case["tokens_in"], case["tokens_out"]) == case["cost"]
    assert calculate_cost(case["model"], case["tokens_in"], case["tokens_out"]) == (case["cost"] or 0.0)


def test_every_rule_names_a_priced_model_and_every_model_is_reachable():
    table = json.loads((Path(__file__).parents[1] / "gati" / "prices.json").read_text())
    assert table["models"] is MODEL_PRICING or table["models"] == MODEL_PRICING
    assert {rule["model"] for rule in table["rules"]} <= set(MODEL_PRICING)
    assert all(normalize_model_name(model) == model for model in MODEL_PRICING)


def test_the_0_0_3_numbers():
    # gati 0.0.3's MODEL_PRICING, by value: users' recorded costs keep their meaning.
    assert MODEL_PRICING["gpt-4o"] == {"input": 2.5, "output": 10.0}
    assert MODEL_PRICING["claude-3-opus"] == {"input": 15.0, "output": 75.0}
    assert len(MODEL_PRICING) == 12
    assert calculate_cost("gpt-4o-mini", 1200, 700) == pytest.approx(1200 * 0.15e-6 + 700 * 0.6e-6)
    assert price(None, 1, 1) is None and price("gpt-4o", "x", 1) is None
