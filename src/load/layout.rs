//! The table layout of a DAP table, derived from its JSON schema as the official client does.
//!
//! `meta` is dropped; `key` and `value` are flattened one level (a property of `value` that is an
//! object becomes one JSON column); the `key` properties are the primary key. Types follow the
//! official client's `pysqlsync` mapping (see the manual's type table, docs/replica.md): integers by `format`
//! (`int16`/`int32`/`int64`, else by range, else `bigint`), floats by `format`, strings with a
//! `format` of `date-time` as naive UTC timestamps, enums as their own type, other strings as
//! `varchar(n)` when they have a `maxLength` and `text` otherwise (the `oneOf` of the
//! `__dap_oversized_truncated__` marker and a string too), nested objects and arrays as JSON.
//! A property not in its object's `required` list is nullable.

use serde_json::Value as Json;

use super::error::{LayoutError, SchemaProblem};

/// A column's type, independent of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColType {
    /// 16-bit integer.
    Int16,
    /// 32-bit integer.
    Int32,
    /// 64-bit integer.
    Int64,
    /// 32-bit float.
    Float32,
    /// 64-bit float.
    Float64,
    /// Exact decimal (precision, scale).
    Decimal(u32, u32),
    /// Boolean.
    Bool,
    /// String with a maximum length.
    Varchar(u64),
    /// String.
    Text,
    /// Timestamp, naive UTC.
    Timestamp,
    /// Date.
    Date,
    /// Time of day.
    Time,
    /// UUID.
    Uuid,
    /// An enumeration: the type's name (without schema) and its values.
    Enum(String, Vec<String>),
    /// An IPv4 address (`format: ipv4`).
    Ipv4,
    /// An IPv6 address (`format: ipv6`).
    Ipv6,
    /// A list of values of one type (`array` with `items`): a PostgreSQL array, JSON elsewhere.
    Array(Box<ColType>),
    /// A nested value kept as JSON.
    Json,
}

impl ColType {
    /// The enum type a column needs, its own or its elements': the type's name and labels.
    pub fn enum_type(&self) -> Option<(&String, &Vec<String>)> {
        match self {
            ColType::Enum(name, labels) => Some((name, labels)),
            ColType::Array(elem) => elem.enum_type(),
            _ => None,
        }
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Column name (the property name).
    pub name: String,
    /// `key.<name>` or `value.<name>`: the label in TSV headers.
    pub label: String,
    /// Type.
    pub ty: ColType,
    /// Whether NULL is allowed.
    pub nullable: bool,
    /// Part of the primary key.
    pub key: bool,
}

/// The table a DAP schema describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Namespace (the PostgreSQL schema).
    pub namespace: String,
    /// Table name.
    pub table: String,
    /// Columns: key columns first, in schema order.
    pub columns: Vec<Column>,
}

impl Layout {
    /// Reads a DAP table schema (the `schema` member of the gateway's answer, or the whole
    /// answer). Errors name what is wrong.
    pub fn from_schema(namespace: &str, table: &str, schema: &Json) -> Result<Layout, LayoutError> {
        let fail = |problem| LayoutError {
            namespace: namespace.to_owned(),
            table: table.to_owned(),
            problem,
        };
        let schema = match schema.get("schema") {
            Some(inner) if inner.get("properties").is_some() => inner,
            _ => schema,
        };
        let definitions = schema
            .get("definitions")
            .or_else(|| schema.get("$defs"))
            .cloned()
            .unwrap_or(Json::Null);
        let props = schema
            .get("properties")
            .and_then(Json::as_object)
            .ok_or_else(|| fail(SchemaProblem::NoProperties))?;
        let mut columns = Vec::new();
        for part in ["key", "value"] {
            let Some(obj) = props.get(part) else {
                if part == "key" {
                    return Err(fail(SchemaProblem::NoKey));
                }
                continue;
            };
            let obj = resolve(obj, &definitions);
            let required: Vec<&str> = obj
                .get("required")
                .and_then(Json::as_array)
                .map(|a| a.iter().filter_map(Json::as_str).collect())
                .unwrap_or_default();
            let Some(fields) = obj.get("properties").and_then(Json::as_object) else {
                continue;
            };
            for (name, node) in fields {
                let ty = col_type(table, name, node, &definitions).map_err(fail)?;
                columns.push(Column {
                    name: name.clone(),
                    label: format!("{part}.{name}"),
                    ty,
                    nullable: part == "value" && !required.contains(&name.as_str()),
                    key: part == "key",
                });
            }
        }
        if !columns.iter().any(|c| c.key) {
            return Err(fail(SchemaProblem::EmptyKey));
        }
        Ok(Layout {
            namespace: namespace.to_owned(),
            table: table.to_owned(),
            columns,
        })
    }

