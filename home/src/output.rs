//! What a command prints: readable text, or one JSON object with `--json` for scripts.

/// Prints `value` as one JSON line when `json`, else `text`.
pub fn print(json: bool, value: &serde_json::Value, text: &str) {
    match json {
        true => println!("{value}"),
        false => println!("{text}"),
    }
}

/// Prints an address for a person: its `sl1…` text, or with `hex` the wire form (for what takes
/// only hex, the chain's genesis); the JSON holds both.
pub fn print_address(json: bool, address: &sluice_protocol::Address, hex: bool) {
    let text = match hex {
        true => address.to_string(),
        false => address.to_text(),
    };
    let value = serde_json::json!({ "address": address.to_text(), "hex": address.to_string() });
    print(json, &value, &text);
}
