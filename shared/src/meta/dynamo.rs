//! `MetaStore` on DynamoDB: the single table described by
//! `migrations/table.json`, read with strongly consistent reads wherever
//! DynamoDB offers them (the table, not its indexes).
//!
//! Conditions become condition expressions evaluated by DynamoDB itself, so
//! they are atomic with the write. Expired items stay in the table until
//! DynamoDB's TTL sweeper removes them (which can take days), so reads filter
//! them out here.

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, ConditionCheck, Delete, GlobalSecondaryIndex, IndexStatus,
    KeySchemaElement, KeyType, PointInTimeRecoverySpecification, Projection, ProjectionType, Put, ReturnValue,
    ScalarAttributeType, TableDescription, TableStatus, TimeToLiveSpecification, TimeToLiveStatus, TransactWriteItem,
    Update,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Number, Value};

use super::schema::TableSchema;
use super::{
    Attrs, Condition, ErrorKind, Index, Item, MetaStore, Page, PortError, PortResult, Query, TTL_ATTR, Write, now_unix,
    validate_item, validate_key, validate_query, validate_transaction,
};

const PK: &str = "pk";
const SK: &str = "sk";

/// Real DynamoDB can take a minute or more to create a table with indexes;
/// beyond this something is wrong (the table is being deleted, say).
const ACTIVE_WAIT: Duration = Duration::from_secs(300);

/// Tries of a write that lost a race with a concurrent transaction. Such a
/// write was not applied, so trying again is safe; the SDK's own retry
/// policy does not treat these as retryable.
const CONFLICT_ATTEMPTS: u32 = 5;

#[derive(Debug, Clone)]
pub struct DynamoMetaStore {
    client: Client,
    table: String,
}

impl DynamoMetaStore {
    pub fn from_config(cfg: &crate::config::AwsConfig, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_table(sdk, &cfg.table)
    }

