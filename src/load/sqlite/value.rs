//! A condensed-TSV field as the SQLite value of its column, refused where PostgreSQL would
//! refuse it: SQLite itself takes any value in any column, so what the other databases check
//! (NOT NULL, integer ranges, `varchar(n)`, timestamps and dates that exist, enum labels,
//! UUIDs, JSON, no NUL in text) is checked here, and a table never holds in SQLite what it
//! could not hold in PostgreSQL. Timestamps are stored as naive UTC text
//! (`YYYY-MM-DD HH:MM:SS[.ffffff]`), UUIDs in lowercase, booleans as 0/1.

use rusqlite::types::Value;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use crate::load::error::ValueError;
use crate::load::layout::{ColType, Column};
use crate::load::tsv::unescape;

/// The value of `raw` (COPY text) in column `c`.
pub(super) fn value(c: &Column, raw: &[u8]) -> Result<Value, ValueError> {
    let Some(bytes) = unescape(raw) else {
        return null(c);
    };
    let text = String::from_utf8(bytes).map_err(|_| ValueError::NotUtf8)?;
    if text.contains('\0') {
        return Err(ValueError::Nul);
    }
    let int = |lo: i64, hi: i64| match text.parse::<i64>() {
        Ok(n) if (lo..=hi).contains(&n) => Ok(Value::Integer(n)),
        Ok(_) => Err(ValueError::OutOfRange { text: text.clone() }),
        Err(_) => Err(ValueError::NotInteger { text: text.clone() }),
    };
    Ok(match &c.ty {
        ColType::Int16 => int(i16::MIN.into(), i16::MAX.into())?,
        ColType::Int32 => int(i32::MIN.into(), i32::MAX.into())?,
        ColType::Int64 => int(i64::MIN, i64::MAX)?,
        ColType::Float32 | ColType::Float64 => match text.parse() {
            Ok(x) => Value::Real(x),
            Err(_) => return Err(ValueError::NotNumber { text }),
        },
        ColType::Decimal(p, s) => {
            decimal(&text, *p, *s)?;
            Value::Text(text)
        }
        ColType::Bool => Value::Integer(match text.as_str() {
            "t" | "true" | "TRUE" | "1" => 1,
            "f" | "false" | "FALSE" | "0" => 0,
            _ => return Err(ValueError::NotBoolean { text }),
        }),
        ColType::Varchar(n) => {
            let len = text.chars().count();
            if len as u64 > *n {
                return Err(ValueError::TooLong { len, max: *n });
            }
            Value::Text(text)
        }
        ColType::Timestamp => Value::Text(timestamp(&text)?),
        ColType::Date => {
            time::Date::parse(&text, format_description!("[year]-[month]-[day]"))
                .map_err(|_| ValueError::NotDate { text: text.clone() })?;
            Value::Text(text)
        }
        ColType::Time => {
            // `13:43:48Z` is stored as the other databases store it: `13:43:48`.
            let text = match text.strip_suffix('Z') {
                Some(naive) => naive.to_owned(),
                None => text,
            };
            time::Time::parse(
                &text,
                format_description!("[hour]:[minute]:[second][optional [.[subsecond]]]"),
            )
            .map_err(|_| ValueError::NotTime { text: text.clone() })?;
            Value::Text(text)
        }
        ColType::Uuid => Value::Text(uuid(&text)?),
        ColType::Enum(_, labels) => {
            if !labels.contains(&text) {
                return Err(ValueError::NotInEnum { text });
            }
            Value::Text(text)
        }
        ColType::Json => {
            if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_err() {
                return Err(ValueError::NotJson { text });
            }
            Value::Text(text)
        }
        // A list as its JSON text, as MySQL keeps it; its elements as PostgreSQL checks them.
        ColType::Array(elem) => {
            let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&text) else {
                return Err(ValueError::NotJsonArray { text });
            };
            let element = Column {
                name: c.name.clone(),
                label: c.label.clone(),
                ty: (**elem).clone(),
                nullable: true,
                key: false,
            };
            for item in &items {
                let raw = match item {
                    serde_json::Value::Null => continue,
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let mut escaped = bytes::BytesMut::new();
                crate::load::stream::copy_text(&ColType::Text, raw.as_bytes(), &mut escaped);
                value(&element, &escaped)?;
            }
            Value::Text(text)
        }
        ColType::Ipv4 | ColType::Ipv6 => {
            let v4 = matches!(c.ty, ColType::Ipv4);
            match text.parse::<std::net::IpAddr>() {
                Ok(std::net::IpAddr::V4(_)) if v4 => Value::Text(text),
                Ok(std::net::IpAddr::V6(a)) if !v4 => Value::Text(a.to_string()),
                _ => return Err(ValueError::NotIp { text }),
            }
        }
        ColType::Text => Value::Text(text),
    })
}

/// A column's value where the object has none (`\N`, or no field).
pub(super) fn null(c: &Column) -> Result<Value, ValueError> {
    if c.key || !c.nullable {
        return Err(ValueError::Null);
    }
    Ok(Value::Null)
}

/// An RFC 3339 time (or `YYYY-MM-DD HH:MM:SS[.f]`, naive UTC) as naive UTC text.
fn timestamp(text: &str) -> Result<String, ValueError> {
    let bad = || ValueError::NotTimestamp {
        text: text.to_owned(),
    };
    let t = match time::OffsetDateTime::parse(text, &Rfc3339) {
        Ok(t) => t.to_offset(time::UtcOffset::UTC),
        Err(_) => time::PrimitiveDateTime::parse(
            text,
            format_description!(
                "[year]-[month]-[day][first [T] [ ]][hour]:[minute]:[second][optional [.[subsecond]]]"
            ),
        )
        .map_err(|_| bad())?
        .assume_utc(),
    };
    Ok(crate::load::naive_utc(
        &t.format(&Rfc3339).map_err(|_| bad())?,
    ))
}

