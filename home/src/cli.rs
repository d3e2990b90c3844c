//! Command-line arguments every binary reads the same way.

use sluice_protocol::text::TextError;
use sluice_protocol::Address;

/// Why a command-line argument is not an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressArgError {
    /// Hex is the wire form: a typo in it still names a key, just not the one meant.
    #[error("hex has no checksum to catch a typo; give the address as its sl1… text (the `address` command prints it)")]
    Hex,
    /// Not `sl1…` text, or one whose checksum does not match.
    #[error("not an sl1… address: {0}")]
    Text(#[from] TextError),
}

/// The value parser of every address argument (`value_parser = parse_address_arg`): `sl1…`
/// text in either case, so a mistyped or truncated address is refused by its checksum before
/// anything is signed, instead of sending funds to a key nobody holds.
pub fn parse_address_arg(s: &str) -> Result<Address, AddressArgError> {
    let s = s.trim();
    match Address::parse_text(s) {
        Ok(a) => Ok(a),
        Err(_) if s.parse::<Address>().is_ok() => Err(AddressArgError::Hex),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_parses_hex_and_typos_are_refused() {
        let a = Address([5; 32]);
        let text = a.to_text();
        assert_eq!(parse_address_arg(&text), Ok(a));
        assert_eq!(parse_address_arg(&text.to_uppercase()), Ok(a));
        assert_eq!(parse_address_arg(&a.to_string()), Err(AddressArgError::Hex));
        let mut typo = text.clone();
        let last = if typo.ends_with('q') { "p" } else { "q" };
        typo.replace_range(typo.len() - 1.., last);
        assert_eq!(
            parse_address_arg(&typo),
            Err(AddressArgError::Text(TextError::BadChecksum))
        );
    }
}
