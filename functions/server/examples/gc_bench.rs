//! Garbage collection timing for `scripts/bench`: seeds a store with
//! `--blobs` blobs in artifacts of five (a config and four layers, each
//! blob its own), twenty artifacts to a repository, deletes every other
//! artifact, then times one collection (protection window 0) run by
//! `--workers` workers that each take one task at a time, as Lambda
//! functions with a batch size of one would. Prints `key=value` lines.
//!
//! ```text
//! gc_bench --blobs 100000 --workers 4 --data /tmp/gc            # local backends
//! gc_bench --blobs 10000 --workers 4 --backend aws              # BERTH_AWS_* names, migrated
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Parser;
use futures::StreamExt;

use berth::config::{Backend, Config, Overrides};
use berth::context::AppContext;
use berth::jobs::gc::{GcJob, start_payload};
use berth::jobs::worker::Handled;
use berth::oci::{Digest, Reference, RepoName, Tag};
use berth::queue::JOBS;
use berth::service::gc::GcParams;
use berth::service::projects::{NewProject, Owner};

const BLOBS_PER_ARTIFACT: usize = 5;
const ARTIFACTS_PER_REPO: usize = 20;
/// Requests in flight while seeding.
const SEED_CONCURRENCY: usize = 32;

#[derive(Parser)]
struct Cli {
    #[arg(long)]
    blobs: usize,
    #[arg(long, default_value_t = 1)]
    workers: usize,
    #[arg(long, default_value = "local")]
    backend: String,
    #[arg(long)]
    data: Option<PathBuf>,
}

fn blob(artifact: usize, n: usize) -> Bytes {
    Bytes::from(format!("gc bench blob {artifact} {n} {}", "x".repeat(64)))
}

fn manifest(artifact: usize) -> Bytes {
    let desc = |b: &Bytes, media: &str| serde_json::json!({"mediaType": media, "digest": Digest::sha256_of(b).to_string(), "size": b.len()});
    let layers: Vec<_> =
        (1..BLOBS_PER_ARTIFACT).map(|n| desc(&blob(artifact, n), "application/vnd.oci.image.layer.v1.tar")).collect();
    Bytes::from(
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc(&blob(artifact, 0), "application/vnd.oci.image.config.v1+json"),
            "layers": layers}))
        .unwrap(),
    )
}

fn repo_of(artifact: usize) -> RepoName {
    RepoName::parse(&format!("gcbench/r{:05}", artifact / ARTIFACTS_PER_REPO)).unwrap()
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let backend = match cli.backend.as_str() {
        "aws" => Backend::Aws,
        _ => Backend::Local,
    };
    let overrides = Overrides { data_dir: cli.data.clone(), backend: Some(backend), ..Overrides::default() };
    let config = Config::load(None, &overrides).context("configuration")?;
    let ctx = AppContext::open(config).await.context("opening the backends")?;
    let reg = ctx.registry();
    let owner = Owner { id: 1, name: "admin".into(), sysadmin: true };
    reg.create_project(NewProject { name: "gcbench".into(), ..NewProject::default() }, &owner)
        .await
        .context("creating the project")?;

    let artifacts = cli.blobs.div_ceil(BLOBS_PER_ARTIFACT);
    let started = Instant::now();
    let pushes = futures::stream::iter(0..artifacts).map(|a| {
        let reg = reg.clone();
        async move {
            let repo = repo_of(a);
            for n in 0..BLOBS_PER_ARTIFACT {
                let bytes = blob(a, n);
                let digest = Digest::sha256_of(&bytes);
                let up = reg.start_upload(&repo).await?;
                let body = futures::stream::once(async move { Ok(bytes) }).boxed();
                reg.complete_upload(&repo, &up.id, &digest, None, Some(body)).await?;
            }
            let tag = Reference::Tag(Tag::parse(&format!("a{a}")).unwrap());
            let put = reg.put_manifest(&repo, &tag, Some("application/vnd.oci.image.manifest.v1+json"), manifest(a));
            put.await.map(|o| o.digest)
        }
    });
    let digests: Vec<Digest> = pushes
        .buffered(SEED_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .context("seeding")?;
    let seeded = started.elapsed();
    // Every other artifact goes: its blobs become garbage.
    let deletes = futures::stream::iter(digests.iter().enumerate().filter(|(a, _)| a % 2 == 1)).map(|(a, d)| {
        let reg = reg.clone();
        async move { reg.delete_manifest(&repo_of(a), &Reference::Digest(d.clone())).await }
    });
    let deleted: Vec<_> = deletes.buffer_unordered(SEED_CONCURRENCY).collect().await;
    deleted.into_iter().collect::<Result<Vec<_>, _>>().context("deleting")?;

    // The relay queues what the table's outbox holds.
    let stop = tokio_util::sync::CancellationToken::new();
    let relay = tokio::spawn(ctx.events.clone().run(stop.clone()));
    let params = GcParams { delete_untagged: false, dry_run: false, workers: cli.workers as u32, window_secs: 0 };
    let started = Instant::now();
    let id = reg.start_execution(&GcJob, 0, "MANUAL", serde_json::Map::new(), vec![start_payload(params)]).await?;
    let worker = Arc::new(berth::jobs::host::worker(&ctx));
    let workers: Vec<_> = (0..cli.workers)
        .map(|_| {
            let (worker, queue, stop) = (worker.clone(), ctx.queue.clone(), stop.clone());
            tokio::spawn(async move {
                let vis = berth::jobs::worker::visibility(JOBS);
                while !stop.is_cancelled() {
                    let Ok(batch) = queue.receive(JOBS, 1, vis, Duration::from_millis(100)).await else { continue };
                    for m in batch {
                        match worker.handle(JOBS, &m).await {
                            Handled::Done => queue.ack(JOBS, &m.receipt).await.ok(),
                            Handled::Retry(d) => queue.retry_later(JOBS, &m.receipt, d).await.ok(),
                        };
                    }
                }
            })
        })
        .collect();
    let execution = loop {
        let x = reg.execution(id).await?;
        if x.status.is_final() {
            break x;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let took = started.elapsed();
    stop.cancel();
    for w in workers {
        let _ = w.await;
    }
    let _ = relay.await;
    let tasks = reg.tasks_of(id).await?;
    let tally = berth::service::gc::GcTally::sum(
        &tasks
            .iter()
            .map(|t| serde_json::from_value(serde_json::Value::Object(t.extra_attrs.clone())).unwrap_or_default())
            .collect::<Vec<_>>(),
    );
    println!("blobs={}", artifacts * BLOBS_PER_ARTIFACT);
    println!("artifacts={artifacts}");
    println!("workers={}", cli.workers);
    println!("seed_secs={:.1}", seeded.as_secs_f64());
    println!("status={}", execution.status.name());
    println!("gc_secs={:.2}", took.as_secs_f64());
    println!("tasks={}", tasks.len());
    println!("purged_blobs={}", tally.purged_blobs);
    println!("unlinked={}", tally.unlinked);
    println!("freed_bytes={}", tally.freed_space);
    Ok(())
}