/// A UUID in PostgreSQL's output form (lowercase, hyphenated); it takes the same inputs:
/// 32 hex digits, hyphens after any group of four, optionally in braces.
fn uuid(text: &str) -> Result<String, ValueError> {
    let bad = || ValueError::NotUuid {
        text: text.to_owned(),
    };
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(text);
    let hex: String = inner.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32
        || !hex.chars().all(|c| c.is_ascii_hexdigit())
        || inner.starts_with('-')
        || inner.ends_with('-')
        || inner.contains("--")
    {
        return Err(bad());
    }
    let h = hex.to_ascii_lowercase();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    ))
}

/// Checks a `numeric(p, s)` value as PostgreSQL does: a number whose integer part has at most
/// `p - s` digits (the fraction is rounded, so its length does not matter).
fn decimal(text: &str, p: u32, s: u32) -> Result<(), ValueError> {
    let bad = || ValueError::NotNumber {
        text: text.to_owned(),
    };
    let n: f64 = text.trim().parse().map_err(|_| bad())?;
    if !n.is_finite() {
        return Err(bad());
    }
    let digits = text
        .trim()
        .trim_start_matches(['-', '+'])
        .split(['.', 'e', 'E'])
        .next()
        .unwrap_or("")
        .trim_start_matches('0')
        .len();
    let exp_digits = if text.contains(['e', 'E']) {
        // Rare: judge by magnitude.
        if n.abs() < 1.0 {
            0
        } else {
            n.abs().log10().floor() as usize + 1
        }
    } else {
        digits
    };
    if exp_digits > p.saturating_sub(s) as usize {
        return Err(ValueError::OutOfRange {
            text: text.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(ty: ColType, nullable: bool) -> Column {
        Column {
            name: "c".into(),
            label: "value.c".into(),
            ty,
            nullable,
            key: false,
        }
    }

    fn ok(ty: ColType, raw: &str) -> Value {
        value(&col(ty, true), raw.as_bytes()).unwrap()
    }

    fn refused(ty: ColType, raw: &str) -> ValueError {
        value(&col(ty, true), raw.as_bytes()).unwrap_err()
    }

    /// What PostgreSQL refuses, SQLite refuses too.
    #[test]
    fn values_postgresql_refuses_are_refused() {
        assert!(matches!(
            refused(ColType::Varchar(3), "abcd"),
            ValueError::TooLong { len: 4, max: 3 }
        ));
        assert_eq!(ok(ColType::Varchar(3), "äöü"), Value::Text("äöü".into()));
        for bad in ["not-a-time", "2025-13-45T99:99:99Z", "2025-02-30 00:00:00"] {
            assert!(
                matches!(
                    refused(ColType::Timestamp, bad),
                    ValueError::NotTimestamp { .. }
                ),
                "{bad}"
            );
        }
        assert_eq!(
            ok(ColType::Timestamp, "2025-01-02T03:04:05.5+01:00"),
            Value::Text("2025-01-02 02:04:05.5".into())
        );
        assert_eq!(
            ok(ColType::Timestamp, "2025-01-02 03:04:05"),
            Value::Text("2025-01-02 03:04:05".into())
        );
        let e = ColType::Enum("t__e".into(), vec!["a".into()]);
        assert!(matches!(
            refused(e.clone(), "b"),
            ValueError::NotInEnum { .. }
        ));
        assert_eq!(ok(e, "a"), Value::Text("a".into()));
        assert!(matches!(
            refused(ColType::Json, "{nope"),
            ValueError::NotJson { .. }
        ));
        assert!(matches!(
            refused(ColType::Int16, "40000"),
            ValueError::OutOfRange { .. }
        ));
        assert!(matches!(refused(ColType::Text, r"a\0b"), ValueError::Nul));
        assert!(matches!(
            refused(ColType::Date, "2025-02-30"),
            ValueError::NotDate { .. }
        ));
        assert_eq!(
            ok(ColType::Time, "13:43:48Z"),
            Value::Text("13:43:48".into())
        );
        assert!(matches!(
            refused(ColType::Time, "25:00:00"),
            ValueError::NotTime { .. }
        ));
        assert!(matches!(
            refused(ColType::Decimal(6, 2), "12345.6"),
            ValueError::OutOfRange { .. }
        ));
        assert_eq!(
            ok(ColType::Decimal(6, 2), "-1234.567"),
            Value::Text("-1234.567".into())
        );
        assert_eq!(
            ok(ColType::Uuid, "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}"),
            Value::Text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11".into())
        );
        assert!(matches!(
            refused(ColType::Uuid, "a0ee-x"),
            ValueError::NotUuid { .. }
        ));
    }

    #[test]
    fn a_null_in_a_key_or_required_column_is_refused() {
        assert!(matches!(
            value(&col(ColType::Text, false), br"\N"),
            Err(ValueError::Null)
        ));
        let mut key = col(ColType::Text, true);
        key.key = true;
        assert!(matches!(value(&key, br"\N"), Err(ValueError::Null)));
        assert_eq!(
            value(&col(ColType::Text, true), br"\N").unwrap(),
            Value::Null
        );
    }
}
