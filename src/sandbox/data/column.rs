//! Columns as the sandbox's table schemas describe them: a name, a type ([`Kind`]) read from
//! the column's JSON Schema node, whether it is required, and the [`Role`] its name suggests for
//! generating realistic values.
//!
//! The kinds are exactly the constructs the gateway's schemas use (the DAP service writes them
//! with `strong_typing`, the official client reads them back with the same library): `format`
//! `int16`/`int32`/`int64`, `float32`/`float64`, decimals as `multipleOf` with
//! `exclusiveMinimum`/`exclusiveMaximum`, `date-time`, `date`, `time`, `uuid`, `ipv4`, string
//! enums (every one with `__dap_unspecified__`), integer enums, `maxLength`, `oneOf` of the
//! `__dap_oversized_truncated__` marker and a string, arrays, objects with and without
//! `properties`, and `$ref` to `#/definitions/<Name>`.

use serde_json::Value;

/// The value gateways put in place of a text too long to export.
pub const TRUNCATED: &str = "__dap_oversized_truncated__";

/// The member every string enum of the gateway has, for values it does not know.
pub const UNSPECIFIED: &str = "__dap_unspecified__";

/// How a column's values are typed, as its JSON Schema says.
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    /// `integer` of `format` `int16`, `int32` or `int64` (the width in bits; 64 without a format).
    Int(u8),
    /// `integer` with `enum` (e.g. `web_logs.http_status`).
    IntEnum(Vec<i64>),
    /// `number` of `format` `float32` or `float64` (the width in bits).
    Float(u8),
    /// `number` without a format or bounds (a float to the official client).
    Number,
    /// `number` with `multipleOf` 10^-scale and exclusive bounds ±10^(precision-scale).
    Decimal {
        /// Total digits.
        precision: u32,
        /// Digits after the point.
        scale: u32,
    },
    /// `boolean`.
    Bool,
    /// `string`, with `maxLength` if it has one.
    Text(Option<u32>),
    /// `oneOf` the `__dap_oversized_truncated__` marker and a string (with its `maxLength`).
    Truncatable(Option<u32>),
    /// `string` with `enum`.
    Enum(Vec<&'static str>),
    /// `string`, `date-time`.
    Timestamp,
    /// `string`, `date`.
    Date,
    /// `string`, `time`.
    Time,
    /// `string`, `uuid`.
    Uuid,
    /// `string`, `ipv4`.
    Ipv4,
    /// `array` of items of a kind.
    Array(Box<Kind>),
    /// `object` with `properties`: one JSON column in condensed mode, one column per property
    /// (`value.settings.x`) in expanded mode.
    Object(Vec<Field>),
    /// `object` without `properties`: a JSON document.
    JsonObject,
}

/// A property of a nested object.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// Property name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// In the object's `required` list.
    pub required: bool,
}

/// What a column holds, judged from its name: picks realistic values for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Nothing in particular.
    Plain,
    /// `created_at`: fixed per key.
    CreatedAt,
    /// `updated_at` (and `web_logs.timestamp`): the time of the change.
    ChangedAt,
    /// An identifier of another row (`..._id`).
    Reference,
    /// The column a sandbox schema change adds.
    Added,
    /// A person's name.
    PersonName,
    /// `Last, First`.
    SortableName,
    /// A first name.
    ShortName,
    /// An e-mail address.
    Email,
    /// A URL.
    Url,
    /// A UUID kept in a string column.
    UuidText,
    /// An IANA time zone.
    TimeZone,
    /// A locale.
    Locale,
    /// An external identifier (SIS, integration, LTI, migration).
    ExternalId,
    /// An IP address kept in a string column.
    IpText,
    /// HTML or free text written by people.
    Html,
    /// A JSON document kept in a string column.
    JsonText,
    /// A browser's user agent.
    UserAgent,
    /// A short label: a title or a name of a thing.
    Label,
    /// A code (course code, SKU, term code).
    Code,
}