    pub fn with_table(sdk: &aws_config::SdkConfig, table: &str) -> Self {
        Self { client: Client::new(sdk), table: table.to_owned() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the table from the schema when missing (keys, attribute
    /// definitions, GSIs, billing mode), waits until it and its indexes are
    /// ACTIVE, then enables TTL and, when the schema asks for it,
    /// point-in-time recovery. An existing table is left as it is.
    pub async fn ensure_table(&self, schema: &TableSchema) -> PortResult<()> {
        if self.describe().await?.is_none() {
            self.create(schema).await?;
        }
        self.wait_active().await?;
        self.enable_ttl(&schema.ttl_attribute).await?;
        if schema.point_in_time_recovery {
            self.enable_pitr().await?;
        }
        Ok(())
    }

    /// Whether the table is there and usable: `NotFound` when it does not
    /// exist, `Unavailable` when DynamoDB cannot be reached or the table is
    /// not ready.
    pub async fn check(&self) -> PortResult<()> {
        let Some(desc) = self.describe().await? else {
            return Err(PortError::msg(
                ErrorKind::NotFound,
                format_args!(
                    "DynamoDB table {} does not exist; run `berth migrate --backend aws` to create it",
                    self.table
                ),
            ));
        };
        match desc.table_status {
            None | Some(TableStatus::Active | TableStatus::Updating) => Ok(()),
            Some(status) => Err(PortError::msg(
                ErrorKind::Unavailable,
                format_args!("DynamoDB table {} is {status}, not ACTIVE", self.table),
            )),
        }
    }

    async fn describe(&self) -> PortResult<Option<TableDescription>> {
        match self.client.describe_table().table_name(&self.table).send().await {
            Ok(out) => Ok(Some(out.table.unwrap_or_else(|| TableDescription::builder().build()))),
            Err(e) if service_code(&e) == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(translate(&format!("describing table {}", self.table), e).err),
        }
    }

    async fn create(&self, schema: &TableSchema) -> PortResult<()> {
        let key_schema = |pk: &str, sk: &str| -> PortResult<Vec<KeySchemaElement>> {
            Ok(vec![
                KeySchemaElement::builder().attribute_name(pk).key_type(KeyType::Hash).build().map_err(build_error)?,
                KeySchemaElement::builder().attribute_name(sk).key_type(KeyType::Range).build().map_err(build_error)?,
            ])
        };
        let attributes = schema
            .attributes
            .iter()
            .map(|(name, ty)| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::from(ty.as_str()))
                    .build()
                    .map_err(build_error)
            })
            .collect::<PortResult<Vec<_>>>()?;
        let indexes = schema
            .global_secondary_indexes
            .iter()
            .map(|g| {
                GlobalSecondaryIndex::builder()
                    .index_name(&g.name)
                    .set_key_schema(Some(key_schema(&g.partition_key, &g.sort_key)?))
                    .projection(
                        Projection::builder().projection_type(ProjectionType::from(g.projection.as_str())).build(),
                    )
                    .build()
                    .map_err(build_error)
            })
            .collect::<PortResult<Vec<_>>>()?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .set_key_schema(Some(key_schema(&schema.partition_key, &schema.sort_key)?))
            .set_attribute_definitions(Some(attributes))
            .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
            .billing_mode(BillingMode::from(schema.billing_mode.as_str()))
            .send()
            .await;
        match created {
            Ok(_) => {
                tracing::info!(table = %self.table, "created DynamoDB table");
                Ok(())
            }
            // Another process is creating it at the same time; waiting for
            // ACTIVE covers both.
            Err(e) if service_code(&e) == Some("ResourceInUseException") => Ok(()),
            Err(e) => Err(translate(&format!("creating table {}", self.table), e).err),
        }
    }

    async fn wait_active(&self) -> PortResult<()> {
        let deadline = tokio::time::Instant::now() + ACTIVE_WAIT;
        let mut pause = Duration::from_millis(100);
        loop {
            let desc = self.describe().await?;
            let ready = desc.as_ref().is_some_and(|d| {
                matches!(d.table_status, None | Some(TableStatus::Active))
                    && d.global_secondary_indexes
                        .iter()
                        .flatten()
                        .all(|g| matches!(g.index_status, None | Some(IndexStatus::Active)))
            });
            if ready {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let status = desc.and_then(|d| d.table_status).map_or_else(|| "missing".to_owned(), |s| s.to_string());
                return Err(PortError::msg(
                    ErrorKind::Unavailable,
                    format_args!("DynamoDB table {} is still {status} after {}s", self.table, ACTIVE_WAIT.as_secs()),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    async fn enable_ttl(&self, attr: &str) -> PortResult<()> {
        let current = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| translate("describing time to live", e).err)?
            .time_to_live_description;
        if let Some(desc) = current
            && matches!(desc.time_to_live_status, Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling))
        {
            // DynamoDB refuses to enable TTL twice, and changing the
            // attribute means disabling it first (an hour-long operation):
            // left to an operator.
            if desc.attribute_name.as_deref() != Some(attr) {
                tracing::warn!(table = %self.table, current = ?desc.attribute_name, wanted = attr, "TTL is enabled on another attribute");
            }
            return Ok(());
        }
        let spec =
            TimeToLiveSpecification::builder().attribute_name(attr).enabled(true).build().map_err(build_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| translate("enabling time to live", e).err)?;
        Ok(())
    }

    /// Point-in-time recovery protects against operator mistakes but is not
    /// needed for correctness, and emulators differ in whether (and how)
    /// they refuse it, so a refusal is logged rather than failing the
    /// migration. Not reaching DynamoDB at all is still an error.
    async fn enable_pitr(&self) -> PortResult<()> {
        let spec = PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(true)
            .build()
            .map_err(build_error)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = self
                .client
                .update_continuous_backups()
                .table_name(&self.table)
                .point_in_time_recovery_specification(spec.clone())
                .send()
                .await;
            match result {
                Ok(_) => return Ok(()),
                // A freshly created table turns backups on in the background
                // and refuses PITR until that is done.
                Err(e) if service_code(&e) == Some("ContinuousBackupsUnavailableException") && attempt < 10 => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
                Err(e @ SdkError::ServiceError(_)) => {
                    tracing::warn!(table = %self.table, error = %DisplayErrorContext(&e), "point-in-time recovery not enabled");
                    return Ok(());
                }
                Err(e) => return Err(translate("enabling point-in-time recovery", e).err),
            }
        }
    }
}

impl DynamoMetaStore {
    /// A page of a Scan of the whole table, kept by `filter` (over `#ttl`
    /// and `:now`).
    async fn walk(&self, after: Option<String>, limit: usize, filter: &str) -> PortResult<Page> {
        if !(1..=1000).contains(&limit) {
            return Err(PortError::msg(ErrorKind::InvalidInput, format_args!("limit {limit} is not within 1..=1000")));
        }
        let start = after.as_deref().map(decode_scan_cursor).transpose()?;
        let now = now_unix();
        // Limit bounds the items examined, before the filter, as the port asks.
        let out = self
            .client
            .scan()
            .table_name(&self.table)
            .filter_expression(filter)
            .expression_attribute_names("#ttl", TTL_ATTR)
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .limit(i32::try_from(limit).unwrap_or(1000))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| translate("scan", e).err)?;
        let items = out.items.unwrap_or_default().into_iter().map(item_from_map).collect::<PortResult<Vec<_>>>()?;
        let next = out.last_evaluated_key.as_ref().map(encode_cursor).transpose()?;
        Ok(Page { items, next })
    }
}

#[async_trait]
impl MetaStore for DynamoMetaStore {
    async fn get(&self, pk: &str, sk: &str) -> PortResult<Option<Item>> {
        validate_key(pk, sk)?;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| translate("get", e).err)?;
        match out.item {
            None => Ok(None),
            Some(map) => {
                let item = item_from_map(map)?;
                Ok((!item.is_expired(now_unix())).then_some(item))
            }
        }
    }

    async fn put(&self, item: Item, cond: Condition) -> PortResult<()> {
        validate_item(&item)?;
        let map = item_to_map(&item);
        let expr = Expr::condition(&cond);
        retry_conflicts(|| async {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(map.clone()))
                .set_condition_expression(expr.condition.clone())
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .send()
                .await
                .map(drop)
                .map_err(|e| translate("put", e))
        })
        .await
    }

