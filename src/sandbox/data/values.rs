//! The values of rows: every cell is a hash of the table's seed, the key, the version and the
//! column, mapped onto the column's type (names, texts that exercise every TSV and CSV escape,
//! time zones, enums, nested objects).

use super::EPOCH;
use super::column::{Column, Kind};
use super::record::Cell;
use super::table::Table;

pub(super) fn key_cell(table: &Table, key: u64) -> Cell {
    match table.key.kind {
        Kind::Int64 | Kind::Int32 => Cell::Int(key as i64),
        _ => {
            let high = hash(table.seed, key, 0, 1);
            let low = hash(table.seed, key, 0, 2);
            Cell::Text(format!(
                "{:08x}-{:04x}-4{:03x}-a{:03x}-{:012x}",
                high >> 32,
                (high >> 16) & 0xffff,
                high & 0xfff,
                low >> 52,
                low & 0xffff_ffff_ffff
            ))
        }
    }
}

/// Strings that exercise every escape of TSV and CSV.
pub(super) const TEXTS: &[&str] = &[
    "Plain text.",
    "",
    "Tab\tseparated\tvalues",
    "Line one\nLine two\r\nLine three",
    "Back\\slash, \\N and \\t written out",
    "\"Quoted\", with commas, and 'apostrophes'",
    "NULL",
    "Ünïcödé: café, 東京, 🎓",
    "<p>HTML <b>body</b> &amp; entities</p>",
    "  leading and trailing spaces  ",
];

pub(super) const FIRST: &[&str] = &[
    "Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Margaret", "Niklaus",
    "Zoë", "José",
];
pub(super) const LAST: &[&str] = &[
    "Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Hamilton",
    "Wirth", "O'Brien", "Núñez",
];
pub(super) const ZONES: &[&str] = &[
    "America/Denver",
    "America/New_York",
    "Europe/London",
    "Europe/Budapest",
    "Australia/Sydney",
    "Etc/UTC",
];

pub(super) fn pick<'a>(items: &[&'a str], h: u64) -> &'a str {
    items[(h % items.len() as u64) as usize]
}

pub(super) fn value(
    table: &Table,
    column: &Column,
    key: u64,
    version: i64,
    index: u64,
    ts: i64,
) -> Cell {
    let h = hash(table.seed, key, version as u64, 100 + index);
    match column.name {
        "created_at" => {
            let age = hash(table.seed, key, 0, 99) % (180 * 86_400);
            return Cell::Time(EPOCH - age as i64);
        }
        "updated_at" | "timestamp" => return Cell::Time(ts),
        "sandbox_added_note" => {
            return match table.changed_at {
                Some(at) if ts >= at => Cell::Text(format!("note {key}.{version}")),
                _ => Cell::Null,
            };
        }
        _ => {}
    }
    if !column.required && h.is_multiple_of(5) {
        return Cell::Null;
    }
    let h = h / 5;
    cell(table, column.name, column.kind, key, h)
}

pub(super) fn cell(table: &Table, name: &str, kind: Kind, key: u64, h: u64) -> Cell {
    match kind {
        Kind::Int64 if name.ends_with("_id") => Cell::Int(10_000_000_000_000 + (h % 5_000) as i64),
        Kind::Int64 => Cell::Int((h % 10_000_000_000) as i64),
        Kind::Int32 => Cell::Int((h % 100_000) as i64),
        Kind::Float64 => Cell::Float((h % 100_001) as f64 / 100.0),
        Kind::Bool => Cell::Bool(h & 1 == 1),
        Kind::Enum(values) => Cell::Text(pick(values, h).to_owned()),
        Kind::Timestamp => Cell::Time(EPOCH + (h % (365 * 86_400)) as i64),
        Kind::Text => Cell::Text(match name {
            "time_zone" | "default_time_zone" => pick(ZONES, h).to_owned(),
            "url" => format!(
                "https://canvas.example.edu/courses/{}/assignments/{}?module_item_id={}&q=a%20b",
                h % 900,
                h % 7_001,
                key
            ),
            "user_agent" => format!("Mozilla/5.0 (sandbox; rv:{}) Gecko/20100101", h % 140),
            _ => pick(TEXTS, h).to_owned(),
        }),
        Kind::Varchar(max) => {
            let text = match name {
                "name" if matches!(table.name.as_str(), "users") => {
                    format!("{} {}", pick(FIRST, h), pick(LAST, h / 13))
                }
                "sortable_name" => format!("{}, {}", pick(LAST, h / 13), pick(FIRST, h)),
                "short_name" => pick(FIRST, h).to_owned(),
                "uuid" => format!("{:016x}{:016x}", h, mix(h)),
                "grade" => {
                    pick(&["A", "B+", "C-", "pass", "fail", "92.5", "complete"], h).to_owned()
                }
                "http_status" => {
                    pick(&["200", "201", "302", "304", "401", "404", "500"], h).to_owned()
                }
                "remote_ip" => format!("10.{}.{}.{}", h % 256, (h >> 8) % 256, (h >> 16) % 256),
                "avatar_image_url" => {
                    format!("https://canvas.example.edu/images/thumbnails/{key}/{h:x}")
                }
                "course_code" => format!(
                    "{}-{:03}",
                    pick(&["MATH", "HIST", "CS", "BIO", "ART"], h),
                    h % 500
                ),
                "title" => format!("Assignment {}: {}", key, pick(TEXTS, h)),
                _ if name.starts_with("sis_") || name.starts_with("lti_") => {
                    format!("{name}-{key}-{:x}", h % 65_536)
                }
                _ => format!("{} {} – {}", table.name, key, pick(TEXTS, h)),
            };
            if text.len() <= max as usize {
                Cell::Text(text)
            } else {
                Cell::Text(text.chars().take(max as usize).collect())
            }
        }
        Kind::Object(fields) => {
            let mut object = serde_json::Map::new();
            for (index, field) in fields.iter().enumerate() {
                let h = mix(h ^ index as u64);
                if h.is_multiple_of(4) {
                    continue; // absent
                }
                let value = cell(table, field.name, field.kind, key, h / 4).to_json();
                object.insert(field.name.to_owned(), value);
            }
            Cell::Json(object.into())
        }
    }
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
