//! The cost of an LLM call, from gati's one price table (`sdk/gati/prices.json`), which the
//! SDK's `gati/utils/cost_calculator.py` reads too: the same model and tokens cost the same
//! whether the SDK recorded the call or an OpenTelemetry instrumentation did.

use std::{collections::HashMap, sync::LazyLock};

use serde::Deserialize;

/// Compiled in: the binary needs no file at run time, and a table that does not parse fails the
/// tests below, not a user's request.
const TABLE: &str = include_str!("../../../sdk/gati/prices.json");

#[derive(Deserialize)]
struct Table {
    /// USD per 1,000,000 tokens.
    models: HashMap<String, Price>,
    rules: Vec<Rule>,
}

#[derive(Deserialize)]
struct Price {
    input: f64,
    output: f64,
}

/// Matches a lowercased, trimmed model name that starts with `prefix`, contains every string of
/// `all`, at least one of `any` (when given) and none of `none`.
#[derive(Deserialize)]
struct Rule {
    model: String,
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    all: Vec<String>,
    any: Option<Vec<String>>,
    #[serde(default)]
    none: Vec<String>,
}

impl Rule {
    fn matches(&self, name: &str) -> bool {
        name.starts_with(&self.prefix)
            && self.all.iter().all(|s| name.contains(s.as_str()))
            && self.any.as_ref().is_none_or(|any| any.iter().any(|s| name.contains(s.as_str())))
            && !self.none.iter().any(|s| name.contains(s.as_str()))
    }
}

static PRICES: LazyLock<Table> =
    LazyLock::new(|| serde_json::from_str(TABLE).expect("sdk/gati/prices.json is checked by the tests"));

/// The table's name for a provider's model name (`gpt-4-0613` → `gpt-4`), as
/// `normalize_model_name` in Python says it.
pub fn normalize(model: &str) -> String {
    let name = model.trim().to_lowercase();
    match PRICES.rules.iter().find(|rule| rule.matches(&name)) {
        Some(rule) => rule.model.clone(),
        None => name,
    }
}

/// USD for a call, rounded to a millionth as the SDK rounds it; `None` for a model whose price
/// is unknown (no guess is recorded).
pub fn cost(model: &str, tokens_in: u64, tokens_out: u64) -> Option<f64> {
    let price = PRICES.models.get(&normalize(model))?;
    let total = tokens_in as f64 * price.input / 1e6 + tokens_out as f64 * price.output / 1e6;
    Some(round6(total))
}

/// Python's `round(x, 6)`: the correctly rounded decimal, ties to even. Formatting with a
/// precision rounds the exact binary value the same way; parsing it back is Python's strtod.
fn round6(x: f64) -> f64 {
    format!("{x:.6}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases sdk/tests/test_prices.py checks against the Python calculator.
    const CASES: &str = include_str!("../../../sdk/tests/price_cases.json");

    #[derive(Deserialize)]
    struct Case {
        model: String,
        tokens_in: u64,
        tokens_out: u64,
        cost: Option<f64>,
        normalized: String,
    }

    #[test]
    fn costs_match_the_python_calculators() {
        #[derive(Deserialize)]
        struct Cases {
            cases: Vec<Case>,
        }
        let cases: Cases = serde_json::from_str(CASES).unwrap();
        assert!(cases.cases.len() > 50);
        for case in cases.cases {
            let what = format!("{:?} with {} in, {} out", case.model, case.tokens_in, case.tokens_out);
            assert_eq!(normalize(&case.model), case.normalized, "{what}");
            assert_eq!(cost(&case.model, case.tokens_in, case.tokens_out), case.cost, "{what}");
        }
    }

    #[test]
    fn the_table_parses_and_every_rule_names_a_priced_model() {
        for rule in &PRICES.rules {
            assert!(PRICES.models.contains_key(&rule.model), "rule for {:?} has no price", rule.model);
        }
        for model in PRICES.models.keys() {
            assert_eq!(&normalize(model), model);
        }
    }

    #[test]
    fn ties_round_to_even_as_python_does() {
        assert_eq!(round6(0.0078125), 0.007812);
        assert_eq!(cost("gpt-4o-mini", 1200, 700), Some(0.0006));
        assert_eq!(cost("some-local-model", 10, 10), None);
        assert_eq!(cost("gpt-4o", u64::MAX, u64::MAX).map(f64::is_finite), Some(true));
    }
}