    /// Whether the table's results repeat keys (`canvas_logs.web_logs`: a log line can be
    /// sent again), the last record of a key winning. Every other table's snapshot has each
    /// key once, so a snapshot that loads fewer rows than it read lost some.
    pub fn keys_repeat(&self) -> bool {
        self.namespace == "canvas_logs"
    }

    /// The key columns.
    pub fn keys(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.key)
    }

    /// The column with this name.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// A name for a column dap-run adds beside the table's own (a staged change's action):
    /// `base`, with `_` appended until no column of the table has it, compared without case
    /// (MySQL's and SQLite's column names ignore it). A gateway column may be called anything,
    /// `dap_action` too.
    pub fn free_column(&self, base: &str) -> String {
        let mut name = base.to_owned();
        while self
            .columns
            .iter()
            .any(|c| c.name.to_lowercase() == name.to_lowercase())
        {
            name.push('_');
        }
        name
    }
}

fn resolve<'a>(node: &'a Json, definitions: &'a Json) -> &'a Json {
    if let Some(r) = node.get("$ref").and_then(Json::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        if let Some(def) = definitions.get(name) {
            return def;
        }
    }
    node
}

fn col_type(
    table: &str,
    name: &str,
    node: &Json,
    definitions: &Json,
) -> Result<ColType, SchemaProblem> {
    // A `$ref` to a definition: an enum takes the definition's name, as the official client's.
    let mut enum_name = format!("{table}__{name}");
    let node = match node.get("$ref").and_then(Json::as_str) {
        Some(r) => {
            let def = r.rsplit('/').next().unwrap_or(r);
            enum_name = def.to_owned();
            resolve(node, definitions)
        }
        None => node,
    };
    if let Some(members) = node.get("oneOf").and_then(Json::as_array) {
        // The gateway's too-long-text union: the `__dap_oversized_truncated__` marker or a
        // string. The official client stores the union's string type: `varchar(n)` with the
        // string's `maxLength`, else `text`.
        if let [marker, text] = members.as_slice()
            && marker.get("type").and_then(Json::as_str) == Some("string")
            && marker.get("const").is_some_and(Json::is_string)
            && text.get("type").and_then(Json::as_str) == Some("string")
            && text.get("const").is_none()
        {
            return Ok(match text.get("maxLength").and_then(Json::as_u64) {
                Some(n) => ColType::Varchar(n),
                None => ColType::Text,
            });
        }
        return Ok(ColType::Json);
    }
    if node.get("anyOf").is_some() {
        return Ok(ColType::Json);
    }
    let ty = match node.get("type") {
        Some(Json::String(s)) => s.as_str(),
        // `["string", "null"]`: the non-null member.
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(Json::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ => return Ok(ColType::Json),
    };
    let format = node.get("format").and_then(Json::as_str);
    let num = |k: &str| node.get(k).and_then(Json::as_f64);
    if ty == "array" {
        // As the official client: an array of a simple type is that type's array (its enum
        // type named as the column's own would be), anything else JSON.
        let Some(items) = node.get("items") else {
            return Ok(ColType::Json);
        };
        return Ok(match col_type(table, name, items, definitions)? {
            ColType::Json | ColType::Array(_) => ColType::Json,
            elem => ColType::Array(Box::new(elem)),
        });
    }
    Ok(match ty {
        "integer" => match format {
            Some("int16") => ColType::Int16,
            Some("int32") => ColType::Int32,
            Some("int64") => ColType::Int64,
            _ => {
                let range = match node.get("enum").and_then(Json::as_array) {
                    Some(vals) => {
                        let v: Vec<f64> = vals.iter().filter_map(Json::as_f64).collect();
                        v.iter()
                            .cloned()
                            .reduce(f64::min)
                            .zip(v.iter().cloned().reduce(f64::max))
                    }
                    None => num("minimum").zip(num("maximum")),
                };
                match range {
                    Some((lo, hi)) if lo >= -32768.0 && hi < 32768.0 => ColType::Int16,
                    Some((lo, hi)) if lo >= -2147483648.0 && hi < 2147483648.0 => ColType::Int32,
                    _ => ColType::Int64,
                }
            }
        },
        "number" => match format {
            Some("float32") => ColType::Float32,
            Some("float64") => ColType::Float64,
            _ => match (num("exclusiveMaximum"), num("multipleOf")) {
                (Some(max), Some(step)) if num("exclusiveMinimum") == Some(-max) => {
                    let int_digits = max.log10().round() as i64;
                    let dec_digits = -(step.log10().round() as i64);
                    if int_digits >= 0 && dec_digits >= 0 {
                        ColType::Decimal((int_digits + dec_digits) as u32, dec_digits as u32)
                    } else {
                        ColType::Float64
                    }
                }
                _ => ColType::Float64,
            },
        },
        "boolean" => ColType::Bool,
        "string" => match format {
            Some("date-time") => ColType::Timestamp,
            Some("date") => ColType::Date,
            Some("time") => ColType::Time,
            Some("uuid") => ColType::Uuid,
            Some("ipv4") => ColType::Ipv4,
            Some("ipv6") => ColType::Ipv6,
            _ => {
                if let Some(vals) = node.get("enum").and_then(Json::as_array) {
                    let vals = vals
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned).ok_or(()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| SchemaProblem::EnumNotStrings {
                            column: name.to_owned(),
                        })?;
                    ColType::Enum(enum_name, vals)
                } else if let Some(n) = node.get("maxLength").and_then(Json::as_u64) {
                    ColType::Varchar(n)
                } else {
                    ColType::Text
                }
            }
        },
        _ => ColType::Json,
    })
}