    async fn delete(&self, pk: &str, sk: &str, cond: Condition) -> PortResult<()> {
        validate_key(pk, sk)?;
        let expr = Expr::condition(&cond);
        retry_conflicts(|| async {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .set_condition_expression(expr.condition.clone())
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .send()
                .await
                .map(drop)
                .map_err(|e| translate("delete", e))
        })
        .await
    }

    async fn add(&self, pk: &str, sk: &str, attr: &str, delta: i64, cond: Condition) -> PortResult<i64> {
        validate_key(pk, sk)?;
        let expr = Expr::add(attr, delta, &cond);
        let out = retry_conflicts(|| async {
            self.client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key(pk, sk)))
                .update_expression(ADD_EXPRESSION)
                .set_condition_expression(expr.condition.clone())
                .set_expression_attribute_names(expr.names())
                .set_expression_attribute_values(expr.values())
                .return_values(ReturnValue::UpdatedNew)
                .send()
                .await
                .map_err(|e| translate("add", e))
        })
        .await?;
        let value = out.attributes.as_ref().and_then(|a| a.get(attr));
        match value {
            // DynamoDB cannot be told to refuse ADD on a fractional number,
            // so this is only found out after the write.
            Some(AttributeValue::N(n)) => n.parse::<i64>().map_err(|_| {
                PortError::msg(
                    ErrorKind::InvalidInput,
                    format_args!("attribute {attr} of {pk}/{sk} is {n}, not an integer"),
                )
            }),
            other => Err(PortError::msg(ErrorKind::Internal, format_args!("add returned {other:?} for {attr}"))),
        }
    }

    async fn query(&self, query: Query) -> PortResult<Page> {
        validate_query(&query)?;
        let (pk_attr, sk_attr) = query.index.key_attrs().unwrap_or((PK, SK));
        let mut start = query.cursor.as_deref().map(|c| decode_cursor(c, &query)).transpose()?;
        match super::start_point(&query) {
            super::StartPoint::RangeStart => {}
            super::StartPoint::After(sk) => {
                start = Some(HashMap::from([
                    (PK.to_owned(), AttributeValue::S(query.pk.clone())),
                    (SK.to_owned(), AttributeValue::S(sk)),
                ]));
            }
            super::StartPoint::Exhausted => return Ok(Page::default()),
        }
        let mut names = HashMap::from([("#pk".to_owned(), pk_attr.to_owned())]);
        let mut values = HashMap::from([(":pk".to_owned(), AttributeValue::S(query.pk.clone()))]);
        let mut key_condition = "#pk = :pk".to_owned();
        if !query.sk_prefix.is_empty() {
            key_condition.push_str(" AND begins_with(#sk, :prefix)");
            names.insert("#sk".to_owned(), sk_attr.to_owned());
            values.insert(":prefix".to_owned(), AttributeValue::S(query.sk_prefix.clone()));
        }
        // validate_query bounds the limit to 1..=1000.
        let limit = i32::try_from(query.limit).unwrap_or(1000);
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression(key_condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .limit(limit)
            .scan_index_forward(!query.reverse)
            .set_exclusive_start_key(start);
        if query.keys_only {
            // The expiry comes along so that expired items stay hidden.
            request = request
                .projection_expression("#kpk, #ksk, #kttl")
                .expression_attribute_names("#kpk", PK)
                .expression_attribute_names("#ksk", SK)
                .expression_attribute_names("#kttl", TTL_ATTR);
        }
        request = match query.index {
            // Indexes only offer eventually consistent reads.
            Index::Table => request.consistent_read(true),
            index => request.index_name(index.name()),
        };
        let out = request.send().await.map_err(|e| translate("query", e).err)?;
        let now = now_unix();
        let mut items = Vec::new();
        for map in out.items.unwrap_or_default() {
            let mut item = item_from_map(map)?;
            if !item.is_expired(now) {
                if query.keys_only {
                    item.attrs.clear();
                }
                items.push(item);
            }
        }
        let next = out.last_evaluated_key.as_ref().map(encode_cursor).transpose()?;
        Ok(Page { items, next })
    }

    async fn expired(&self, after: Option<String>, limit: usize) -> PortResult<Page> {
        self.walk(after, limit, "#ttl <= :now").await
    }

    async fn scan(&self, after: Option<String>, limit: usize) -> PortResult<Page> {
        self.walk(after, limit, "attribute_not_exists(#ttl) OR #ttl > :now").await
    }

    async fn transact(&self, writes: Vec<Write>) -> PortResult<()> {
        validate_transaction(&writes)?;
        let items = writes.iter().map(|w| transact_item(&self.table, w)).collect::<PortResult<Vec<_>>>()?;
        retry_conflicts(|| async {
            self.client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await
                .map(drop)
                .map_err(transaction_error)
        })
        .await
    }
}