impl Role {
    /// The role a column's name suggests for its kind.
    pub fn of(name: &str, kind: &Kind) -> Role {
        let text = matches!(kind, Kind::Text(_) | Kind::Truncatable(_));
        match (name, kind) {
            ("created_at", Kind::Timestamp) => Role::CreatedAt,
            ("updated_at" | "timestamp", Kind::Timestamp) => Role::ChangedAt,
            (_, Kind::Int(_)) if name.ends_with("_id") => Role::Reference,
            _ if !text => Role::Plain,
            ("user_agent", _) => Role::UserAgent,
            ("name" | "user_name" | "author_name", _) => Role::PersonName,
            ("sortable_name", _) => Role::SortableName,
            ("short_name", _) => Role::ShortName,
            ("time_zone" | "default_time_zone" | "time_zone_edited", _) => Role::TimeZone,
            ("locale" | "default_locale", _) => Role::Locale,
            ("course_code" | "term_code" | "sku" | "code" | "detail_code", _) => Role::Code,
            _ if name.contains("email") => Role::Email,
            _ if name == "uuid" || name.ends_with("_uuid") => Role::UuidText,
            _ if name.ends_with("_ip") => Role::IpText,
            _ if name == "url" || name.ends_with("_url") || name.ends_with("_uri") => Role::Url,
            _ if name.starts_with("sis_")
                || name.starts_with("lti_")
                || name.starts_with("integration_")
                || name.ends_with("migration_id") =>
            {
                Role::ExternalId
            }
            _ if is_json_text(name) => Role::JsonText,
            _ if matches!(
                name,
                "title" | "display_name" | "label" | "subject" | "filename" | "full_name"
            ) =>
            {
                Role::Label
            }
            _ if matches!(
                name,
                "body" | "message" | "description" | "syllabus_body" | "comment" | "comments"
            ) || name.ends_with("_description")
                || name.ends_with("_comments") =>
            {
                Role::Html
            }
            _ => Role::Plain,
        }
    }
}

/// Text columns that hold JSON (or YAML turned JSON) documents in the real data.
fn is_json_text(name: &str) -> bool {
    matches!(
        name,
        "scopes"
            | "settings"
            | "requirements_met"
            | "incomplete_requirements"
            | "prerequisites"
            | "completion_requirements"
            | "downstream_changes"
            | "data"
            | "link_settings"
            | "tab_configuration"
            | "extensions"
            | "custom"
            | "submission_data"
            | "migration_settings"
            | "custom_fields"
            | "text_overrides"
            | "pdf_settings"
            | "purchase_params"
            | "public_jwk"
            | "question_data"
            | "restrictions"
            | "default_restrictions"
            | "default_restrictions_by_type"
            | "export_results"
            | "results"
            | "summary_data"
            | "turnitin_data"
    )
}

/// A column of a table: `key.<name>` for the key, `value.<name>` for the others.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Column {
    /// Column (property) name.
    pub name: &'static str,
    /// Its type.
    pub kind: &'static Kind,
    /// In the schema's `required` list; otherwise the column is nullable.
    pub required: bool,
    /// What realistic values look like.
    pub role: Role,
}

static ADDED_KIND: Kind = Kind::Text(Some(255));

/// The column a schema change adds (nullable, so it is additive).
pub(super) static ADDED: Column = Column {
    name: "sandbox_added_note",
    kind: &ADDED_KIND,
    required: false,
    role: Role::Added,
};

/// The JSON Schema node of [`ADDED`].
pub(super) fn added_schema() -> Value {
    serde_json::json!({
        "type": "string",
        "maxLength": 255,
        "description": "A note added by a newer schema version (sandbox schema change)."
    })
}