/// PostgreSQL's name for a type (as `format_type` prints it, enums schema-qualified).
pub fn pg_type(ns: &str, ty: &ColType) -> String {
    match ty {
        ColType::Int16 => "smallint".into(),
        ColType::Int32 => "integer".into(),
        ColType::Int64 => "bigint".into(),
        ColType::Float32 => "real".into(),
        ColType::Float64 => "double precision".into(),
        ColType::Decimal(p, s) => format!("numeric({p},{s})"),
        ColType::Bool => "boolean".into(),
        ColType::Varchar(n) => format!("character varying({n})"),
        ColType::Text => "text".into(),
        ColType::Timestamp => "timestamp without time zone".into(),
        ColType::Date => "date".into(),
        ColType::Time => "time without time zone".into(),
        ColType::Uuid => "uuid".into(),
        ColType::Enum(name, _) => format!("{}.{}", quote_ident(ns), quote_ident(name)),
        ColType::Ipv4 | ColType::Ipv6 => "inet".into(),
        ColType::Array(elem) => format!("{}[]", pg_type(ns, elem)),
        ColType::Json => "jsonb".into(),
    }
}

/// PostgreSQL's type as dap-run compares it with a column's: [`pg_type`], except an enum,
/// named `schema.type` unquoted, as the catalog has it (see `pg::meta::columns`).
pub fn pg_type_name(ns: &str, ty: &ColType) -> String {
    match ty {
        ColType::Enum(name, _) => format!("{ns}.{name}"),
        ColType::Array(elem) => format!("{}[]", pg_type_name(ns, elem)),
        other => pg_type(ns, other),
    }
}