const ADD_EXPRESSION: &str = "ADD #n :d";

/// A condition (and for `add` its update) as expression text plus the
/// placeholders it uses; DynamoDB refuses empty or unused placeholder maps.
#[derive(Debug, Clone)]
struct Expr {
    condition: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn condition(cond: &Condition) -> Self {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let condition = match cond {
            Condition::Always => None,
            Condition::Exists => Some(format!("attribute_exists({PK})")),
            Condition::NotExists => Some(format!("attribute_not_exists({PK})")),
            Condition::Equals { attr, value } => {
                names.insert("#a".to_owned(), attr.clone());
                values.insert(":v".to_owned(), to_av(value));
                Some(format!("attribute_exists({PK}) AND #a = :v"))
            }
            Condition::AtMost { attr, max } => {
                names.insert("#a".to_owned(), attr.clone());
                values.insert(":max".to_owned(), AttributeValue::N(max.to_string()));
                Some("attribute_not_exists(#a) OR #a <= :max".to_owned())
            }
        };
        Self { condition, names, values }
    }

    fn add(attr: &str, delta: i64, cond: &Condition) -> Self {
        let mut e = Self::condition(cond);
        e.names.insert("#n".to_owned(), attr.to_owned());
        e.values.insert(":d".to_owned(), AttributeValue::N(delta.to_string()));
        e
    }

