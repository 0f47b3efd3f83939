//! The committed `schema.graphql` is the schema the code builds, and the schema documents
//! itself.

use serde_json::{json, Value};

use crate::helpers::*;

const BUILT_IN_SCALARS: [&str; 5] = ["String", "Int", "Float", "Boolean", "ID"];

#[test]
fn committed_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    let current = convene::graphql::schema::sdl();
    assert!(
        committed == current,
        "schema.graphql is out of date with the code: run `cargo run -- export-schema` and commit the result"
    );
}

fn described(v: &Value) -> bool {
    v["description"]
        .as_str()
        .is_some_and(|d| !d.trim().is_empty())
}

#[tokio::test]
async fn every_type_field_argument_and_value_has_a_description() {
    let app = spawn_app().await;
    let r = app
        .gql(
            None,
            "{ __schema { types { name kind description
                fields(includeDeprecated: true) { name description args { name description } }
                inputFields { name description }
                enumValues(includeDeprecated: true) { name description } } } }",
            json!({}),
        )
        .await;
    let types = r["data"]["__schema"]["types"]
        .as_array()
        .unwrap_or_else(|| panic!("no types: {r}"));

    let mut missing = Vec::new();
    let mut checked = 0;
    for t in types {
        let name = t["name"].as_str().unwrap_or_default();
        if name.starts_with("__") || BUILT_IN_SCALARS.contains(&name) {
            continue;
        }
        checked += 1;
        if !described(t) {
            missing.push(format!("type {name}"));
        }
        for (list, what) in [
            ("fields", "field"),
            ("inputFields", "input field"),
            ("enumValues", "enum value"),
        ] {
            for item in t[list].as_array().into_iter().flatten() {
                if !described(item) {
                    missing.push(format!(
                        "{what} {name}.{}",
                        item["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    for t in types {
        let name = t["name"].as_str().unwrap_or_default();
        if name.starts_with("__") {
            continue;
        }
        for field in t["fields"].as_array().into_iter().flatten() {
            for arg in field["args"].as_array().into_iter().flatten() {
                if !described(arg) {
                    missing.push(format!(
                        "argument {name}.{}({})",
                        field["name"].as_str().unwrap_or("?"),
                        arg["name"].as_str().unwrap_or("?")
                    ));
                }
            }
        }
    }
    // The account types at least: the check must have looked at something.
    assert!(checked >= 10, "only {checked} types checked: {r}");
    assert!(
        missing.is_empty(),
        "these lack a description:\n  {}",
        missing.join("\n  ")
    );
}
