//! A bounded protobuf wire-format reader for `tf.train.Example`.
//!
//! Only the messages of `tensorflow/core/example/{example,feature}.proto`
//! are understood:
//!
//! ```text
//! Example   { Features features = 1; }
//! Features  { map<string, Feature> feature = 1; }   // entries: key = 1, value = 2
//! Feature   { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
//!                          Int64List int64_list = 3; } }
//! BytesList { repeated bytes value = 1; }
//! FloatList { repeated float value = 1 [packed = true]; }
//! Int64List { repeated int64 value = 1 [packed = true]; }
//! ```
//!
//! The nesting is fixed, so there is no recursion; every length is checked
//! against the bytes that remain, so nothing is allocated from a length the
//! input declares. Stricter than protobuf itself, so that every reader
//! agrees on the meaning: unknown fields, repeated singular fields (which
//! protobuf merges), repeated map keys (last one wins) and a `Feature` with
//! no or several lists are refused. Packed and unpacked encodings of the
//! repeated numeric fields are both accepted, as the specification requires.

/// A wire value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Wire<'a> {
    Varint(u64),
    I64,
    Len(&'a [u8]),
    I32(u32),
}

/// Which list a feature holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Bytes,
    Float,
    Int64,
}

/// One element of a feature's list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Value<'a> {
    Bytes(&'a [u8]),
    Float(f32),
    Int64(i64),
}

