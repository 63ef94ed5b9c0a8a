//! How deep a JSON text nests, found without parsing it: serde_json parses by recursion (and
//! stops at 128 levels), so what a service reads from a client or another service is measured
//! first, in one pass with no recursion and no allocation, and refused with the limit named.

/// The deepest nesting of arrays and objects in `text`: `0` for a scalar, `1` for `[1]`,
/// `2` for `{"a": [1]}`. Brackets inside strings do not count. Meant for text that is then
/// parsed: invalid JSON gets some number, and the parser says what is wrong with it.
pub fn nesting(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in text {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_arrays_and_objects_not_what_strings_hold() {
        assert_eq!(nesting(b"1"), 0);
        assert_eq!(nesting(b"\"[[[\""), 0);
        assert_eq!(nesting(br#"{"a": [1, {"b": "]]]}}\"[[["}], "c": []}"#), 3);
        assert_eq!(nesting(br#"["\\", [["\\\""]]]"#), 3);
        assert_eq!(nesting(b"]]]]"), 0);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(nesting(deep.as_bytes()), 100_000);
    }

    #[test]
    fn agrees_with_serde_json_on_what_it_parses() {
        let value = serde_json::json!({"a": [{"b": {"c": ["x]", {"d": []}]}}], "e": "{{"});
        assert_eq!(nesting(value.to_string().as_bytes()), 7);
    }
}
