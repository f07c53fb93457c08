//! Stored schedules (Harbor's `/schedules`): one per vendor (a system job
//! type and its policy id), in the `SCHEDULES` partition, fired by
//! [`crate::jobs::schedule::tick`]; and the per-slot leases that let one
//! replica fire each slot.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::paging::{Listing, PageRequest, count_write};
use super::record::{from_item, to_item};
use super::{Registry, ServiceResult};
use crate::events::now_ms;
use crate::meta::keys::{self, Counted};
use crate::meta::{Condition, ErrorKind, Item, Query, Write};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScheduleRecord {
    pub id: i64,
    pub vendor_type: String,
    pub vendor_id: i64,
    /// Harbor's schedule type (`Daily`, `Custom` …).
    pub kind: String,
    pub cron: String,
    /// The task payload each firing starts.
    #[serde(default)]
    pub params: Value,
    pub creation_time: i64,
    /// Unix milliseconds; slots before it are not fired.
    pub update_time: i64,
}

/// How long a slot's lease is kept (past any window a tick looks back).
const LEASE_SECS: i64 = 24 * 3600;

impl Registry {
    /// Sets (or, with `None`, removes) the schedule of a vendor.
    pub async fn set_schedule(
        &self,
        vendor_type: &str,
        vendor_id: i64,
        plan: Option<(&str, &str)>,
        params: Value,
    ) -> ServiceResult<()> {
        let (pk, sk) = keys::schedule(vendor_type, vendor_id);
        let old = self.schedule(vendor_type, vendor_id).await?;
        let entry = format!("{vendor_type}#{vendor_id}");
        let Some((kind, cron)) = plan else {
            if old.is_some() {
                let writes = vec![
                    Write::Delete { pk, sk, cond: Condition::Exists },
                    count_write(Counted::Schedules, &entry, -1),
                ];
                match self.meta.transact(writes).await {
                    Err(e) if !e.is(ErrorKind::ConditionFailed) => return Err(e.into()),
                    _ => {}
                }
            }
            return Ok(());
        };
        let now = now_ms();
        let record = ScheduleRecord {
            id: old.as_ref().map_or_else(super::executions::new_id, |o| o.id),
            vendor_type: vendor_type.to_owned(),
            vendor_id,
            kind: kind.to_owned(),
            cron: cron.to_owned(),
            params,
            creation_time: old.as_ref().map_or(now, |o| o.creation_time),
            update_time: now,
        };
        let item = to_item(pk, sk, &record, "schedule")?;
        let writes = if old.is_some() {
            vec![Write::Put { item, cond: Condition::Exists }]
        } else {
            vec![Write::Put { item, cond: Condition::NotExists }, count_write(Counted::Schedules, &entry, 1)]
        };
        self.meta.transact(writes).await.map_err(Into::into)
    }

    pub async fn schedule(&self, vendor_type: &str, vendor_id: i64) -> ServiceResult<Option<ScheduleRecord>> {
        let (pk, sk) = keys::schedule(vendor_type, vendor_id);
        self.meta.get(&pk, &sk).await?.map(|i| from_item(i, "schedule")).transpose()
    }

    /// A page of every schedule, by vendor.
    pub async fn list_schedules(&self, req: &PageRequest) -> ServiceResult<Listing<ScheduleRecord>> {
        let query = Query::table(keys::SCHEDULES, "");
        let (items, next, total) = self.page_of(query, Counted::Schedules, req, false, |_| true).await?;
        let items = items.into_iter().map(|i| from_item(i, "schedule")).collect::<ServiceResult<Vec<_>>>()?;
        Ok(Listing { items, total, next })
    }

    /// Every schedule (for a tick).
    pub async fn all_schedules(&self) -> ServiceResult<Vec<ScheduleRecord>> {
        let items = self.meta.query_all(Query::table(keys::SCHEDULES, "")).await?;
        items.into_iter().map(|i| from_item(i, "schedule")).collect()
    }

    /// Takes the lease of one slot of a schedule: true for the one caller
    /// that fires it.
    pub async fn lease_slot(&self, vendor_type: &str, vendor_id: i64, slot_ms: i64) -> ServiceResult<bool> {
        let (pk, sk) = keys::schedule_slot(vendor_type, vendor_id, slot_ms);
        let item = Item::new(pk, sk).with(keys::attr::EXPIRES_AT, slot_ms / 1000 + LEASE_SECS);
        match self.meta.put(item, Condition::NotExists).await {
            Ok(()) => Ok(true),
            Err(e) if e.is(ErrorKind::ConditionFailed) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}