/// Reads a base-128 varint of at most 10 bytes.
fn varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    let mut value: u64 = 0;
    for i in 0..10u32 {
        let Some(&b) = buf.get(*pos) else {
            return Err("a varint runs past the end of its message".to_owned());
        };
        *pos += 1;
        // The tenth byte may only carry the top bit of a 64-bit value.
        if i == 9 && b > 1 {
            return Err("a varint is longer than 64 bits".to_owned());
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err("a varint is longer than 10 bytes".to_owned())
}

/// Walks the fields of one message.
pub(crate) fn for_each_field<'a>(
    buf: &'a [u8],
    mut f: impl FnMut(u32, Wire<'a>) -> Result<(), String>,
) -> Result<(), String> {
    let mut pos = 0;
    while pos < buf.len() {
        let tag = varint(buf, &mut pos)?;
        let field =
            u32::try_from(tag >> 3).map_err(|_| "a field number is too large".to_owned())?;
        if field == 0 {
            return Err("field number 0".to_owned());
        }
        let wire = match tag & 7 {
            0 => Wire::Varint(varint(buf, &mut pos)?),
            1 => {
                pos = pos
                    .checked_add(8)
                    .filter(|&end| end <= buf.len())
                    .ok_or("a 64-bit field runs past the end of its message")?;
                Wire::I64
            }
            2 => {
                let len = varint(buf, &mut pos)?;
                let end = usize::try_from(len)
                    .ok()
                    .and_then(|l| pos.checked_add(l))
                    .filter(|&end| end <= buf.len())
                    .ok_or("a length-delimited field runs past the end of its message")?;
                let body = buf.get(pos..end).unwrap_or_default();
                pos = end;
                Wire::Len(body)
            }
            5 => {
                let bytes = buf
                    .get(pos..pos.saturating_add(4))
                    .filter(|b| b.len() == 4)
                    .ok_or("a 32-bit field runs past the end of its message")?;
                pos += 4;
                let mut arr = [0u8; 4];
                arr.copy_from_slice(bytes);
                Wire::I32(u32::from_le_bytes(arr))
            }
            w => return Err(format!("wire type {w} (groups or reserved) is not allowed")),
        };
        f(field, wire)?;
    }
    Ok(())
}

fn wire_name(w: &Wire<'_>) -> &'static str {
    match w {
        Wire::Varint(_) => "varint",
        Wire::I64 => "64-bit",
        Wire::Len(_) => "length-delimited",
        Wire::I32(_) => "32-bit",
    }
}

/// Walks an `Example`, calling `visit(name, kind, list)` for each feature
/// in the order stored. An error from `visit` stops the walk and comes back
/// as [`ExampleError::Visit`].
pub(crate) fn parse_example<'a, E>(
    buf: &'a [u8],
    mut visit: impl FnMut(&'a str, Kind, &'a [u8]) -> Result<(), E>,
) -> Result<(), ExampleError<E>> {
    let mut features: Option<&'a [u8]> = None;
    for_each_field(buf, |field, wire| match (field, wire) {
        (1, Wire::Len(body)) if features.is_none() => {
            features = Some(body);
            Ok(())
        }
        (1, Wire::Len(_)) => Err("Example.features appears twice".to_owned()),
        (f, w) => Err(format!(
            "unexpected field {f} ({}) in Example",
            wire_name(&w)
        )),
    })
    .map_err(ExampleError::Proto)?;
    let Some(features) = features else {
        return Ok(());
    };
    let mut entries: Vec<&'a [u8]> = Vec::new();
    for_each_field(features, |field, wire| match (field, wire) {
        (1, Wire::Len(entry)) => {
            entries.push(entry);
            Ok(())
        }
        (f, w) => Err(format!(
            "unexpected field {f} ({}) in Features",
            wire_name(&w)
        )),
    })
    .map_err(ExampleError::Proto)?;
    for entry in entries {
        let (name, kind, list) = parse_entry(entry).map_err(ExampleError::Proto)?;
        visit(name, kind, list).map_err(ExampleError::Visit)?;
    }
    Ok(())
}

/// Why an `Example` was refused.
#[derive(Debug)]
pub(crate) enum ExampleError<E> {
    /// Malformed protobuf, or outside the allow-list.
    Proto(String),
    /// The visitor refused a feature.
    Visit(E),
}

/// One map entry of `Features.feature`: its key and the single list of its
/// `Feature` value.
fn parse_entry(entry: &[u8]) -> Result<(&str, Kind, &[u8]), String> {
    let mut key: Option<&[u8]> = None;
    let mut value: Option<&[u8]> = None;
    for_each_field(entry, |field, wire| match (field, wire) {
        (1, Wire::Len(k)) if key.is_none() => {
            key = Some(k);
            Ok(())
        }
        (2, Wire::Len(v)) if value.is_none() => {
            value = Some(v);
            Ok(())
        }
        (1 | 2, Wire::Len(_)) => Err("a feature map entry repeats its key or value".to_owned()),
        (f, w) => Err(format!(
            "unexpected field {f} ({}) in a feature map entry",
            wire_name(&w)
        )),
    })?;
    let (Some(key), Some(value)) = (key, value) else {
        return Err("a feature map entry lacks its key or its value".to_owned());
    };
    let name = std::str::from_utf8(key).map_err(|_| "a feature name is not UTF-8".to_owned())?;
    let mut list: Option<(Kind, &[u8])> = None;
    for_each_field(value, |field, wire| {
        let kind = match (field, &wire) {
            (1, Wire::Len(_)) => Kind::Bytes,
            (2, Wire::Len(_)) => Kind::Float,
            (3, Wire::Len(_)) => Kind::Int64,
            (f, w) => {
                return Err(format!(
                    "unexpected field {f} ({}) in Feature",
                    wire_name(w)
                ));
            }
        };
        if list.is_some() {
            return Err(format!("feature {name:?} holds more than one value list"));
        }
        if let Wire::Len(body) = wire {
            list = Some((kind, body));
        }
        Ok(())
    })?;
    let Some((kind, body)) = list else {
        return Err(format!("feature {name:?} holds no value list"));
    };
    Ok((name, kind, body))
}

/// Calls `f` on every element of a `BytesList`, `FloatList` or `Int64List`
/// and returns the number of elements.
pub(crate) fn for_each_value<'a>(
    kind: Kind,
    list: &'a [u8],
    mut f: impl FnMut(Value<'a>),
) -> Result<u64, String> {
    let mut count: u64 = 0;
    for_each_field(list, |field, wire| {
        match (kind, field, wire) {
            (Kind::Bytes, 1, Wire::Len(b)) => {
                f(Value::Bytes(b));
                count += 1;
            }
            (Kind::Float, 1, Wire::I32(bits)) => {
                f(Value::Float(f32::from_bits(bits)));
                count += 1;
            }
            (Kind::Float, 1, Wire::Len(packed)) => {
                if packed.len() % 4 != 0 {
                    return Err("a packed float list's length is not a multiple of 4".to_owned());
                }
                for chunk in packed.chunks_exact(4) {
                    let mut arr = [0u8; 4];
                    arr.copy_from_slice(chunk);
                    f(Value::Float(f32::from_le_bytes(arr)));
                    count += 1;
                }
            }
            (Kind::Int64, 1, Wire::Varint(v)) => {
                f(Value::Int64(v as i64));
                count += 1;
            }
            (Kind::Int64, 1, Wire::Len(packed)) => {
                let mut pos = 0;
                while pos < packed.len() {
                    let v = varint(packed, &mut pos)?;
                    f(Value::Int64(v as i64));
                    count += 1;
                }
            }
            (_, field, wire) => {
                return Err(format!(
                    "unexpected field {field} ({}) in a value list",
                    wire_name(&wire)
                ));
            }
        }
        Ok(())
    })?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints() {
        let mut pos = 0;
        assert_eq!(varint(&[0x96, 0x01], &mut pos), Ok(150));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        pos = 0;
        assert_eq!(varint(&max, &mut pos), Ok(u64::MAX));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        pos = 0;
        assert!(varint(&over, &mut pos).is_err());
        pos = 0;
        assert!(varint(&[0x80; 11], &mut pos).is_err());
        pos = 0;
        assert!(varint(&[0x80], &mut pos).is_err());
    }

    #[test]
    fn lists_packed_and_unpacked() {
        // Int64List: packed [1, -1], then unpacked 5.
        let mut list = vec![0x0a, 11, 0x01];
        list.extend([0xff; 9]);
        list.push(0x01);
        list.extend([0x08, 0x05]);
        let mut got = Vec::new();
        let n = for_each_value(Kind::Int64, &list, |v| got.push(v)).unwrap();
        assert_eq!(n, 3);
        assert_eq!(got, [Value::Int64(1), Value::Int64(-1), Value::Int64(5)]);
        // FloatList unpacked 1.5.
        let mut list = vec![0x0d];
        list.extend(1.5f32.to_le_bytes());
        assert_eq!(for_each_value(Kind::Float, &list, |_| {}).unwrap(), 1);
        // Wrong wire type for the list.
        assert!(for_each_value(Kind::Bytes, &[0x08, 0x01], |_| {}).is_err());
        assert!(for_each_value(Kind::Float, &[0x0a, 0x03, 0, 0, 0], |_| {}).is_err());
    }
}
