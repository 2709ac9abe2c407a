//! A validator for the subset of JSON Schema (draft 2020-12) that `schemas/` uses, so the
//! tests can check the tools' real output against the schemas without a schema crate.
//!
//! Supported: `type` (a name or a list), `properties`, `required`, `additionalProperties`,
//! `items`, `enum`, `const`, `minimum`, `oneOf`, `anyOf` and `$ref` to `#/$defs/<name>`;
//! `$schema`, `$id`, `$defs`, `title` and `description` are annotations. Any other keyword
//! is an error, so a schema cannot lean on a rule this validator would silently skip.

use serde_json::Value;

/// A loaded schema: the root, where `$ref`s are resolved.
pub struct Schema {
    root: Value,
}

const ANNOTATIONS: [&str; 5] = ["$schema", "$id", "$defs", "title", "description"];

impl Schema {
    pub fn new(root: Value) -> Schema {
        Schema { root }
    }

    /// Load a schema file (the tests name `schemas/<record>.schema.json` from their own
    /// crate, so it follows the checkout they run from).
    pub fn load(path: &std::path::Path) -> Schema {
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Schema::new(
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        )
    }

    /// The errors of `value` against the schema (empty: valid). With `strict`, an object
    /// field the schema does not declare is an error too (the tests use it to keep each
    /// schema complete; the contract lets readers meet new fields).
    pub fn errors(&self, value: &Value, strict: bool) -> Vec<String> {
        let mut out = Vec::new();
        self.check(&self.root, value, "$", strict, &mut out);
        out
    }

    /// Panic with every error unless `value` is valid in strict mode.
    pub fn assert_valid(&self, value: &Value, what: &str) {
        let errors = self.errors(value, true);
        assert!(errors.is_empty(), "{what}: {errors:#?}\n{value}");
    }

