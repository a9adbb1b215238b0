//! What a table's load does, decided once for every database: a snapshot on a first load, for a
//! missing table or a schema change no incremental can apply, else an incremental since the
//! committed point with the additive changes it needs ([`Changes`]).

use super::error::Incompatible;
use super::layout::{self, Layout};
use super::{DbColumn, Mode, SnapshotReason, TableState};

/// What a table's load does, from its committed state and the columns it has: a snapshot
/// on a first load, for a missing table or for a schema change `diff` cannot apply, else an
/// incremental since the committed `until`. One decision for every database.
pub fn choose_mode(
    state: Option<&TableState>,
    existing: Option<&[DbColumn]>,
    diff: impl FnOnce(&[DbColumn]) -> Result<Changes, Incompatible>,
) -> (Mode, Changes) {
    let snapshot = |reason| (Mode::Snapshot { reason }, Changes::default());
    match (state, existing) {
        (None, _) => snapshot(SnapshotReason::FirstLoad),
        (Some(_), None) => snapshot(SnapshotReason::TableMissing),
        (Some(st), Some(cols)) => match diff(cols) {
            Ok(changes) => (
                Mode::Incremental {
                    since: st.until.clone(),
                },
                changes,
            ),
            Err(why) => snapshot(SnapshotReason::SchemaChange(why)),
        },
    }
}

/// Schema changes an incremental load applies before its data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// Columns to add (nullable).
    pub add: Vec<layout::Column>,
    /// Columns whose NOT NULL is dropped.
    pub drop_not_null: Vec<String>,
    /// Enum types with new values: (type name, new values).
    pub enum_values: Vec<(String, Vec<String>)>,
}

impl Changes {
    /// Whether there is nothing to change.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.drop_not_null.is_empty() && self.enum_values.is_empty()
    }

    /// One line for the log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.add.is_empty() {
            let names: Vec<&str> = self.add.iter().map(|c| c.name.as_str()).collect();
            parts.push(format!("new columns {}", names.join(", ")));
        }
        if !self.drop_not_null.is_empty() {
            parts.push(format!("now nullable {}", self.drop_not_null.join(", ")));
        }
        for (t, v) in &self.enum_values {
            parts.push(format!("new values of {t}: {}", v.join(", ")));
        }
        parts.join("; ")
    }
}

/// Compares the table in the database with the schema's layout: `Ok(changes)` when the
/// layout can be reached by additive changes, `Err(why)` when a column changed type or a key
/// column is new.
/// Columns that left the schema are kept with their values; one that was required loses its
/// NOT NULL, or no row could be written without it.
pub fn diff(
    layout: &Layout,
    existing: &[DbColumn],
    type_name: impl Fn(&layout::ColType) -> String,
    enum_values: impl Fn(&str) -> Option<Vec<String>>,
) -> Result<Changes, Incompatible> {
    let mut changes = Changes::default();
    for e in existing {
        if !e.nullable && layout.columns.iter().all(|c| c.name != e.name) {
            changes.drop_not_null.push(e.name.clone());
        }
    }
    for c in &layout.columns {
        match existing.iter().find(|e| e.name == c.name) {
            None if c.key => {
                return Err(Incompatible::NewKey {
                    column: c.name.clone(),
                });
            }
            None => changes.add.push(c.clone()),
            Some(e) => {
                let want = type_name(&c.ty);
                if !e.ty.eq_ignore_ascii_case(&want) {
                    return Err(Incompatible::TypeChanged {
                        column: c.name.clone(),
                        from: e.ty.clone(),
                        to: want,
                    });
                }
                if c.nullable && !e.nullable && !c.key {
                    changes.drop_not_null.push(c.name.clone());
                }
                if let Some((name, values)) = c.ty.enum_type()
                    && let Some(have) = enum_values(name)
                {
                    let new: Vec<String> = values
                        .iter()
                        .filter(|v| !have.contains(v))
                        .cloned()
                        .collect();
                    if !new.is_empty() {
                        changes.enum_values.push((name.clone(), new));
                    }
                }
            }
        }
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_diffs_are_additive_or_a_reload() {
        use layout::{ColType, Column};
        let col = |name: &str, ty: ColType, nullable: bool, key: bool| Column {
            name: name.into(),
            label: format!("value.{name}"),
            ty,
            nullable,
            key,
        };
        let l = Layout {
            namespace: "canvas".into(),
            table: "users".into(),
            columns: vec![
                col("id", ColType::Int64, false, true),
                col("name", ColType::Varchar(255), true, false),
                col(
                    "state",
                    ColType::Enum("users__state".into(), vec!["a".into(), "b".into()]),
                    false,
                    false,
                ),
                col("note", ColType::Text, true, false),
            ],
        };
        let db = |name: &str, ty: &str, nullable: bool| DbColumn {
            name: name.into(),
            ty: ty.into(),
            nullable,
        };
        let existing = vec![
            db("id", "bigint", false),
            db("name", "character varying(255)", false),
            db("state", "canvas.users__state", false),
            db("gone", "text", true),
            db("gone_required", "text", false),
        ];
        let ty = |t: &ColType| layout::pg_type_name("canvas", t);
        let changes = diff(&l, &existing, ty, |_| Some(vec!["a".into()])).unwrap();
        assert_eq!(
            changes
                .add
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["note"]
        );
        assert_eq!(changes.drop_not_null, ["gone_required", "name"]);
        assert_eq!(
            changes.enum_values,
            [("users__state".to_owned(), vec!["b".to_owned()])]
        );
        // `gone` left the schema: kept, not a change; `gone_required` kept, but nullable.
        let mut changed = existing.clone();
        changed[1].ty = "text".into();
        let why = diff(&l, &changed, ty, |_| None).unwrap_err();
        assert_eq!(
            why.to_string(),
            "column `name` changed type from text to character varying(255)"
        );
    }
}
