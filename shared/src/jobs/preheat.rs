//! The preheat job (Harbor's `P2P_PREHEAT`): the tasks of a preheat
//! policy's run ([`crate::service::preheat`]).
//!
//! - A planning task checks the policy's provider instance is enabled and
//!   healthy, then walks a page of the project's repositories and leaves a
//!   preheat task per matching artifact, and a planning task for the next
//!   page.
//! - A preheat task gives one image to the provider ([`crate::p2p`]) with a
//!   pull token for its repository, good for an hour, and follows the
//!   provider's job within about a minute; a task that runs out of time
//!   leaves a follow-up that polls on. What it submitted is recorded
//!   first, so a task run again polls rather than submits again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::scan::ScanEnv;
use super::{Job, JobError, TaskContext};
use crate::auth::seal::Sealer;
use crate::auth::token::{self, Access};
use crate::p2p::{Driver, DriverError, Image, Progress};
use crate::service::preheat::{P2P_PREHEAT, PreheatTask};

/// How long one task follows a provider's job before leaving a follow-up.
const POLL_BUDGET: Duration = Duration::from_secs(50);
/// How often it asks.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// How long a provider's pull token lasts.
const TOKEN_TTL_SECS: i64 = 3600;

/// The preheat job. The one that queues tasks needs no environment; a
/// worker's has the token keys and the registry's address ([`ScanEnv`]).
#[derive(Debug, Clone, Default)]
pub struct PreheatJob {
    env: Option<Arc<ScanEnv>>,
}

impl PreheatJob {
    pub fn queued() -> Self {
        Self { env: None }
    }

    pub fn with_env(env: ScanEnv) -> Self {
        Self { env: Some(Arc::new(env)) }
    }

    fn env(&self) -> Result<&ScanEnv, JobError> {
        self.env.as_deref().ok_or_else(|| JobError::Retry("this worker cannot reach preheat providers".into()))
    }
}

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::Fatal(e.to_string())
}

fn driver_error(e: DriverError) -> JobError {
    match e {
        DriverError::Unavailable(m) => JobError::Retry(m),
        DriverError::Refused(m) => JobError::Fatal(m),
    }
}

#[async_trait]
impl Job for PreheatJob {
    fn kind(&self) -> &'static str {
        P2P_PREHEAT
    }

    fn queue(&self) -> &'static str {
        crate::queue::JOBS
    }

    async fn run(&self, ctx: &mut TaskContext) -> Result<(), JobError> {
        let task: PreheatTask =
            serde_json::from_value(ctx.payload.clone()).map_err(|e| fatal(format!("bad parameters: {e}")))?;
        match task {
            PreheatTask::Plan { policy_id, project, after } => self.plan(ctx, policy_id, &project, after).await,
            task @ PreheatTask::Preheat { .. } => self.preheat(ctx, task).await,
        }
    }
}

impl PreheatJob {
    /// The driver of instance `id`, when it may be used.
    async fn driver(&self, ctx: &TaskContext, id: i64) -> Result<Driver, JobError> {
        let env = self.env()?;
        let instance = ctx
            .registry
            .p2p_instance_by_id(id)
            .await?
            .ok_or_else(|| fatal(format!("preheat instance {id} does not exist")))?;
        if !instance.enabled {
            return Err(fatal(format!("preheat instance {} is disabled", instance.name)));
        }
        let sealer = Sealer::new(&env.keys).map_err(fatal)?;
        Ok(instance.driver(&sealer)?)
    }

