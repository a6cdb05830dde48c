//! `Option<[u8; 32]>` as CBOR null or a 32-byte byte string (parent links).

use serde::{Deserialize, Deserializer, Serializer};

/// Serialise.
pub fn serialize<S: Serializer>(v: &Option<[u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(h) => s.serialize_bytes(h),
        None => s.serialize_none(),
    }
}

/// Deserialise, refusing any length but 32.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<[u8; 32]>, D::Error> {
    let v: Option<serde_bytes::ByteBuf> = Option::deserialize(d)?;
    v.map(|b| {
        <[u8; 32]>::try_from(b.as_slice())
            .map_err(|_| serde::de::Error::custom("hash must be 32 bytes"))
    })
    .transpose()
}