/// SQLite's declared type for a column type.
pub fn sqlite_type(ty: &ColType) -> String {
    match ty {
        ColType::Int16 | ColType::Int32 | ColType::Int64 | ColType::Bool => "INTEGER".into(),
        ColType::Float32 | ColType::Float64 => "REAL".into(),
        ColType::Decimal(p, s) => format!("NUMERIC({p},{s})"),
        ColType::Varchar(n) => format!("VARCHAR({n})"),
        ColType::Timestamp => "TIMESTAMP".into(),
        ColType::Date => "DATE".into(),
        ColType::Time => "TIME".into(),
        ColType::Json | ColType::Array(_) => "JSON".into(),
        ColType::Text | ColType::Uuid | ColType::Enum(..) | ColType::Ipv4 | ColType::Ipv6 => {
            "TEXT".into()
        }
    }
}

/// MySQL's (and MariaDB's) type for a column, as the official client declares it: strings
/// without a `maxLength` (or a longer one) as `mediumtext`, booleans as `tinyint`, UUIDs as
/// `binary(16)`, enums inline, JSON as `json` (MariaDB shows it as `longtext`).
pub fn mysql_type(ty: &ColType) -> String {
    match ty {
        ColType::Int16 => "smallint".into(),
        ColType::Int32 => "int".into(),
        ColType::Int64 => "bigint".into(),
        // The official client declares `float32` as `real`, which MySQL and MariaDB make `double`.
        ColType::Float32 | ColType::Float64 => "double".into(),
        ColType::Decimal(p, s) => format!("decimal({p},{s})"),
        ColType::Bool => "tinyint".into(),
        ColType::Varchar(n) if *n < 65536 => format!("varchar({n})"),
        ColType::Varchar(_) | ColType::Text => "mediumtext".into(),
        ColType::Timestamp => "datetime".into(),
        ColType::Date => "date".into(),
        ColType::Time => "time".into(),
        ColType::Uuid | ColType::Ipv6 => "binary(16)".into(),
        ColType::Ipv4 => "binary(4)".into(),
        ColType::Enum(_, values) => {
            let v: Vec<String> = values.iter().map(|v| mysql_literal(v)).collect();
            format!("enum({})", v.join(","))
        }
        ColType::Json | ColType::Array(_) => "json".into(),
    }
}

