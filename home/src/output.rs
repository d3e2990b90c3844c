//! What a command prints: readable text, or one JSON object with `--json` for scripts.

/// Prints `value` as one JSON line when `json`, else `text`.
pub fn print(json: bool, value: &serde_json::Value, text: &str) {
    match json {
        true => println!("{value}"),
        false => println!("{text}"),
    }
}