    /// `SET #s0 = :s0, #s1 = :s1 …` for `attrs`, with the condition's
    /// placeholders (whose names never start with `#s`/`:s`).
    fn set(attrs: &crate::meta::Attrs, cond: &Condition) -> (String, Self) {
        let mut e = Self::condition(cond);
        let mut parts = Vec::with_capacity(attrs.len());
        for (i, (attr, value)) in attrs.iter().enumerate() {
            e.names.insert(format!("#s{i}"), attr.clone());
            e.values.insert(format!(":s{i}"), to_av(value));
            parts.push(format!("#s{i} = :s{i}"));
        }
        (format!("SET {}", parts.join(", ")), e)
    }

    /// The condition for writes that must carry one (a transaction's
    /// condition check): `Always` becomes a tautology.
    fn required_condition(&self) -> String {
        self.condition.clone().unwrap_or_else(|| format!("attribute_exists({PK}) OR attribute_not_exists({PK})"))
    }

    fn names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

fn transact_item(table: &str, write: &Write) -> PortResult<TransactWriteItem> {
    let builder = TransactWriteItem::builder();
    let builder = match write {
        Write::Put { item, cond } => {
            let e = Expr::condition(cond);
            builder.put(
                Put::builder()
                    .table_name(table)
                    .set_item(Some(item_to_map(item)))
                    .set_condition_expression(e.condition.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_error)?,
            )
        }
        Write::Delete { pk, sk, cond } => {
            let e = Expr::condition(cond);
            builder.delete(
                Delete::builder()
                    .table_name(table)
                    .set_key(Some(key(pk, sk)))
                    .set_condition_expression(e.condition.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_error)?,
            )
        }
        Write::Add { pk, sk, attr, delta, cond } => {
            let e = Expr::add(attr, *delta, cond);
            builder.update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key(pk, sk)))
                    .update_expression(ADD_EXPRESSION)
                    .set_condition_expression(e.condition.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_error)?,
            )
        }
        Write::Set { pk, sk, attrs, cond } => {
            let (update, e) = Expr::set(attrs, cond);
            builder.update(
                Update::builder()
                    .table_name(table)
                    .set_key(Some(key(pk, sk)))
                    .update_expression(update)
                    .set_condition_expression(e.condition.clone())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_error)?,
            )
        }
        Write::Check { pk, sk, cond } => {
            let e = Expr::condition(cond);
            builder.condition_check(
                ConditionCheck::builder()
                    .table_name(table)
                    .set_key(Some(key(pk, sk)))
                    .condition_expression(e.required_condition())
                    .set_expression_attribute_names(e.names())
                    .set_expression_attribute_values(e.values())
                    .build()
                    .map_err(build_error)?,
            )
        }
    };
    Ok(builder.build())
}