/// Quotes an identifier for MySQL (`` ` `` doubled).
pub fn mysql_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// Quotes a string literal for MySQL (backslashes and quotes escaped).
pub fn mysql_literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// Quotes an identifier for PostgreSQL and SQLite: always (a name that is a keyword in some
/// version, `current_user` or `fetch`, needs it as much as one with a capital), `"` doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// Quotes a string literal for PostgreSQL whatever the server's settings: with
/// `standard_conforming_strings = off` a backslash in `'…'` is an escape, so a literal holding
/// one is written `E'…'` with backslashes doubled (which means the same under either setting).
/// Values the gateway sends go in as bind parameters where PostgreSQL takes them; this is for
/// DDL (enum labels), which takes none.
pub fn pg_literal(s: &str) -> String {
    if s.contains('\\') {
        format!("E'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flattens_key_and_value_and_maps_types() {
        let schema = json!({"version": 3, "schema": {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "key": {"type": "object", "properties": {"id": {"type": "integer", "format": "int64"}}, "required": ["id"], "additionalProperties": false},
                "value": {"type": "object", "properties": {
                    "name": {"type": "string", "maxLength": 255},
                    "bio": {"type": "string"},
                    "workflow_state": {"type": "string", "enum": ["active", "deleted"]},
                    "created_at": {"type": "string", "format": "date-time"},
                    "score": {"type": "number", "format": "float64"},
                    "n": {"type": "integer", "format": "int32"},
                    "prefs": {"type": "object"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "kinds": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                    "ip": {"type": "string", "format": "ipv4"}
                }, "required": ["name", "workflow_state"], "additionalProperties": false},
                "meta": {"type": "object", "properties": {"ts": {"type": "string", "format": "date-time"}}}
            }
        }});
        let l = Layout::from_schema("canvas", "users", &schema).unwrap();
        let got: Vec<(String, String, bool)> = l
            .columns
            .iter()
            .map(|c| (c.name.clone(), pg_type_name("canvas", &c.ty), c.nullable))
            .collect();
        let want = [
            ("id", "bigint", false),
            ("name", "character varying(255)", false),
            ("bio", "text", true),
            ("workflow_state", "canvas.users__workflow_state", false),
            ("created_at", "timestamp without time zone", true),
            ("score", "double precision", true),
            ("n", "integer", true),
            ("prefs", "jsonb", true),
            ("tags", "text[]", true),
            ("kinds", "canvas.users__kinds[]", true),
            ("ip", "inet", true),
        ];
        let want: Vec<(String, String, bool)> = want
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), *c))
            .collect();
        assert_eq!(got, want);
        assert!(l.columns[0].key && !l.columns[1].key);
    }

    #[test]
    fn a_truncatable_text_is_the_union_s_string_type() {
        let marker = json!({"type": "string", "const": "__dap_oversized_truncated__"});
        let schema = json!({"properties": {
            "key": {"properties": {"id": {"type": "string", "format": "uuid"}}, "required": ["id"]},
            "value": {"properties": {
                "user_agent": {"oneOf": [marker, {"type": "string", "maxLength": 255}]},
                "body": {"oneOf": [marker, {"type": "string"}]},
                "either": {"oneOf": [{"type": "string"}, {"type": "integer"}]}
            }}
        }});
        let l = Layout::from_schema("canvas_logs", "web_logs", &schema).unwrap();
        let ty = |name: &str| l.column(name).map(|c| c.ty.clone());
        assert_eq!(ty("user_agent"), Some(ColType::Varchar(255)));
        assert_eq!(ty("body"), Some(ColType::Text));
        assert_eq!(ty("either"), Some(ColType::Json));
        assert_eq!(mysql_type(&ColType::Varchar(255)), "varchar(255)");
    }

    #[test]
    fn a_schema_without_a_key_names_the_table_and_the_problem() {
        let e = Layout::from_schema("canvas", "users", &json!({"properties": {"value": {}}}))
            .unwrap_err();
        assert_eq!(e.problem, SchemaProblem::NoKey);
        assert_eq!(
            e.to_string(),
            "the schema of `canvas.users` cannot be loaded: the table schema has no `key` property"
        );
        let e = Layout::from_schema(
            "canvas",
            "users",
            &json!({"properties": {
                "key": {"properties": {"id": {"type": "integer"}}},
                "value": {"properties": {"state": {"type": "string", "enum": ["a", 1]}}}
            }}),
        )
        .unwrap_err();
        assert_eq!(
            e.problem,
            SchemaProblem::EnumNotStrings {
                column: "state".into()
            }
        );
    }

    #[test]
    fn an_added_column_never_takes_a_columns_name() {
        let mut l = Layout {
            namespace: "canvas".into(),
            table: "t".into(),
            columns: vec![],
        };
        assert_eq!(l.free_column("dap_action"), "dap_action");
        for name in ["DAP_ACTION", "dap_action_"] {
            l.columns.push(Column {
                name: name.into(),
                label: format!("value.{name}"),
                ty: ColType::Text,
                nullable: true,
                key: false,
            });
        }
        assert_eq!(l.free_column("dap_action"), "dap_action__");
    }

    #[test]
    fn identifiers_are_always_quoted_and_literals_mean_the_same_under_any_setting() {
        assert_eq!(quote_ident("users"), r#""users""#);
        assert_eq!(quote_ident("current_user"), r#""current_user""#);
        assert_eq!(quote_ident(r#"a"b"#), r#""a""b""#);
        assert_eq!(pg_literal("it's"), "'it''s'");
        assert_eq!(pg_literal(r"x\"), r"E'x\\'");
        assert_eq!(pg_literal(r"a\'b"), r"E'a\\''b'");
        assert_eq!(mysql_literal(r"x\'"), r"'x\\'''");
    }
}
