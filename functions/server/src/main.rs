//! `berth`: the registry in one binary. `serve` runs the HTTP API and the
//! background workers over the configured backends; `worker` runs only the
//! workers (container replicas of the background side); `migrate` prepares
//! a backend's resources; `admin` manages accounts offline (a lost admin
//! password); `import` brings a Distribution store in; `vulndb` manages
//! the scanner's database; `push-blob` is a client of the upload extension. Everything
//! else lives in the `berth` library.

mod push_blob;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use berth::config::{Backend, Config, Overrides, Role};
use berth::context::AppContext;
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

/// jemalloc returns freed memory to the system (settings in
/// `.cargo/config.toml`), so a burst of requests leaves no lasting RSS.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[derive(Parser)]
#[command(name = "berth", version, about = "an object-store-first container registry")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry (default: local backends under ./data on 127.0.0.1:5000).
    Serve {
        #[command(flatten)]
        common: CommonArgs,
        /// Address to listen on.
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Which endpoints to serve: `all`, or `upload` for an upload host.
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
        /// Run no queue consumers or scheduler here (other processes run
        /// `berth worker`); the event relay still runs.
        #[arg(long)]
        no_workers: bool,
    },
    /// Run the background workers only: the event relay, the scheduler and
    /// the consumers of the given queues (default: all of them).
    Worker {
        #[command(flatten)]
        common: CommonArgs,
        /// A queue to consume (`events`, `webhooks`, `jobs`); repeatable.
        #[arg(long = "queue", value_parser = parse_queue)]
        queues: Vec<&'static str>,
    },
    /// Create or upgrade the backend's bucket, table and queues (idempotent).
    Migrate {
        #[command(flatten)]
        common: CommonArgs,
    },
    /// Push a file as a blob through the berth upload extension: its bytes go
    /// straight to the object store through presigned part URLs (registries
    /// on S3 only). Prints the blob's digest.
    PushBlob(push_blob::PushBlob),
    /// Manage local accounts directly in the backend (the local backend only
    /// while no `berth serve` uses its data folder). Passwords are read from
    /// the first line of standard input.
    Admin {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Import a Distribution (Docker registry 2) filesystem store: every
    /// repository, manifest, tag and blob, read from the folder directly
    /// (no registry needs to run). One-level names go into --project.
    /// Running it again copies nothing twice. (The local backend only
    /// while no `berth serve` uses its data folder.)
    ///
    /// With --metadata, PATH is instead a file `berth export` wrote: its
    /// items are restored into this backend's table, which must be empty
    /// (or --overwrite).
    Import {
        #[command(flatten)]
        common: CommonArgs,
        /// The project for one-level repository names (created if missing).
        #[arg(long, default_value = "library")]
        project: String,
        /// PATH is a metadata export to restore.
        #[arg(long)]
        metadata: bool,
        /// With --metadata: restore into a table that holds items (items of
        /// the same keys are replaced).
        #[arg(long, requires = "metadata")]
        overwrite: bool,
        /// The store's root (its `rootdirectory`), or its `docker/registry/v2`.
        path: PathBuf,
    },
    /// Export the metadata (every item of the table: projects, accounts,
    /// artifacts, policies, executions…) to a file of JSON lines, for backup
    /// or a move to another backend; blobs stay in the object store. Put
    /// the registry in read-only mode first for a consistent copy.
    Export {
        #[command(flatten)]
        common: CommonArgs,
        /// The file to write.
        path: PathBuf,
    },
    /// The built-in scanner's vulnerability database (the local backend
    /// only while no `berth serve` uses its data folder).
    Vulndb {
        #[command(flatten)]
        common: CommonArgs,
        #[command(subcommand)]
        action: VulndbAction,
    },
}

#[derive(Subcommand)]
enum VulndbAction {
    /// Replace the database with the OSV records of a folder (of `*.json`,
    /// searched through) or of zips as osv.dev publishes them; repeatable.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Show what the current database holds.
    Show,
}

#[derive(Subcommand)]
enum AdminAction {
    /// Set a local user's password (default: the administrator's).
    Password {
        #[arg(long, default_value = "admin")]
        username: String,
    },
    /// Create a local user, optionally a system administrator.
    CreateUser {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        realname: Option<String>,
        #[arg(long)]
        sysadmin: bool,
    },
    /// Recompute projects' storage usage from what their repositories
    /// reference, correct what differs and print the drift (all projects,
    /// or one). Safe while the registry serves.
    QuotaSync {
        #[arg(long)]
        project: Option<String>,
    },
    /// Collect garbage now, in this process: untagged artifacts (with
    /// --delete-untagged), links nothing references and blobs nothing
    /// links, older than gc.time_window_secs. Safe while the registry serves.
    Gc {
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        delete_untagged: bool,
    },
}