    async fn plan(
        &self,
        ctx: &mut TaskContext,
        policy_id: i64,
        project: &str,
        after: Option<String>,
    ) -> Result<(), JobError> {
        let reg = ctx.registry.clone();
        let Some(policy) = reg.preheat_policy_by_id(project, policy_id).await? else {
            ctx.log(format!("policy {policy_id} is gone: nothing to do"));
            return Ok(());
        };
        if !policy.enabled && reg.execution_record(ctx.execution).await?.trigger != "MANUAL" {
            ctx.log(format!("policy {} is disabled: nothing to do", policy.name));
            return Ok(());
        }
        if after.is_none() {
            let driver = self.driver(ctx, policy.provider_id).await?;
            driver.healthy().await.map_err(|e| {
                fatal(format!("preheat instance {} at {} is not healthy: {e}", policy.provider_name, driver.endpoint))
            })?;
            ctx.log(format!("instance {} at {} is healthy", policy.provider_name, driver.endpoint));
        }
        let (tasks, next) = reg.preheat_plan(&policy, after).await?;
        ctx.log(format!("{} matching artifacts to preheat", tasks.len()));
        for t in &tasks {
            if let PreheatTask::Preheat { repository, tag, .. } = t {
                ctx.log(format!("to preheat: {repository}:{tag}"));
            }
            ctx.follow_up(t.to_value()?);
        }
        if let Some(after) = next {
            let more = PreheatTask::Plan { policy_id, project: project.to_owned(), after: Some(after) };
            ctx.follow_up(more.to_value()?);
        }
        ctx.set_attr("artifacts", tasks.len());
        Ok(())
    }

    async fn preheat(&self, ctx: &mut TaskContext, task: PreheatTask) -> Result<(), JobError> {
        let PreheatTask::Preheat {
            instance_id, ref repository, ref tag, ref digest, ref media_type, ref scope, ..
        } = task
        else {
            return Err(fatal("not a preheat task"));
        };
        let env = self.env()?;
        ctx.set_attr("artifact", format!("{repository}:{tag}"));
        ctx.set_attr("digest", digest.clone());
        ctx.set_attr("kind", "image");
        let driver = self.driver(ctx, instance_id).await?;
        let reg = ctx.registry.clone();
        let given = match &task {
            PreheatTask::Preheat { job: Some(j), .. } => Some(j.clone()),
            _ => None,
        };
        let known = match given {
            Some(j) => Some(j),
            None => reg.preheat_submitted(ctx.execution, ctx.task).await?,
        };
        let mut progress = match known {
            Some(job) => {
                ctx.log(format!("following provider job {job}"));
                Progress::Running(job)
            }
            None => {
                let access = Access {
                    kind: "repository".to_owned(),
                    name: repository.clone(),
                    actions: vec!["pull".to_owned()],
                };
                let now = crate::meta::now_unix();
                let jwt = token::issue(&env.keys, &env.service, "p2p-preheat", vec![access], TOKEN_TTL_SECS, now);
                let base = env.external_url.trim_end_matches('/');
                let image = Image {
                    url: format!("{base}/v2/{repository}/manifests/{tag}"),
                    authorization: format!("Bearer {jwt}"),
                    repository: repository.clone(),
                    tag: tag.clone(),
                    digest: digest.clone(),
                    media_type: media_type.clone(),
                    scope: scope.clone(),
                };
                ctx.log(format!("preheating {repository}:{tag} ({digest}) with {} {}", driver.vendor, driver.endpoint));
                let p = driver.preheat(&image).await.map_err(driver_error)?;
                match &p {
                    Progress::Running(job) => {
                        reg.record_preheat_submitted(ctx.execution, ctx.task, job).await?;
                        ctx.log(format!("submitted as provider job {job}"));
                    }
                    Progress::Done => reg.record_preheat_submitted(ctx.execution, ctx.task, "").await?,
                    Progress::Failed(_) => {}
                }
                p
            }
        };
        let started = Instant::now();
        loop {
            match progress {
                Progress::Done => {
                    ctx.log(format!("{repository}:{tag} preheated"));
                    return Ok(());
                }
                Progress::Failed(why) => {
                    ctx.log(format!("preheat failed: {why}"));
                    return Err(JobError::Fatal(why));
                }
                Progress::Running(job) if job.is_empty() => {
                    ctx.log(format!("{repository}:{tag} preheated"));
                    return Ok(());
                }
                Progress::Running(job) => {
                    if ctx.stopped().await {
                        ctx.log("stopped");
                        return Ok(());
                    }
                    if started.elapsed() + POLL_EVERY > POLL_BUDGET {
                        ctx.log(format!("provider job {job} still running: polling on in a follow-up task"));
                        let mut next = task.clone();
                        if let PreheatTask::Preheat { job: j, .. } = &mut next {
                            *j = Some(job);
                        }
                        ctx.follow_up(next.to_value()?);
                        return Ok(());
                    }
                    tokio::time::sleep(POLL_EVERY).await;
                    progress = driver.progress(&job).await.map_err(driver_error)?;
                }
            }
        }
    }
}
