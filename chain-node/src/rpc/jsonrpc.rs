//! The JSON-RPC 2.0 envelope: parsing single calls and batches, and building responses.
//!
//! A call without an `id` member is a notification: it is executed but never answered, alone or
//! in a batch (a batch of notifications only gets no answer at all). `"id": null` is a request
//! like any other and is answered with a null id. A malformed entry is always answered (with a
//! null id), since whether it meant to be a notification cannot be told.

use serde_json::{json, Value};
use sluice_protocol::rpc::{code, RpcError};

/// One well-formed call.
#[derive(Debug)]
pub struct Call {
    /// `None` for a notification (no `id` member), which gets no answer.
    pub id: Option<Value>,
    pub method: String,
    pub params: Value,
}

/// A request body: one call, a batch, or an error answered as a whole.
pub enum Parsed {
    Single(Result<Call, Value>),
    Batch(Vec<Result<Call, Value>>),
    Invalid(Value),
}

pub fn error(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
    }
}

pub fn ok_response(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

pub fn err_response(id: Value, err: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": err.code, "message": err.message}})
}

/// Parses a body that fits the size limit.
pub fn parse(bytes: &[u8], max_batch: usize) -> Parsed {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return Parsed::Invalid(err_response(
                Value::Null,
                &error(code::PARSE_ERROR, format!("parse error: {e}")),
            ))
        }
    };
    match value {
        Value::Array(items) if items.is_empty() => Parsed::Invalid(err_response(
            Value::Null,
            &error(code::INVALID_REQUEST, "empty batch"),
        )),
        Value::Array(items) if items.len() > max_batch => Parsed::Invalid(err_response(
            Value::Null,
            &error(
                code::LIMIT_EXCEEDED,
                format!(
                    "batch of {} calls exceeds the limit of {max_batch}",
                    items.len()
                ),
            ),
        )),
        Value::Array(items) => Parsed::Batch(items.into_iter().map(call).collect()),
        other => Parsed::Single(call(other)),
    }
}

fn call(v: Value) -> Result<Call, Value> {
    let Value::Object(mut obj) = v else {
        return Err(err_response(
            Value::Null,
            &error(code::INVALID_REQUEST, "a call must be a JSON object"),
        ));
    };
    let id = obj.remove("id");
    if !matches!(
        id,
        None | Some(Value::Null | Value::Number(_) | Value::String(_))
    ) {
        return Err(err_response(
            Value::Null,
            &error(
                code::INVALID_REQUEST,
                "id must be a number, a string or null",
            ),
        ));
    }
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err(err_response(
            id.unwrap_or(Value::Null),
            &error(code::INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\""),
        ));
    }
    let Some(Value::String(method)) = obj.remove("method") else {
        return Err(err_response(
            id.unwrap_or(Value::Null),
            &error(code::INVALID_REQUEST, "\"method\" must be a string"),
        ));
    };
    let params = obj.remove("params").unwrap_or(Value::Null);
    Ok(Call { id, method, params })
}

/// Joins the answers (`None` for each notification) the way they were asked: an array for a
/// batch, one object otherwise; nothing at all when every call was a notification.
pub fn assemble(batch: bool, responses: Vec<Option<Value>>) -> Option<String> {
    let mut answered: Vec<Value> = responses.into_iter().flatten().collect();
    match (batch, answered.pop()) {
        (_, None) => None,
        (false, Some(single)) => Some(single.to_string()),
        (true, Some(last)) => {
            answered.push(last);
            Some(Value::Array(answered).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        assert!(matches!(parse(b"{", 10), Parsed::Invalid(_)));
        assert!(matches!(parse(b"[]", 10), Parsed::Invalid(_)));
        assert!(matches!(parse(b"[1,2,3]", 2), Parsed::Invalid(_)));
        match parse(br#"{"jsonrpc":"2.0","id":1,"method":"x"}"#, 10) {
            Parsed::Single(Ok(c)) => assert_eq!(c.method, "x"),
            _ => panic!("expected a call"),
        }
        match parse(br#"[{"jsonrpc":"1.0","id":1,"method":"x"}, 5]"#, 10) {
            Parsed::Batch(v) => assert!(v.iter().all(|c| c.is_err())),
            _ => panic!("expected a batch"),
        }
    }

    #[test]
    fn a_missing_id_is_a_notification_a_null_id_is_not() {
        match parse(br#"{"jsonrpc":"2.0","method":"x"}"#, 10) {
            Parsed::Single(Ok(c)) => assert_eq!(c.id, None),
            _ => panic!("expected a call"),
        }
        match parse(br#"{"jsonrpc":"2.0","id":null,"method":"x"}"#, 10) {
            Parsed::Single(Ok(c)) => assert_eq!(c.id, Some(Value::Null)),
            _ => panic!("expected a call"),
        }
        // Malformed without an id: still answered, with a null id.
        match parse(br#"{"jsonrpc":"2.0","method":1}"#, 10) {
            Parsed::Single(Err(e)) => assert_eq!(e["id"], Value::Null),
            _ => panic!("expected an error"),
        }
    }

    #[test]
    fn notifications_get_no_entry_and_all_notifications_no_body() {
        let a = json!({"id": 1});
        assert_eq!(assemble(false, vec![None]), None);
        assert_eq!(assemble(true, vec![None, None]), None);
        assert_eq!(
            assemble(true, vec![None, Some(a.clone()), None]),
            Some(json!([a]).to_string())
        );
        assert_eq!(assemble(false, vec![Some(a.clone())]), Some(a.to_string()));
    }
}