fn key(pk: &str, sk: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([
        (PK.to_owned(), AttributeValue::S(pk.to_owned())),
        (SK.to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

fn item_to_map(item: &Item) -> HashMap<String, AttributeValue> {
    let mut map: HashMap<String, AttributeValue> = item.attrs.iter().map(|(k, v)| (k.clone(), to_av(v))).collect();
    map.extend(key(&item.pk, &item.sk));
    map
}

fn item_from_map(mut map: HashMap<String, AttributeValue>) -> PortResult<Item> {
    let mut key_attr = |name: &str| match map.remove(name) {
        Some(AttributeValue::S(s)) => Ok(s),
        other => Err(PortError::msg(ErrorKind::Internal, format_args!("stored item has {name} {other:?}"))),
    };
    let pk = key_attr(PK)?;
    let sk = key_attr(SK)?;
    let attrs = map.iter().map(|(k, v)| Ok((k.clone(), from_av(v)?))).collect::<PortResult<Attrs>>()?;
    Ok(Item { pk, sk, attrs })
}

fn to_av(value: &Value) -> AttributeValue {
    match value {
        Value::Null => AttributeValue::Null(true),
        Value::Bool(b) => AttributeValue::Bool(*b),
        // Integers print as integers and floats in their shortest exact
        // form, which DynamoDB's decimal numbers hold without loss.
        Value::Number(n) => AttributeValue::N(n.to_string()),
        Value::String(s) => AttributeValue::S(s.clone()),
        Value::Array(a) => AttributeValue::L(a.iter().map(to_av).collect()),
        Value::Object(o) => AttributeValue::M(o.iter().map(|(k, v)| (k.clone(), to_av(v))).collect()),
    }
}

/// Besides the types berth writes, reads the set and binary types that a
/// hand-edited item could hold, so that such an item stays readable.
fn from_av(av: &AttributeValue) -> PortResult<Value> {
    Ok(match av {
        AttributeValue::S(s) => Value::String(s.clone()),
        AttributeValue::N(n) => number(n)?,
        AttributeValue::Bool(b) => Value::Bool(*b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::L(l) => Value::Array(l.iter().map(from_av).collect::<PortResult<_>>()?),
        AttributeValue::M(m) => {
            Value::Object(m.iter().map(|(k, v)| Ok((k.clone(), from_av(v)?))).collect::<PortResult<_>>()?)
        }
        AttributeValue::Ss(ss) => Value::Array(ss.iter().cloned().map(Value::String).collect()),
        AttributeValue::Ns(ns) => Value::Array(ns.iter().map(String::as_str).map(number).collect::<PortResult<_>>()?),
        AttributeValue::B(b) => Value::String(URL_SAFE_NO_PAD.encode(b.as_ref())),
        AttributeValue::Bs(bs) => {
            Value::Array(bs.iter().map(|b| Value::String(URL_SAFE_NO_PAD.encode(b.as_ref()))).collect())
        }
        other => {
            return Err(PortError::msg(ErrorKind::Internal, format_args!("unsupported attribute value {other:?}")));
        }
    })
}

fn number(n: &str) -> PortResult<Value> {
    if let Ok(i) = n.parse::<i64>() {
        return Ok(i.into());
    }
    if let Ok(u) = n.parse::<u64>() {
        return Ok(u.into());
    }
    n.parse::<f64>()
        .ok()
        .and_then(Number::from_f64)
        .map(Value::Number)
        .ok_or_else(|| PortError::msg(ErrorKind::Internal, format_args!("unreadable number {n:?}")))
}

/// A cursor is DynamoDB's LastEvaluatedKey (string key attributes only),
/// as base64 of JSON so that callers can pass it around as text.
fn encode_cursor(key: &HashMap<String, AttributeValue>) -> PortResult<String> {
    let mut json = serde_json::Map::new();
    for (k, v) in key {
        let AttributeValue::S(s) = v else {
            return Err(PortError::msg(
                ErrorKind::Internal,
                format_args!("non-string key attribute {k} in LastEvaluatedKey"),
            ));
        };
        json.insert(k.clone(), Value::String(s.clone()));
    }
    let bytes = serde_json::to_vec(&json).map_err(|e| PortError::new(ErrorKind::Internal, e))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Decodes a cursor and checks that it belongs to this partition of this
/// index, so that a foreign cursor is refused rather than silently
/// resuming somewhere else.
fn decode_cursor(cursor: &str, query: &Query) -> PortResult<HashMap<String, AttributeValue>> {
    let invalid = || PortError::msg(ErrorKind::InvalidInput, format_args!("invalid query cursor {cursor:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let json: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let mut expected = vec![PK, SK];
    expected.extend(query.index.key_attrs().map(|(p, s)| [p, s]).into_iter().flatten());
    let partition = query.index.key_attrs().map_or(PK, |(p, _)| p);
    if json.len() != expected.len()
        || !expected.iter().all(|k| json.contains_key(*k))
        || json.get(partition) != Some(&query.pk)
    {
        return Err(invalid());
    }
    Ok(json.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}

/// Decodes the cursor of a table walk ([`MetaStore::expired`]).
fn decode_scan_cursor(cursor: &str) -> PortResult<HashMap<String, AttributeValue>> {
    let invalid = || PortError::msg(ErrorKind::InvalidInput, format_args!("invalid scan cursor {cursor:?}"));
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    let json: HashMap<String, String> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if json.len() != 2 || !json.contains_key(PK) || !json.contains_key(SK) {
        return Err(invalid());
    }
    Ok(json.into_iter().map(|(k, v)| (k, AttributeValue::S(v))).collect())
}

fn build_error(e: aws_sdk_dynamodb::error::BuildError) -> PortError {
    PortError::new(ErrorKind::Internal, e)
}

/// A failed request, and whether it was refused for a reason that
/// guarantees nothing was applied and that may pass on another try (a race
/// with a concurrent transaction).
struct Failure {
    err: PortError,
    conflict: bool,
}

impl Failure {
    fn new(kind: ErrorKind, message: impl std::fmt::Display) -> Self {
        Self { err: PortError::msg(kind, message), conflict: false }
    }
}

fn service_code<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> Option<&str> {
    err.as_service_error().and_then(|e| e.code())
}

/// Translates an SDK error into a port error: DynamoDB's own error codes
/// first, then the generic rules of [`crate::aws::sdk_error`].
fn translate<E>(what: &str, err: SdkError<E, HttpResponse>) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let code = service_code(&err).map(str::to_owned);
    let kind = match code.as_deref() {
        Some("ConditionalCheckFailedException") => ErrorKind::ConditionFailed,
        Some("ResourceNotFoundException") => ErrorKind::NotFound,
        // Among others: ADD to a non-numeric attribute, an item too large
        // in DynamoDB's encoding, an index key too long.
        Some("ValidationException") => ErrorKind::InvalidInput,
        Some(
            "TransactionConflictException"
            | "TransactionInProgressException"
            | "ProvisionedThroughputExceededException"
            | "ThrottlingException"
            | "RequestLimitExceeded"
            | "LimitExceededException"
            | "InternalServerError"
            | "ServiceUnavailable",
        ) => ErrorKind::Unavailable,
        _ if err.raw_response().is_some_and(|r| r.status().is_server_error()) => ErrorKind::Unavailable,
        _ => return Failure { err: crate::aws::sdk_error(what, err), conflict: false },
    };
    let detail = DisplayErrorContext(&err);
    let message = if kind == ErrorKind::NotFound {
        format!("{what}: the table does not exist (run `berth migrate --backend aws`): {detail}")
    } else {
        format!("{what}: {detail}")
    };
    Failure { err: PortError::msg(kind, message), conflict: code.as_deref() == Some("TransactionConflictException") }
}

/// Reads DynamoDB's per-write cancellation reasons: the first failed
/// condition names its write; a cancellation caused only by conflicts with
/// other transactions or by throttling applied nothing and may be tried
/// again (the SDK does not retry cancellations itself).
fn transaction_error(err: SdkError<TransactWriteItemsError, HttpResponse>) -> Failure {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancel)) = err.as_service_error() else {
        return translate("transaction", err);
    };
    let reasons = cancel.cancellation_reasons();
    let code_at = |i: usize| reasons.get(i).and_then(|r| r.code()).unwrap_or("None");
    if let Some(i) = (0..reasons.len()).find(|&i| code_at(i) == "ConditionalCheckFailed") {
        return Failure::new(ErrorKind::ConditionFailed, format_args!("transaction write {i}: condition failed"));
    }
    let detail = DisplayErrorContext(&err);
    let failed: Vec<(usize, &str)> =
        (0..reasons.len()).map(|i| (i, code_at(i))).filter(|(_, c)| *c != "None").collect();
    let transient = |c: &str| matches!(c, "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded");
    if !failed.is_empty() && failed.iter().all(|(_, c)| transient(c)) {
        return Failure {
            err: PortError::msg(ErrorKind::Unavailable, format_args!("transaction: {detail}")),
            conflict: true,
        };
    }
    let kind = match failed.first() {
        Some((_, "ValidationError")) => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    };
    let at = failed.first().map_or_else(String::new, |(i, c)| format!(" write {i}: {c}:"));
    Failure::new(kind, format_args!("transaction{at} {detail}"))
}

/// Runs `op` until it succeeds, fails for a reason other than a conflict
/// with a concurrent transaction, or has been tried [`CONFLICT_ATTEMPTS`]
/// times, with jittered exponential backoff in between.
async fn retry_conflicts<T, F, Fut>(mut op: F) -> PortResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match op().await {
            Ok(v) => return Ok(v),
            Err(f) if f.conflict && attempt < CONFLICT_ATTEMPTS => {
                let ceiling = 25u64 << attempt;
                tokio::time::sleep(Duration::from_millis(rand::random_range(ceiling / 2..=ceiling))).await;
            }
            Err(f) => return Err(f.err),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::config::AwsConfig;
    use crate::meta::schema::table_schema;

    async fn sdk() -> aws_config::SdkConfig {
        crate::aws::sdk_config(&AwsConfig::default()).await
    }

    async fn fresh() -> Option<((), DynamoMetaStore)> {
        if !crate::testkit::emulator_available("dynamodb meta store") {
            return None;
        }
        let store = DynamoMetaStore::with_table(&sdk().await, &crate::testkit::unique("berth-test-"));
        store.ensure_table(&table_schema()).await.unwrap();
        Some(((), store))
    }

    crate::meta_store_conformance!(fresh);

    #[tokio::test]
    async fn check_reports_a_missing_table() {
        if !crate::testkit::emulator_available("dynamodb check") {
            return;
        }
        let store = DynamoMetaStore::with_table(&sdk().await, &crate::testkit::unique("berth-missing-"));
        let err = store.check().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        assert!(err.to_string().contains("berth migrate --backend aws"), "{err}");
        assert_eq!(store.get("a", "b").await.unwrap_err().kind(), ErrorKind::NotFound);
    }

    #[tokio::test]
    async fn check_reports_an_unreachable_endpoint_quickly() {
        // Credentials and region still come from the emulator environment,
        // which keeps the SDK away from the instance-metadata service.
        if !crate::testkit::emulator_available("dynamodb unreachable") {
            return;
        }
        let cfg = AwsConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            connect_timeout_secs: 1,
            table: "none".into(),
            ..Default::default()
        };
        let store = DynamoMetaStore::from_config(&cfg, &crate::aws::sdk_config(&cfg).await);
        assert_eq!(store.table(), "none");
        let started = std::time::Instant::now();
        let err = store.check().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn ensure_table_is_idempotent() {
        let Some(((), store)) = fresh().await else { return };
        store.check().await.unwrap();
        store.put(Item::new("p", "s").with("v", 1), Condition::Always).await.unwrap();
        store.ensure_table(&table_schema()).await.unwrap();
        store.check().await.unwrap();
        assert_eq!(
            store.get("p", "s").await.unwrap().and_then(|i| i.i64("v")),
            Some(1),
            "an existing table is left as is"
        );
    }

    #[tokio::test]
    async fn transaction_failures_name_the_write() {
        let Some(((), store)) = fresh().await else { return };
        store.put(Item::new("p", "text").with("name", "x"), Condition::Always).await.unwrap();
        let err = store
            .transact(vec![
                Write::Check { pk: "p".into(), sk: "text".into(), cond: Condition::Always },
                Write::Put { item: Item::new("p", "new"), cond: Condition::Always },
                Write::Delete { pk: "p".into(), sk: "none".into(), cond: Condition::Exists },
            ])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::ConditionFailed);
        assert!(err.to_string().contains("write 2"), "{err}");
        let err = store
            .transact(vec![Write::Add {
                pk: "p".into(),
                sk: "text".into(),
                attr: "name".into(),
                delta: 1,
                cond: Condition::Always,
            }])
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
        assert_eq!(store.get("p", "new").await.unwrap(), None);
    }

    #[test]
    fn cursors_round_trip_and_refuse_foreign_partitions() {
        let q = Query::index(Index::Gsi1, "g", "");
        let key: HashMap<String, AttributeValue> = [("pk", "p"), ("sk", "s"), ("gsi1pk", "g"), ("gsi1sk", "w")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), AttributeValue::S(v.to_owned())))
            .collect();
        let cursor = encode_cursor(&key).unwrap();
        assert_eq!(decode_cursor(&cursor, &q).unwrap(), key);
        assert_eq!(
            decode_cursor(&cursor, &Query::index(Index::Gsi1, "other", "")).unwrap_err().kind(),
            ErrorKind::InvalidInput
        );
        assert_eq!(decode_cursor(&cursor, &Query::table("p", "")).unwrap_err().kind(), ErrorKind::InvalidInput);
        assert_eq!(decode_cursor("!!", &q).unwrap_err().kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn attribute_values_round_trip() {
        let v = serde_json::json!({"i": -3, "u": u64::MAX, "f": 0.1, "b": false, "n": null, "l": [1, "x", [], {}], "m": {"k": {"z": 2.5}}});
        assert_eq!(from_av(&to_av(&v)).unwrap(), v);
    }
}
