//! Checksummed text for what people read, copy and type: addresses (`sl1…`) and invoices
//! (`slinv1…`), in bech32m (BIP-350).
//!
//! Hex has no checksum: one mistyped character in an address sends funds to a key nobody holds,
//! and a truncated string is caught late or not at all. Bech32m's checksum catches any single
//! mistyped character at every length used here (1,023 characters at most, the length of its
//! code) and up to four in a string as short as an address; its alphabet leaves out look-alikes
//! (`1`, `b`, `i`, `o`); its human-readable prefix says what a string is, so an address pasted
//! where an invoice belongs is refused by name; and it reads in one case, upper case fitting a
//! QR code's compact alphanumeric mode. Machines keep hex on the wire (JSON): this form is only
//! for people, and every decoder here bounds the length before it reads a character.

use crate::keys::Address;
use bech32::primitives::decode::{
    CharError, ChecksumError, UncheckedHrpstring, UncheckedHrpstringError,
};
use bech32::{Bech32m, Hrp};

/// Human-readable prefix of an address.
pub const ADDRESS_HRP: &str = "sl";
/// Length of an address's text: `sl`, `1`, 52 characters of key, 6 of checksum.
pub const ADDRESS_TEXT_LEN: usize = ADDRESS_HRP.len() + 1 + 52 + CHECKSUM_LEN;
/// Characters of checksum at the end of every string.
pub const CHECKSUM_LEN: usize = 6;
/// Longest string bech32m's checksum covers with its guarantees (its code length).
pub const MAX_TEXT_LEN: usize = 1023;
/// The bech32 alphabet, in value order.
pub const CHARSET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Why a string is not the checksummed text of what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{len} characters is longer than the {max} allowed")]
    TooLong { len: usize, max: usize },
    #[error("expected a string starting \"{expected}1\", not \"{got}\"")]
    WrongHrp { expected: &'static str, got: String },
    #[error("mixes upper and lower case; use one case throughout")]
    MixedCase,
    #[error("{c:?} at position {pos} is not a bech32 character")]
    BadChar { c: char, pos: usize },
    #[error("checksum does not match: a character is mistyped or missing")]
    BadChecksum,
    #[error("not in canonical form (padding bits set)")]
    NonCanonical,
    #[error("holds {got} bytes, expected {expected}")]
    WrongLength { expected: usize, got: usize },
}

/// Encodes `bytes` under `hrp`, lower case. Fails only past [`MAX_TEXT_LEN`].
pub fn encode(hrp: &'static str, bytes: &[u8]) -> Result<String, TextError> {
    bech32::encode_lower::<Bech32m>(Hrp::parse_unchecked(hrp), bytes).map_err(|_| {
        TextError::TooLong {
            len: hrp.len() + 1 + (bytes.len() * 8).div_ceil(5) + CHECKSUM_LEN,
            max: MAX_TEXT_LEN,
        }
    })
}

/// Decodes text made by [`encode`] under `hrp`: one case, either one; at most `max_len`
/// characters, checked before anything is decoded; checksum and padding verified.
pub fn decode(hrp: &'static str, s: &str, max_len: usize) -> Result<Vec<u8>, TextError> {
    check_prefix(hrp, s)?;
    let max = max_len.min(MAX_TEXT_LEN);
    if s.len() > max {
        return Err(TextError::TooLong { len: s.len(), max });
    }
    check_chars(hrp.len() + 1, s)?;
    let checked = UncheckedHrpstring::new(s)
        .map_err(parse_error)?
        .validate_and_remove_checksum::<Bech32m>()
        .map_err(checksum_error)?;
    checked
        .validate_segwit_padding()
        .map_err(|_| TextError::NonCanonical)?;
    Ok(checked.byte_iter().collect())
}

/// The string must start with `hrp` and the separator, in either case. Reads at most the first
/// 84 bytes, whatever the string's length.
fn check_prefix(hrp: &'static str, s: &str) -> Result<(), TextError> {
    let (b, n) = (s.as_bytes(), hrp.len());
    if b.len() > n && b[..n].eq_ignore_ascii_case(hrp.as_bytes()) && b[n] == b'1' {
        return Ok(());
    }
    let head = &b[..b.len().min(84)];
    let end = match head.iter().position(|&c| c == b'1') {
        Some(i) if i > 0 => i + 1,
        _ => head.len().min(n + 1),
    };
    Err(TextError::WrongHrp {
        expected: hrp,
        got: String::from_utf8_lossy(&head[..end]).into_owned(),
    })
}

/// Every character after the prefix is in the bech32 alphabet (either case), so a stray `1`
/// or look-alike is named where it stands rather than misread as part of the prefix.
fn check_chars(start: usize, s: &str) -> Result<(), TextError> {
    let bad = s[start..]
        .char_indices()
        .find(|(_, c)| !CHARSET.contains(c.to_ascii_lowercase()));
    match bad {
        Some((i, c)) => Err(TextError::BadChar { c, pos: start + i }),
        None => Ok(()),
    }
}

