//! The values of rows: every cell is a hash of the table's seed, the key, the version and the
//! column, mapped onto the column's kind and role (names, e-mail addresses, URLs, HTML, JSON
//! documents, user agents, codes, enums, decimals, dates, UUIDs, IPv4 addresses, arrays,
//! objects), with NULLs in nullable columns, the truncation marker where the schema allows it,
//! and texts that exercise every TSV, CSV and COPY escape.
//!
//! Generating a cell is on the hot path of the large objects the benchmarks download, so texts
//! are borrowed from static pools where they can be, and the hash is a few multiplications.

use std::borrow::Cow;

use super::EPOCH;
use super::column::{Column, Field, Kind, Role, TRUNCATED};
use super::record::{Cell, ipv4_text, uuid_text};
use super::table::Table;
use super::texts::*;

pub(super) fn key_cell(table: &Table, key: u64) -> Cell {
    match table.key.kind {
        Kind::Uuid => Cell::Uuid(uuid_bits(
            hash(table.seed, key, 0, 1),
            hash(table.seed, key, 0, 2),
        )),
        Kind::Text(_) => Cell::Text(Cow::Owned(format!("{key:08}"))),
        _ => Cell::Int(key as i64),
    }
}

/// The value of `column` in version `version` of `key`, changed at `ts`.
pub(super) fn value(
    table: &Table,
    column: &Column,
    key: u64,
    version: i64,
    index: u64,
    ts: i64,
) -> Cell {
    let h = hash(table.seed, key, version as u64, 100 + index);
    match column.role {
        Role::CreatedAt => {
            let age = hash(table.seed, key, 0, 99) % (180 * 86_400);
            return Cell::Time(EPOCH - age as i64);
        }
        Role::ChangedAt => return Cell::Time(ts),
        Role::Added => {
            return match table.changed_at {
                Some(at) if ts >= at => Cell::Text(Cow::Owned(format!("note {key}.{version}"))),
                _ => Cell::Null,
            };
        }
        _ => {}
    }
    if !column.required && h.is_multiple_of(5) {
        return Cell::Null;
    }
    cell(column.kind, column.role, column.name, key, h / 5)
}

/// A value of `kind` for a column (or property) called `name`.
fn cell(kind: &Kind, role: Role, name: &str, key: u64, h: u64) -> Cell {
    match kind {
        Kind::Int(bits) => Cell::Int(match (role, bits) {
            (Role::Reference, 64) => 10_000_000_000_000 + (h % 5_000) as i64,
            (Role::Reference, _) => 1 + (h % 5_000) as i64,
            (_, 16) => (h % 1_000) as i64,
            (_, 32) => (h % 100_000) as i64,
            _ => (h % 10_000_000_000) as i64,
        }),
        Kind::IntEnum(values) => {
            // Most requests succeed.
            let ok = values.contains(&200) && !h.is_multiple_of(3);
            Cell::Int(if ok {
                200
            } else {
                values[(h / 3 % values.len() as u64) as usize]
            })
        }
        Kind::Float(_) => Cell::Float((h % 100_001) as f64 / 100.0),
        Kind::Number => Cell::Float((h % 2_000_000) as f64 / 100.0),
        Kind::Decimal { precision, scale } => decimal(*precision, *scale, h),
        Kind::Bool => Cell::Bool(h & 1 == 1),
        Kind::Enum(values) => Cell::Text(Cow::Borrowed(values[(h % values.len() as u64) as usize])),
        Kind::Timestamp => Cell::Time(EPOCH + (h % (365 * 86_400)) as i64),
        Kind::Date => Cell::Date(EPOCH / 86_400 + (h % 730) as i64 - 365),
        Kind::Time => Cell::Clock((h % 86_400) as u32),
        Kind::Uuid => Cell::Uuid(uuid_bits(h, mix(h))),
        Kind::Ipv4 => Cell::Ipv4(ipv4(h)),
        Kind::Text(max) => clamp(text(role, name, key, h), *max),
        Kind::Truncatable(_) if h % 29 == 7 => Cell::Text(Cow::Borrowed(TRUNCATED)),
        Kind::Truncatable(max) => clamp(text(role, name, key, h), *max),
        Kind::Array(item) => {
            let items = (0..h % 4)
                .map(|index| {
                    let h = mix(h ^ (index + 1));
                    cell(item, Role::Plain, name, key, h).to_json()
                })
                .collect();
            Cell::Json(serde_json::Value::Array(items))
        }
        Kind::Object(fields) => object(fields, key, h),
        Kind::JsonObject => Cell::Json(serde_json::json!({
            "content": h & 1 == 1,
            "points": h & 2 == 2,
            "due_dates": h & 4 == 4,
            "note": pick(TEXTS, h >> 3),
        })),
    }
}

/// A nested object: optional properties are sometimes absent.
fn object(fields: &[Field], key: u64, h: u64) -> Cell {
    let mut object = serde_json::Map::new();
    for (index, field) in fields.iter().enumerate() {
        let h = mix(h ^ index as u64);
        if !field.required && h.is_multiple_of(4) {
            continue; // absent
        }
        let role = Role::of(field.name, &field.kind);
        let value = cell(&field.kind, role, field.name, key, h / 4).to_json();
        object.insert(field.name.to_owned(), value);
    }
    Cell::Json(object.into())
}

