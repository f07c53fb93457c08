//! A fake AWS Lambda Runtime API for the function tests: it hands a
//! function process the events it is given, one at a time, and keeps what
//! the function answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::Value;

/// What the fake runtime hands out and what it got back.
#[derive(Default)]
pub struct Runtime {
    events: Mutex<VecDeque<(String, Value)>>,
    responses: Mutex<Vec<(String, Value)>>,
    init_errors: Mutex<Vec<Value>>,
    /// When the function first asked for an event: its init was done.
    first_next: Mutex<Option<Instant>>,
}

async fn next(State(rt): State<Arc<Runtime>>) -> Response {
    rt.first_next.lock().unwrap().get_or_insert_with(Instant::now);
    loop {
        let event = rt.events.lock().unwrap().pop_front();
        if let Some((id, body)) = event {
            let mut resp = axum::Json(body).into_response();
            let h = resp.headers_mut();
            h.insert("lambda-runtime-aws-request-id", HeaderValue::from_str(&id).unwrap());
            h.insert("lambda-runtime-deadline-ms", HeaderValue::from_static("9999999999999"));
            h.insert(
                "lambda-runtime-invoked-function-arn",
                HeaderValue::from_static("arn:aws:lambda:us-east-1:123456789012:function:berth"),
            );
            h.insert("lambda-runtime-trace-id", HeaderValue::from_static("Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700"));
            return resp;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn respond(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> StatusCode {
    rt.responses.lock().unwrap().push((id, serde_json::from_slice(&body).unwrap_or(Value::Null)));
    StatusCode::ACCEPTED
}

async fn init_error(State(rt): State<Arc<Runtime>>, body: Bytes) -> StatusCode {
    rt.init_errors.lock().unwrap().push(serde_json::from_slice(&body).unwrap_or(Value::Null));
    StatusCode::ACCEPTED
}

/// A function process under the fake runtime; killed when dropped.
pub struct Function {
    rt: Arc<Runtime>,
    child: Child,
    started: Instant,
    n: usize,
}

impl Drop for Function {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Function {
    /// Starts the runtime and `binary` under it with `env`.
    pub async fn start(binary: &str, name: &str, env: &[(String, String)]) -> Self {
        let rt = Arc::new(Runtime::default());
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(respond))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(respond))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(rt.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let started = Instant::now();
        let child = Command::new(binary)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        Self { rt, child, started, n: 0 }
    }

    /// How long the function took from its start to its first request for
    /// an event (its cold init), once it asked.
    pub fn init_time(&self) -> Option<Duration> {
        self.rt.first_next.lock().unwrap().map(|t| t - self.started)
    }

    /// Hands the function one event and waits (up to 60 s) for its answer.
    pub async fn invoke(&mut self, event: Value) -> Value {
        self.n += 1;
        let id = format!("req-{}", self.n);
        self.rt.events.lock().unwrap().push_back((id.clone(), event));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some((_, v)) = self.rt.responses.lock().unwrap().iter().find(|(i, _)| *i == id) {
                return v.clone();
            }
            assert!(
                self.rt.init_errors.lock().unwrap().is_empty(),
                "init failed: {:?}",
                self.rt.init_errors.lock().unwrap()
            );
            assert!(self.child.try_wait().unwrap().is_none(), "the function exited");
            assert!(Instant::now() < deadline, "no answer to event {id} within 60 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// A function's environment over fresh AWS resources (on the emulator)
/// named after `stem`, made as `berth migrate` makes them, with the
/// context over them: what a deployed function would find.
pub async fn deployed(
    stem: &str,
    extra: &[(&str, &str)],
) -> (Vec<(String, String)>, std::sync::Arc<crate::context::AppContext>) {
    let name = super::unique(stem);
    let mut env: Vec<(String, String)> = vec![
        ("BERTH_BACKEND".into(), "aws".into()),
        ("BERTH_AWS_BUCKET".into(), name.clone()),
        ("BERTH_AWS_TABLE".into(), name.clone()),
        ("BERTH_AWS_QUEUE_PREFIX".into(), format!("{name}-")),
        ("BERTH_ADMIN_PASSWORD".into(), "Harbor12345".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let config = crate::config::Config::load_from(None, env.clone(), &crate::config::Overrides::default()).unwrap();
    assert_eq!(config.backend, crate::config::Backend::Aws);
    crate::migrate::apply_aws(&config).await.unwrap();
    let ctx = crate::context::AppContext::open(config).await.unwrap();
    ctx.bootstrap().await.unwrap();
    (env, ctx)
}
