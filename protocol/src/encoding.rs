//! The canonical binary encoding that every signature covers: fixed-width big-endian integers,
//! raw 32/64-byte arrays, one-byte enum tags and u32 length prefixes. JSON is never signed.

use crate::amount::{self, Amount};
use crate::hash::Hash32;
use crate::keys::{Address, Signature};

/// The largest canonical object any decoder accepts; bigger input is rejected before parsing.
pub const MAX_ENCODED_LEN: usize = 1 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input ends early")]
    Truncated,
    #[error("{0} bytes left over after the value")]
    TrailingBytes(usize),
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLong { len: usize, max: usize },
    #[error("unknown {what} tag {tag}")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("invalid boolean byte {0}")]
    InvalidBool(u8),
    #[error(transparent)]
    Amount(#[from] amount::AmountError),
    #[error("invalid field: {0}")]
    Invalid(&'static str),
}

/// Appends canonical fields to a buffer.
#[derive(Default)]
pub struct Writer(Vec<u8>);

impl Writer {
    pub fn new() -> Self {
        Writer(Vec::with_capacity(128))
    }
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u8(v as u8)
    }
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(v);
        self
    }
    pub fn hash(&mut self, v: &Hash32) -> &mut Self {
        self.raw(&v.0)
    }
    pub fn address(&mut self, v: &Address) -> &mut Self {
        self.raw(&v.0)
    }
    pub fn signature(&mut self, v: &Signature) -> &mut Self {
        self.raw(&v.0)
    }
    /// Variable-length bytes: a u32 length, then the bytes. Callers bound the length they write
    /// by the same limit their decoder enforces.
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.u32(v.len() as u32).raw(v)
    }
    /// A list: a u32 count, then each item.
    pub fn list<T: Canonical>(&mut self, items: &[T]) -> &mut Self {
        self.u32(items.len() as u32);
        for item in items {
            item.encode(self);
        }
        self
    }
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// Reads canonical fields from a byte slice, never past its end.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// A u64 that must be a valid [`Amount`] (at most `i64::MAX`).
    pub fn amount(&mut self) -> Result<Amount, DecodeError> {
        Ok(amount::check(self.u64()?)?)
    }
    pub fn bool(&mut self) -> Result<bool, DecodeError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(DecodeError::InvalidBool(b)),
        }
    }
    pub fn hash(&mut self) -> Result<Hash32, DecodeError> {
        self.array().map(Hash32)
    }
    pub fn address(&mut self) -> Result<Address, DecodeError> {
        self.array().map(Address)
    }
    pub fn signature(&mut self) -> Result<Signature, DecodeError> {
        self.array().map(Signature)
    }
    /// Variable-length bytes of at most `max` bytes.
    pub fn bytes(&mut self, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::TooLong { len, max });
        }
        self.take(len)
    }
    /// A list of at most `max` items. The count is checked before anything is allocated.
    pub fn list<T: Canonical>(&mut self, max: usize) -> Result<Vec<T>, DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::TooLong { len, max });
        }
        (0..len).map(|_| T::decode(self)).collect()
    }
    /// Fails unless every byte was consumed: one value has exactly one encoding.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// A value with one canonical byte encoding.
pub trait Canonical: Sized {
    fn encode(&self, w: &mut Writer);
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;

    fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.encode(&mut w);
        w.into_bytes()
    }

    /// Decodes exactly one value from `bytes`, bounded by [`MAX_ENCODED_LEN`].
    fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(DecodeError::TooLong {
                len: bytes.len(),
                max: MAX_ENCODED_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let v = Self::decode(&mut r)?;
        r.finish()?;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_big_endian() {
        let mut w = Writer::new();
        w.u32(1).u64(2).bool(true);
        assert_eq!(w.into_bytes(), vec![0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1]);
    }

    #[test]
    fn truncated_input_is_an_error() {
        assert_eq!(Reader::new(&[0, 0, 0]).u32(), Err(DecodeError::Truncated));
    }

    #[test]
    fn oversized_length_prefix_is_rejected_before_reading() {
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            r.bytes(16),
            Err(DecodeError::TooLong {
                len: u32::MAX as usize,
                max: 16
            })
        );
    }

    #[test]
    fn invalid_bool_and_amount_are_errors() {
        assert_eq!(Reader::new(&[2]).bool(), Err(DecodeError::InvalidBool(2)));
        let big = u64::MAX.to_be_bytes();
        assert!(matches!(
            Reader::new(&big).amount(),
            Err(DecodeError::Amount(_))
        ));
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let mut r = Reader::new(&[1, 2]);
        r.u8().unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
    }
}