/// A decimal of the column's precision, in steps of 0.25 (numbers a binary float holds
/// exactly, so `multipleOf` checks agree), at most 100.
fn decimal(precision: u32, scale: u32, h: u64) -> Cell {
    let whole = 10_u64
        .saturating_pow(precision.saturating_sub(scale))
        .min(100);
    let quarters = (h % (whole * 4)) as i64;
    let (units, scale) = match scale {
        0 => (quarters / 4, 0),
        1 => (quarters / 2 * 5, 1),
        _ => (quarters * 25 * 10_i64.pow(scale.min(12) - 2), scale.min(12)),
    };
    Cell::Decimal {
        units,
        scale: scale as u8,
    }
}

/// A text for a column of `role`.
fn text(role: Role, name: &str, key: u64, h: u64) -> Cow<'static, str> {
    match role {
        Role::PersonName => Cow::Owned(concat(&[pick(FIRST, h), " ", pick(LAST, h / 13)])),
        Role::SortableName => Cow::Owned(concat(&[pick(LAST, h / 13), ", ", pick(FIRST, h)])),
        Role::ShortName => Cow::Borrowed(pick(FIRST, h)),
        Role::Email => Cow::Owned(format!("student{key}.{}@example.edu", h % 97)),
        Role::Url => Cow::Owned(format!(
            "https://canvas.example.edu/courses/{}/assignments/{}?module_item_id={key}&q=a%20b",
            h % 900,
            h % 7_001
        )),
        Role::UuidText => Cow::Owned(uuid_text(uuid_bits(h, mix(h)))),
        Role::TimeZone => Cow::Borrowed(pick(ZONES, h)),
        Role::Locale => Cow::Borrowed(pick(LOCALES, h)),
        Role::ExternalId => Cow::Owned(format!("{name}-{key}-{:x}", h % 65_536)),
        Role::IpText => Cow::Owned(ipv4_text(ipv4(h))),
        Role::Html => Cow::Borrowed(pick(HTML, h)),
        Role::JsonText => Cow::Borrowed(pick(JSON_TEXTS, h)),
        Role::UserAgent => Cow::Borrowed(pick(USER_AGENTS, h)),
        Role::Code => Cow::Owned(format!("{}-{:03}", pick(SUBJECTS, h), h % 500)),
        Role::Label if h.is_multiple_of(3) => Cow::Borrowed(pick(TEXTS, h / 3)),
        Role::Label => Cow::Owned(format!("{} {}", pick(SUBJECTS, h), h % 1_000)),
        _ => Cow::Borrowed(pick(TEXTS, h)),
    }
}

/// The parts, joined (without the formatting machinery: this is per cell).
fn concat(parts: &[&str]) -> String {
    let mut text = String::with_capacity(parts.iter().map(|part| part.len()).sum());
    parts.iter().for_each(|part| text.push_str(part));
    text
}

/// `text` cut to `max` characters (the schema's `maxLength`).
fn clamp(text: Cow<'static, str>, max: Option<u32>) -> Cell {
    match max {
        Some(max) if text.len() > max as usize && text.chars().count() > max as usize => {
            Cell::Text(Cow::Owned(text.chars().take(max as usize).collect()))
        }
        _ => Cell::Text(text),
    }
}

/// A version 4 UUID's 128 bits from two hashes.
fn uuid_bits(high: u64, low: u64) -> u128 {
    let high = (high & !0xf000) | 0x4000; // version 4
    let low = (low & !(0xc << 60)) | (0x8 << 60); // RFC 4122 variant
    (u128::from(high) << 64) | u128::from(low)
}

/// A private or documentation-range IPv4 address.
fn ipv4(h: u64) -> u32 {
    const PREFIXES: [u32; 3] = [0x0A00_0000, 0xC0A8_0000, 0xCB00_7100]; // 10/8, 192.168/16, 203.0.113/24
    let masks = [0x00FF_FFFF, 0x0000_FFFF, 0x0000_00FF];
    let which = (h % 3) as usize;
    PREFIXES[which] | ((h >> 8) as u32 & masks[which])
}

/// SplitMix64's finaliser: a good 64-bit mix.
pub(super) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub(super) fn hash(seed: u64, key: u64, version: u64, salt: u64) -> u64 {
    mix(seed ^ mix(key ^ mix(version ^ mix(salt))))
}

pub(super) fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4_and_ips_are_private_or_documentation() {
        let text = uuid_text(uuid_bits(u64::MAX, 0));
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
        for h in 0..30 {
            let ip = ipv4_text(ipv4(mix(h)));
            assert!(
                ip.starts_with("10.") || ip.starts_with("192.168.") || ip.starts_with("203.0.113."),
                "{ip}"
            );
        }
    }

    #[test]
    fn decimals_stay_inside_their_precision_in_quarter_steps() {
        for h in 0..500 {
            let Cell::Decimal { units, scale } = decimal(6, 2, mix(h)) else {
                panic!("decimal");
            };
            assert_eq!(scale, 2);
            assert!((0..10_000).contains(&units) && units % 25 == 0, "{units}");
        }
        assert!(matches!(decimal(5, 0, 7), Cell::Decimal { scale: 0, .. }));
    }

    #[test]
    fn texts_respect_max_length_in_characters() {
        let cell = clamp(Cow::Borrowed("Ünïcödé: café"), Some(5));
        assert_eq!(cell, Cell::Text(Cow::Borrowed("Ünïcö")));
    }
}