#[derive(Args)]
struct CommonArgs {
    /// TOML configuration file (`BERTH_*` variables and flags override it).
    #[arg(long, env = "BERTH_CONFIG")]
    config: Option<PathBuf>,
    /// Folder of the local backends.
    #[arg(long = "data")]
    data_dir: Option<PathBuf>,
    /// `local` (files + embedded database) or `aws` (S3, DynamoDB, SQS).
    #[arg(long, value_parser = parse_backend)]
    backend: Option<Backend>,
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    match s {
        "local" => Ok(Backend::Local),
        "aws" => Ok(Backend::Aws),
        _ => Err("expected `local` or `aws`".to_owned()),
    }
}

fn parse_queue(s: &str) -> Result<&'static str, String> {
    berth::jobs::host::queue_named(s).ok_or_else(|| format!("expected one of {}", berth::queue::ALL_QUEUES.join(", ")))
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "all" => Ok(Role::All),
        "upload" => Ok(Role::Upload),
        _ => Err("expected `all` or `upload`".to_owned()),
    }
}

impl CommonArgs {
    fn load(&self, listen: Option<SocketAddr>, role: Option<Role>) -> anyhow::Result<Config> {
        let overrides = Overrides { listen, data_dir: self.data_dir.clone(), backend: self.backend, role };
        Ok(Config::load(self.config.as_deref(), &overrides)?)
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { common, listen, role, no_workers } => {
            let config = common.load(listen, role)?;
            berth::telemetry::init(config.log.format, &config.log.level);
            let listen = config.server.listen;
            let ctx = AppContext::open(config).await?;
            if let Some(generated) = ctx.bootstrap().await? {
                eprintln!(
                    "berth: created the administrator `admin` with password {generated} \
                     (shown only this once; set BERTH_ADMIN_PASSWORD before the first start to choose it)"
                );
            }
            let stop = CancellationToken::new();
            let queues: &[&'static str] = if no_workers { &[] } else { &berth::queue::ALL_QUEUES };
            let background = berth::jobs::host::start(&ctx, queues, &stop);
            let served = berth::http::serve(ctx, listen).await;
            stop.cancel();
            finish(background).await;
            served?;
        }
        Command::Worker { common, queues } => {
            let config = common.load(None, None)?;
            berth::telemetry::init(config.log.format, &config.log.level);
            let ctx = AppContext::open(config).await?;
            ctx.bootstrap().await?;
            let queues = if queues.is_empty() { berth::queue::ALL_QUEUES.to_vec() } else { queues };
            let stop = CancellationToken::new();
            let background = berth::jobs::host::start(&ctx, &queues, &stop);
            tracing::info!(queues = ?queues, "berth worker running");
            berth::http::serve::shutdown_signal().await;
            stop.cancel();
            finish(background).await;
        }
        Command::Migrate { common } => {
            let config = common.load(None, None)?;
            berth::telemetry::init(config.log.format, &config.log.level);
            let backend = config.backend;
            let mut report = match backend {
                Backend::Aws => berth::migrate::apply_aws(&config).await?,
                Backend::Local => berth::migrate::Report::default(),
            };
            // Opening the context checks the AWS resources just made (and
            // migrates a local store); bootstrapping creates the admin and
            // the default project.
            let ctx = AppContext::open(config).await?;
            if backend == Backend::Local {
                report = ctx.migrate_local().await?;
            }
            if let Some(generated) = ctx.bootstrap().await? {
                println!("created the administrator `admin` with password {generated} (shown only this once)");
            }
            for step in report.steps {
                println!("{step}");
            }
        }
        Command::Admin { common, action } => {
            let config = common.load(None, None)?;
            let ctx = AppContext::open(config).await?;
            ctx.bootstrap().await?;
            let registry = ctx.registry();
            let read_password = || -> anyhow::Result<String> {
                let mut password = String::new();
                std::io::stdin().read_line(&mut password)?;
                Ok(password.trim_end_matches(['\r', '\n']).to_owned())
            };
            match action {
                AdminAction::Password { username } => {
                    let user =
                        registry.user_by_name(&username).await?.ok_or_else(|| anyhow::anyhow!("no user {username}"))?;
                    registry.set_password(user.user_id, &read_password()?).await?;
                    println!("password of {username} changed");
                }
                AdminAction::CreateUser { username, email, realname, sysadmin } => {
                    let new = berth::service::users::NewUser {
                        realname: realname.unwrap_or_else(|| username.clone()),
                        username,
                        email,
                        comment: String::new(),
                        password: Some(read_password()?),
                    };
                    let prefix = registry.settings().await?.robot_prefix().to_owned();
                    let user = registry.create_user(new, berth::service::users::Source::Db, &prefix).await?;
                    if sysadmin {
                        registry.set_sysadmin(user.user_id, true).await?;
                    }
                    println!("created user {} (id {})", user.username, user.user_id);
                }
                AdminAction::Gc { dry_run, delete_untagged } => {
                    let window_secs = i64::try_from(ctx.config.gc.time_window_secs).unwrap_or(i64::MAX);
                    let p = berth::service::gc::GcParams { delete_untagged, dry_run, workers: 1, window_secs };
                    let total = registry.collect_garbage(&p, |line| println!("{line}")).await?;
                    println!(
                        "{} blobs and {} manifests eligible for deletion, {} bytes{}",
                        total.purged_blobs,
                        total.purged_manifests,
                        total.freed_space,
                        if dry_run { " (dry run: nothing deleted)" } else { " freed" }
                    );
                }
                AdminAction::QuotaSync { project } => {
                    let projects = match project {
                        Some(p) => vec![p],
                        None => registry.project_names().await?,
                    };
                    for p in projects {
                        let r = registry.sync_quota(&p).await?;
                        println!(
                            "{}: usage {} -> {} bytes (drift {}), {} entries corrected, {} changed during the sync",
                            r.project,
                            r.used_before,
                            r.used_after,
                            r.drift(),
                            r.entries_corrected,
                            r.entries_skipped
                        );
                    }
                }
            }
        }
        Command::Vulndb { common, action } => {
            let config = common.load(None, None)?;
            let ctx = AppContext::open(config).await?;
            ctx.bootstrap().await?;
            let registry = ctx.registry();
            match action {
                VulndbAction::Import { paths } => {
                    let (info, summary) = registry.import_vulndb(paths).await?;
                    println!(
                        "imported {} of {} OSV records ({}), updated at {}",
                        summary.records_imported,
                        summary.records_read,
                        info.ecosystems.join(", "),
                        if info.updated_at.is_empty() { "unknown" } else { &info.updated_at }
                    );
                    for (reason, n) in &summary.skipped {
                        println!("skipped {n}: {reason}");
                    }
                }
                VulndbAction::Show => match registry.vulndb_info().await? {
                    Some(info) => println!(
                        "{} records ({}), updated at {}, imported at {}",
                        info.records,
                        info.ecosystems.join(", "),
                        info.updated_at,
                        berth::service::record::rfc3339_ms(info.imported_at)
                    ),
                    None => println!("no vulnerability database has been imported"),
                },
            }
        }
        Command::Import { common, metadata: true, overwrite, path, .. } => {
            let config = common.load(None, None)?;
            let ctx = AppContext::open(config).await?;
            let file = tokio::fs::File::open(&path).await?;
            let n = ctx.registry().import_metadata(tokio::io::BufReader::new(file), overwrite).await?;
            println!("restored {n} items from {}", path.display());
        }
        Command::Export { common, path } => {
            let config = common.load(None, None)?;
            let ctx = AppContext::open(config).await?;
            let mut file = tokio::io::BufWriter::new(tokio::fs::File::create(&path).await?);
            let n = ctx.registry().export_metadata(&mut file).await?;
            eprintln!("exported {n} items");
        }
        Command::Import { common, project, path, .. } => {
            let config = common.load(None, None)?;
            let ctx = AppContext::open(config).await?;
            ctx.bootstrap().await?;
            let s = ctx.registry().import_distribution(&path, &project).await?;
            println!(
                "imported {} repositories: {} manifests, {} tags, {} blobs ({} bytes) copied",
                s.repositories, s.manifests, s.tags, s.blobs, s.bytes
            );
            for f in &s.failures {
                eprintln!("not imported: {f}");
            }
            if !s.failures.is_empty() {
                anyhow::bail!("{} items were not imported", s.failures.len());
            }
        }
        Command::PushBlob(push) => push.run().await?,
    }
    Ok(())
}

/// Waits (a bounded time) for the background tasks to finish their work
/// in hand: the relay's last flush, the tasks running.
async fn finish(tasks: Vec<tokio::task::JoinHandle<()>>) {
    let all = futures::future::join_all(tasks);
    if tokio::time::timeout(std::time::Duration::from_secs(20), all).await.is_err() {
        eprintln!("berth: background work still running after 20 s; leaving it to the queue's redelivery");
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    /// The allocator runs with the settings of `.cargo/config.toml`; a build
    /// that missed them (cargo run from outside the repository) would keep
    /// the peaks of every thread.
    #[test]
    fn jemalloc_has_the_settings_of_the_cargo_config() {
        // The string comes as jemalloc stores it, with its C terminator.
        let conf = tikv_jemalloc_ctl::config::malloc_conf::read().unwrap().trim_end_matches('\0');
        for setting in ["percpu_arena:phycpu", "background_thread:true", "dirty_decay_ms:100", "muzzy_decay_ms:0"] {
            assert!(conf.split(',').any(|s| s == setting), "{setting} missing from {conf:?}");
        }
        assert_eq!(tikv_jemalloc_ctl::opt::tcache_max::read().unwrap(), 1024);
    }
}
