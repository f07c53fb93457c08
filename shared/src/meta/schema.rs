//! The table definition of `migrations/table.json`, compiled into the binary.

use serde::Deserialize;

/// The table definition, as data.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    pub schema_version: u32,
    pub description: String,
    pub partition_key: String,
    pub sort_key: String,
    /// Attribute name → DynamoDB scalar type (`S`, `N`, `B`).
    pub attributes: std::collections::BTreeMap<String, String>,
    pub global_secondary_indexes: Vec<IndexSchema>,
    pub ttl_attribute: String,
    pub billing_mode: String,
    pub point_in_time_recovery: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexSchema {
    pub name: String,
    pub partition_key: String,
    pub sort_key: String,
    pub projection: String,
}

const TABLE_JSON: &str = include_str!("../../../migrations/table.json");

/// The schema this build of berth expects.
pub fn table_schema() -> TableSchema {
    // The file is part of the source tree and checked by the test below, so
    // failing here means the build itself is broken.
    #[allow(clippy::expect_used)]
    serde_json::from_str(TABLE_JSON).expect("migrations/table.json is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::{Index, TTL_ATTR};

    #[test]
    fn schema_matches_the_port() {
        let s = table_schema();
        assert_eq!((s.partition_key.as_str(), s.sort_key.as_str()), ("pk", "sk"));
        assert_eq!(s.ttl_attribute, TTL_ATTR);
        for index in [Index::Gsi1, Index::Gsi2] {
            let (pk, sk) = index.key_attrs().unwrap_or_default();
            let def = s.global_secondary_indexes.iter().find(|g| g.name == index.name());
            let def = def.unwrap_or_else(|| panic!("index {} missing", index.name()));
            assert_eq!((def.partition_key.as_str(), def.sort_key.as_str()), (pk, sk));
            assert_eq!(s.attributes.get(pk).map(String::as_str), Some("S"));
        }
    }
}