impl Kind {
    /// The kind a column's JSON Schema node describes; `definitions` resolves `$ref`s.
    pub fn from_schema(node: &Value, definitions: &Value) -> Result<Kind, String> {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/definitions/")
                .ok_or_else(|| format!("unsupported reference `{reference}`"))?;
            let target = definitions
                .get(name)
                .ok_or_else(|| format!("undefined reference `{reference}`"))?;
            return Kind::from_schema(target, definitions);
        }
        if let Some(members) = node.get("oneOf").and_then(Value::as_array) {
            return match members.as_slice() {
                [marker, text]
                    if marker.get("const").and_then(Value::as_str) == Some(TRUNCATED)
                        && text.get("type").and_then(Value::as_str) == Some("string") =>
                {
                    Ok(Kind::Truncatable(max_length(text)))
                }
                _ => Err(format!("unsupported oneOf {node}")),
            };
        }
        let format = node.get("format").and_then(Value::as_str);
        let number = |key: &str| node.get(key).and_then(Value::as_f64);
        match node.get("type").and_then(Value::as_str) {
            Some("integer") => match (format, node.get("enum").and_then(Value::as_array)) {
                (Some("int16"), _) => Ok(Kind::Int(16)),
                (Some("int32"), _) => Ok(Kind::Int(32)),
                (Some("int64") | None, None) => Ok(Kind::Int(64)),
                (None, Some(values)) => values
                    .iter()
                    .map(|value| value.as_i64().ok_or(()))
                    .collect::<Result<Vec<_>, _>>()
                    .map(Kind::IntEnum)
                    .map_err(|_| format!("integer enum of non-integers {node}")),
                (Some(other), _) => Err(format!("integer format `{other}`")),
            },
            Some("number") => match format {
                Some("float32") => Ok(Kind::Float(32)),
                Some("float64") => Ok(Kind::Float(64)),
                Some(other) => Err(format!("number format `{other}`")),
                None => match (
                    number("multipleOf"),
                    number("exclusiveMinimum"),
                    number("exclusiveMaximum"),
                ) {
                    (Some(step), Some(low), Some(high)) if low == -high => {
                        let scale = (-step.log10()).round() as u32;
                        let digits = high.log10().round() as u32;
                        Ok(Kind::Decimal {
                            precision: digits + scale,
                            scale,
                        })
                    }
                    (None, None, None) => Ok(Kind::Number),
                    _ => Err(format!("unsupported number {node}")),
                },
            },
            Some("boolean") => Ok(Kind::Bool),
            Some("string") => match format {
                Some("date-time") => Ok(Kind::Timestamp),
                Some("date") => Ok(Kind::Date),
                Some("time") => Ok(Kind::Time),
                Some("uuid") => Ok(Kind::Uuid),
                Some("ipv4") => Ok(Kind::Ipv4),
                Some(other) => Err(format!("string format `{other}`")),
                None => match node.get("enum").and_then(Value::as_array) {
                    Some(values) => values
                        .iter()
                        .map(|value| value.as_str().map(leak).ok_or(()))
                        .collect::<Result<Vec<_>, _>>()
                        .map(Kind::Enum)
                        .map_err(|_| format!("string enum of non-strings {node}")),
                    None => Ok(Kind::Text(max_length(node))),
                },
            },
            Some("array") => {
                let items = node
                    .get("items")
                    .ok_or_else(|| format!("array without items {node}"))?;
                Ok(Kind::Array(Box::new(Kind::from_schema(
                    items,
                    definitions,
                )?)))
            }
            Some("object") => {
                let Some(properties) = node.get("properties").and_then(Value::as_object) else {
                    return Ok(Kind::JsonObject);
                };
                let required = required(node);
                properties
                    .iter()
                    .map(|(name, property)| {
                        Ok(Field {
                            name: leak(name),
                            kind: Kind::from_schema(property, definitions)?,
                            required: required.contains(&name.as_str()),
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
                    .map(Kind::Object)
            }
            other => Err(format!("unsupported type {other:?} in {node}")),
        }
    }
}

fn max_length(node: &Value) -> Option<u32> {
    node.get("maxLength")
        .and_then(Value::as_u64)
        .map(|n| n.min(u64::from(u32::MAX)) as u32)
}

/// The names in an object node's `required` list.
pub(super) fn required(node: &Value) -> Vec<&str> {
    node.get("required")
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A catalog string kept for the life of the process (the catalog is parsed once).
pub(super) fn leak(text: &str) -> &'static str {
    Box::leak(text.to_owned().into_boxed_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_construct_reads_as_its_kind() {
        let definitions = json!({"Status": {"type": "integer", "enum": [200, 404]}});
        let cases = [
            (json!({"type": "integer", "format": "int16"}), Kind::Int(16)),
            (
                json!({"$ref": "#/definitions/Status"}),
                Kind::IntEnum(vec![200, 404]),
            ),
            (
                json!({"type": "number", "format": "float32"}),
                Kind::Float(32),
            ),
            (json!({"type": "number"}), Kind::Number),
            (
                json!({"type": "number", "multipleOf": 0.01, "exclusiveMinimum": -10000, "exclusiveMaximum": 10000}),
                Kind::Decimal {
                    precision: 6,
                    scale: 2,
                },
            ),
            (
                json!({"oneOf": [{"type": "string", "const": TRUNCATED}, {"type": "string", "maxLength": 255}]}),
                Kind::Truncatable(Some(255)),
            ),
            (json!({"type": "string", "format": "ipv4"}), Kind::Ipv4),
            (
                json!({"type": "array", "items": {"type": "integer", "format": "int32"}}),
                Kind::Array(Box::new(Kind::Int(32))),
            ),
            (json!({"type": "object"}), Kind::JsonObject),
        ];
        for (node, kind) in cases {
            assert_eq!(Kind::from_schema(&node, &definitions), Ok(kind), "{node}");
        }
        let unsupported = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
        assert!(Kind::from_schema(&unsupported, &definitions).is_err());
    }

    #[test]
    fn names_suggest_roles() {
        let text = Kind::Text(Some(255));
        assert_eq!(Role::of("sortable_name", &text), Role::SortableName);
        assert_eq!(Role::of("course_id", &Kind::Int(64)), Role::Reference);
        assert_eq!(Role::of("course_id", &text), Role::Plain);
        assert_eq!(Role::of("body", &Kind::Truncatable(None)), Role::Html);
        assert_eq!(Role::of("updated_at", &Kind::Timestamp), Role::ChangedAt);
    }
}