    fn resolve<'a>(&'a self, reference: &str) -> &'a Value {
        let name = reference
            .strip_prefix("#/$defs/")
            .unwrap_or_else(|| panic!("unsupported $ref {reference}"));
        self.root
            .get("$defs")
            .and_then(|d| d.get(name))
            .unwrap_or_else(|| panic!("$ref {reference} names no definition"))
    }

    // One arm per JSON Schema keyword the schemas use.
    #[allow(clippy::too_many_lines)]
    fn check(&self, schema: &Value, v: &Value, at: &str, strict: bool, out: &mut Vec<String>) {
        let Some(obj) = schema.as_object() else {
            if schema == &Value::Bool(false) {
                out.push(format!("{at}: not allowed"));
            }
            return;
        };
        for (key, rule) in obj {
            match key.as_str() {
                k if ANNOTATIONS.contains(&k) => {}
                "$ref" => self.check(
                    self.resolve(rule.as_str().unwrap_or("")),
                    v,
                    at,
                    strict,
                    out,
                ),
                "type" => {
                    let names: Vec<&str> = match rule {
                        Value::String(s) => vec![s.as_str()],
                        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("{at}: bad type {rule}"),
                    };
                    if !names.iter().any(|n| has_type(v, n)) {
                        out.push(format!("{at}: {v} is not of type {}", names.join(" or ")));
                    }
                }
                "enum" => {
                    let options = rule.as_array().expect("enum is an array");
                    if !options.contains(v) {
                        out.push(format!("{at}: {v} is not one of {rule}"));
                    }
                }
                "const" => {
                    if rule != v {
                        out.push(format!("{at}: {v} is not {rule}"));
                    }
                }
                "minimum" => {
                    if let (Some(n), Some(min)) = (v.as_f64(), rule.as_f64()) {
                        if n < min {
                            out.push(format!("{at}: {v} is less than {rule}"));
                        }
                    }
                }
                "required" => {
                    if let Some(o) = v.as_object() {
                        for name in rule.as_array().expect("required is an array") {
                            let name = name.as_str().expect("required names are strings");
                            if !o.contains_key(name) {
                                out.push(format!("{at}: no field {name:?}"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let Some(o) = v.as_object() {
                        let props = rule.as_object().expect("properties is an object");
                        for (name, sub) in props {
                            if let Some(field) = o.get(name) {
                                self.check(sub, field, &format!("{at}.{name}"), strict, out);
                            }
                        }
                    }
                }
                "additionalProperties" => {}
                "items" => {
                    if let Some(a) = v.as_array() {
                        for (i, item) in a.iter().enumerate() {
                            self.check(rule, item, &format!("{at}[{i}]"), strict, out);
                        }
                    }
                }
                "oneOf" | "anyOf" => {
                    let options = rule.as_array().expect("oneOf/anyOf is an array");
                    let passing = options
                        .iter()
                        .filter(|o| {
                            let mut e = Vec::new();
                            self.check(o, v, at, strict, &mut e);
                            e.is_empty()
                        })
                        .count();
                    let ok = if key == "oneOf" {
                        passing == 1
                    } else {
                        passing >= 1
                    };
                    if !ok {
                        out.push(format!("{at}: {v} matches {passing} of the {key} options"));
                    }
                }
                other => {
                    panic!("{at}: the schema uses {other:?}, which this validator does not know")
                }
            }
        }
        // Fields beyond `properties`: refused by `additionalProperties` (false or a
        // schema), and by strict mode.
        if let Some(o) = v.as_object() {
            let declared = obj.get("properties").and_then(Value::as_object);
            let extra = obj.get("additionalProperties");
            if declared.is_some() || extra.is_some() {
                for (name, field) in o {
                    if declared.is_some_and(|d| d.contains_key(name)) {
                        continue;
                    }
                    match extra {
                        Some(Value::Bool(false)) => {
                            out.push(format!("{at}: field {name:?} is not allowed"));
                        }
                        Some(sub @ Value::Object(_)) => {
                            self.check(sub, field, &format!("{at}.{name}"), strict, out);
                        }
                        _ if strict => {
                            out.push(format!("{at}: field {name:?} is not in the schema"));
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

fn has_type(v: &Value, name: &str) -> bool {
    match name {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        "number" => v.is_number(),
        "integer" => v.is_u64() || v.is_i64(),
        other => panic!("unknown type {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Schema {
        Schema::new(json!({
            "$defs": {"count": {"type": "integer", "minimum": 0}},
            "type": "object",
            "required": ["n", "k"],
            "properties": {
                "n": {"$ref": "#/$defs/count"},
                "k": {"enum": ["a", "b"]},
                "f": {"const": "x"},
                "p": {"oneOf": [{"type": "string"}, {"type": "object", "required": ["bytes"]}]},
                "l": {"type": "array", "items": {"type": "boolean"}}
            }
        }))
    }

    #[test]
    fn valid_values_pass() {
        let s = schema();
        let v = json!({"n": 3, "k": "a", "f": "x", "p": {"bytes": "AA=="}, "l": [true]});
        assert_eq!(s.errors(&v, true), Vec::<String>::new());
    }

    #[test]
    fn each_rule_is_enforced() {
        let s = schema();
        let cases = [
            json!({"k": "a"}),
            json!({"n": -1, "k": "a"}),
            json!({"n": 1.5, "k": "a"}),
            json!({"n": 1, "k": "c"}),
            json!({"n": 1, "k": "a", "f": "y"}),
            json!({"n": 1, "k": "a", "p": 3}),
            json!({"n": 1, "k": "a", "l": [1]}),
            json!("not an object"),
        ];
        for v in cases {
            assert!(!s.errors(&v, false).is_empty(), "{v} passed");
        }
    }

    #[test]
    fn strict_mode_refuses_undeclared_fields() {
        let s = schema();
        let v = json!({"n": 1, "k": "a", "new": 1});
        assert!(s.errors(&v, false).is_empty());
        assert_eq!(s.errors(&v, true).len(), 1);
    }

    #[test]
    #[should_panic(expected = "does not know")]
    fn an_unknown_keyword_is_refused() {
        Schema::new(json!({"pattern": "x"})).errors(&json!("x"), false);
    }
}