fn parse_error(e: UncheckedHrpstringError) -> TextError {
    match e {
        UncheckedHrpstringError::Char(CharError::MixedCase) => TextError::MixedCase,
        // The prefix and the characters were checked: what is left is an empty data part.
        _ => TextError::BadChecksum,
    }
}

fn checksum_error(e: ChecksumError) -> TextError {
    match e {
        ChecksumError::CodeLength(l) => TextError::TooLong {
            len: l.encoded_length,
            max: l.code_length,
        },
        _ => TextError::BadChecksum,
    }
}

impl Address {
    /// The `sl1…` text a person reads and types (the wire keeps hex).
    pub fn to_text(&self) -> String {
        // 32 bytes always fit: the text is ADDRESS_TEXT_LEN characters.
        encode(ADDRESS_HRP, &self.0).unwrap_or_default()
    }

    /// Parses `sl1…` text, lower or upper case. Hex is refused: it has no checksum.
    pub fn parse_text(s: &str) -> Result<Address, TextError> {
        let bytes = decode(ADDRESS_HRP, s, ADDRESS_TEXT_LEN)?;
        let got = bytes.len();
        let key = bytes
            .try_into()
            .map_err(|_| TextError::WrongLength { expected: 32, got })?;
        Ok(Address(key))
    }
}

/// For `#[serde(with = "sluice_protocol::text::address_serde")]`: an address field in a file a
/// person reads and edits (the wallet's config), written and read as `sl1…` text.
pub mod address_serde {
    use crate::keys::Address;

    pub fn serialize<S: serde::Serializer>(a: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&a.to_text())
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        Address::parse_text(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_in_either_case() {
        let a = Address([7; 32]);
        let t = a.to_text();
        assert!(t.starts_with("sl1") && t.len() == ADDRESS_TEXT_LEN, "{t}");
        assert_eq!(Address::parse_text(&t), Ok(a));
        assert_eq!(Address::parse_text(&t.to_uppercase()), Ok(a));
    }

    #[test]
    fn hex_is_not_an_address_text() {
        let hex = Address([7; 32]).to_string();
        assert!(matches!(
            Address::parse_text(&hex),
            Err(TextError::WrongHrp { .. })
        ));
    }

    #[test]
    fn a_stray_one_or_look_alike_is_named_where_it_stands() {
        let mut t = Address([7; 32]).to_text();
        t.replace_range(10..11, "1");
        assert_eq!(
            Address::parse_text(&t),
            Err(TextError::BadChar { c: '1', pos: 10 })
        );
        t.replace_range(10..11, "o");
        assert_eq!(
            Address::parse_text(&t),
            Err(TextError::BadChar { c: 'o', pos: 10 })
        );
    }

    #[test]
    fn empty_and_prefix_only_strings_are_refused() {
        for s in ["", "s", "sl", "sl1", "SL1", "sl1qqqqq"] {
            assert!(Address::parse_text(s).is_err(), "{s:?} accepted");
        }
        assert_eq!(Address::parse_text("sl1"), Err(TextError::BadChecksum));
    }

    #[test]
    fn a_valid_string_of_the_wrong_length_is_refused_by_length() {
        let short = encode(ADDRESS_HRP, &[7; 31]).unwrap();
        assert_eq!(
            Address::parse_text(&short),
            Err(TextError::WrongLength {
                expected: 32,
                got: 31
            })
        );
    }

    #[test]
    fn encoding_past_the_code_length_is_an_error() {
        assert!(matches!(
            encode("slinv", &[0; 700]),
            Err(TextError::TooLong { .. })
        ));
    }

    #[test]
    fn nonzero_padding_is_not_canonical() {
        // The last data character of an address carries 4 padding bits; set one and
        // recompute the checksum so only the padding is wrong.
        let t = Address([7; 32]).to_text();
        let data = &t[3..t.len() - CHECKSUM_LEN];
        let last = data.chars().last().unwrap();
        let v = CHARSET.find(last).unwrap() | 1;
        let mut fes: Vec<bech32::Fe32> = data[..data.len() - 1]
            .chars()
            .map(|c| bech32::Fe32::from_char(c).unwrap())
            .collect();
        fes.push(bech32::Fe32::try_from(v as u8).unwrap());
        let hrp = Hrp::parse_unchecked(ADDRESS_HRP);
        use bech32::Fe32IterExt;
        let s: String = fes
            .into_iter()
            .with_checksum::<Bech32m>(&hrp)
            .chars()
            .collect();
        assert_eq!(Address::parse_text(&s), Err(TextError::NonCanonical));
    }
}
