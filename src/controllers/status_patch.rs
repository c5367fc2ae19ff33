//! The JSON merge patch that turns a stored status into a new one.
//!
//! A merge patch leaves alone what it does not mention, and our status
//! types skip empty lists and absent options when serialised — so a field
//! that became empty (the last address of a stopped server, a next slot
//! once suspended) would stay as it was for ever. Every field the old
//! status had and the new one lacks is sent as `null`.

use serde::Serialize;
use serde_json::Value;

/// `{"status": …}` that makes the stored `old` status equal `new`.
pub fn merge_patch<S: Serialize>(old: Option<&S>, new: &S) -> Value {
    let old = old
        .and_then(|o| serde_json::to_value(o).ok())
        .unwrap_or(Value::Null);
    let new = serde_json::to_value(new).unwrap_or(Value::Null);
    serde_json::json!({ "status": with_removals(&old, new) })
}

fn with_removals(old: &Value, new: Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(mut new)) => {
            for (key, old_value) in old {
                let merged = match new.remove(key) {
                    Some(new_value) => with_removals(old_value, new_value),
                    None => Value::Null,
                };
                new.insert(key.clone(), merged);
            }
            Value::Object(new)
        }
        (_, new) => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_that_went_away_are_nulled_nested_ones_too_and_lists_are_replaced() {
        let old = json!({"phase": "Running", "addresses": [{"ip": "10.0.0.1"}], "nested": {"a": 1, "b": 2}});
        let new = json!({"phase": "Stopped", "nested": {"a": 1}});
        assert_eq!(
            merge_patch(Some(&old), &new),
            json!({"status": {"phase": "Stopped", "addresses": null, "nested": {"a": 1, "b": null}}})
        );
        assert_eq!(
            merge_patch(None, &new),
            json!({"status": new}),
            "nothing stored yet: the new status as it is"
        );
    }
}
