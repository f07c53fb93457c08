//! `Queue` on Amazon SQS (or any SQS-compatible endpoint).
//!
//! A logical queue `q` is the SQS queue `prefix + q`; its dead-letter queue
//! is the ordinary SQS queue `prefix + q-dlq`, named in `q`'s redrive
//! policy, so SQS itself dead-letters a message once it has been received
//! `max_attempts` times. Queue URLs are looked up once and cached.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::create_queue::CreateQueueError;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};

use super::{
    ALL_QUEUES, ErrorKind, MAX_DELAY, Message, PortError, PortResult, Queue, QueueSpec, dead_letter_queue,
    validate_receive, validate_send,
};
use crate::aws::sdk_error;
use crate::config::AwsConfig;

/// SQS's longest message retention, so that dead letters wait two weeks
/// for someone to look at them.
const DLQ_RETENTION_SECS: u32 = 14 * 24 * 3600;
/// The visibility timeout of a queue `ensure` creates. berth's own receives
/// name theirs; a Lambda event source uses the queue's, which a deployment
/// sizes to its worker and `ensure` then keeps.
const DEFAULT_VISIBILITY_SECS: u32 = 30;
/// The range SQS accepts for a redrive policy's `maxReceiveCount`.

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    prefix: String,
    /// Logical queue name → queue URL; shared by clones so that one lookup
    /// serves every handle.
    urls: Arc<RwLock<HashMap<String, String>>>,
}

impl SqsQueue {
    pub fn from_config(cfg: &AwsConfig, sdk: &aws_config::SdkConfig) -> Self {
        Self::with_prefix(sdk, &cfg.queue_prefix)
    }

    pub fn with_prefix(sdk: &aws_config::SdkConfig, prefix: &str) -> Self {
        Self { client: Client::new(sdk), prefix: prefix.to_owned(), urls: Arc::default() }
    }

    /// Checks that every queue in [`ALL_QUEUES`] (and its DLQ) exists:
    /// `NotFound` naming the missing queue, `Unavailable` when the endpoint
    /// is unreachable.
    pub async fn check(&self) -> PortResult<()> {
        for queue in ALL_QUEUES {
            for name in [queue.to_owned(), dead_letter_queue(queue)] {
                // Always asks SQS: a cached URL would hide a queue deleted since.
                match self.lookup(&name).await {
                    Ok(url) => self.remember(&name, &url),
                    Err(e) if e.is(ErrorKind::NotFound) => {
                        return Err(e.context(format!(
                            "SQS queue {} is missing; run `berth migrate --backend aws` to create the queues",
                            self.sqs_name(&name)
                        )));
                    }
                    Err(e) => return Err(e.context("checking the SQS queues")),
                }
            }
        }
        Ok(())
    }

    fn sqs_name(&self, queue: &str) -> String {
        format!("{}{queue}", self.prefix)
    }

    fn cached(&self, queue: &str) -> Option<String> {
        self.urls.read().unwrap_or_else(PoisonError::into_inner).get(queue).cloned()
    }

    fn remember(&self, queue: &str, url: &str) {
        self.urls.write().unwrap_or_else(PoisonError::into_inner).insert(queue.to_owned(), url.to_owned());
    }

    fn forget(&self, queue: &str) {
        self.urls.write().unwrap_or_else(PoisonError::into_inner).remove(queue);
    }

    async fn url(&self, queue: &str) -> PortResult<String> {
        if let Some(url) = self.cached(queue) {
            return Ok(url);
        }
        let url = self.lookup(queue).await?;
        self.remember(queue, &url);
        Ok(url)
    }

    async fn lookup(&self, queue: &str) -> PortResult<String> {
        let name = self.sqs_name(queue);
        let out = self
            .client
            .get_queue_url()
            .queue_name(&name)
            .send()
            .await
            .map_err(|e| sqs_error(&format!("looking up SQS queue {name}"), e))?;
        out.queue_url
            .ok_or_else(|| PortError::msg(ErrorKind::Internal, format_args!("SQS gave no URL for queue {name}")))
    }

    /// Translates an error of an operation on `queue`; a vanished queue
    /// also drops its cached URL, so a queue created again is found anew.
    fn failed<E>(&self, queue: &str, what: &str, err: SdkError<E, aws_sdk_sqs::config::http::HttpResponse>) -> PortError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let e = sqs_error(&format!("{what} on SQS queue {}", self.sqs_name(queue)), err);
        if e.is(ErrorKind::NotFound) {
            self.forget(queue);
        }
        e
    }

    /// Creates `queue` with `attrs`, or brings an existing queue's
    /// attributes in line (keeping its messages), except those named in
    /// `initial_only`, which only a new queue gets. Returns its URL.
    async fn create(
        &self,
        queue: &str,
        attrs: HashMap<QueueAttributeName, String>,
        initial_only: &[QueueAttributeName],
    ) -> PortResult<String> {
        let name = self.sqs_name(queue);
        let created = self.client.create_queue().queue_name(&name).set_attributes(Some(attrs.clone())).send().await;
        let url = match created {
            Ok(out) => out.queue_url.ok_or_else(|| {
                PortError::msg(ErrorKind::Internal, format_args!("SQS created queue {name} but gave no URL"))
            })?,
            // SQS refuses CreateQueue when the queue exists with other
            // attributes (say, a changed max_attempts); that is an update.
            Err(e) if matches!(e.as_service_error(), Some(CreateQueueError::QueueNameExists(_))) => {
                let url = self.lookup(queue).await?;
                let update = attrs.into_iter().filter(|(k, _)| !initial_only.contains(k)).collect();
                self.client
                    .set_queue_attributes()
                    .queue_url(&url)
                    .set_attributes(Some(update))
                    .send()
                    .await
                    .map_err(|e| self.failed(queue, "updating attributes", e))?;
                url
            }
            Err(e) => return Err(sqs_error(&format!("creating SQS queue {name}"), e)),
        };
        self.remember(queue, &url);
        Ok(url)
    }

    async fn arn(&self, queue: &str, url: &str) -> PortResult<String> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| self.failed(queue, "reading the ARN", e))?;
        out.attributes().and_then(|a| a.get(&QueueAttributeName::QueueArn)).cloned().ok_or_else(|| {
            PortError::msg(ErrorKind::Internal, format_args!("SQS gave no ARN for queue {}", self.sqs_name(queue)))
        })
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn ensure(&self, queue: &str, spec: QueueSpec) -> PortResult<()> {
        super::validate_spec(spec)?;
        // The DLQ comes first: the redrive policy names it by ARN.
        let dlq = dead_letter_queue(queue);
        let dlq_url = self
            .create(
                &dlq,
                HashMap::from([(QueueAttributeName::MessageRetentionPeriod, DLQ_RETENTION_SECS.to_string())]),
                &[],
            )
            .await?;
        let dlq_arn = self.arn(&dlq, &dlq_url).await?;
        let redrive = serde_json::json!({ "deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_attempts });
        self.create(
            queue,
            HashMap::from([
                (QueueAttributeName::RedrivePolicy, redrive.to_string()),
                (QueueAttributeName::VisibilityTimeout, DEFAULT_VISIBILITY_SECS.to_string()),
            ]),
            // A deployment sizes the visibility timeout to its consumers
            // (the Terraform module: six times the worker's timeout);
            // migrate must not shorten it under them.
            &[QueueAttributeName::VisibilityTimeout],
        )
        .await?;
        Ok(())
    }

    async fn send(&self, queue: &str, body: &str, delay: Duration) -> PortResult<String> {
        validate_send(body, delay)?;
        let url = self.url(queue).await?;
        let out = self
            .client
            .send_message()
            .queue_url(&url)
            .message_body(body)
            .delay_seconds(whole_secs(delay))
            .send()
            .await
            .map_err(|e| self.failed(queue, "sending a message", e))?;
        out.message_id.ok_or_else(|| PortError::msg(ErrorKind::Internal, "SQS accepted a message but gave no id"))
    }

    async fn receive(&self, queue: &str, max: usize, visibility: Duration, wait: Duration) -> PortResult<Vec<Message>> {
        validate_receive(max, visibility, wait)?;
        let url = self.url(queue).await?;
        let out = self
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(i32::try_from(max).unwrap_or(i32::MAX))
            .visibility_timeout(whole_secs(visibility))
            .wait_time_seconds(whole_secs(wait))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| self.failed(queue, "receiving messages", e))?;
        out.messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| {
                let attempts = m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    // It was delivered at least this once; failing the whole
                    // batch instead would leave it hidden for nothing.
                    .unwrap_or(1);
                match (m.message_id, m.receipt_handle) {
                    (Some(id), Some(receipt)) => {
                        Ok(Message { id, receipt, body: m.body.unwrap_or_default(), attempts })
                    }
                    _ => {
                        Err(PortError::msg(ErrorKind::Internal, "SQS delivered a message without id or receipt handle"))
                    }
                }
            })
            .collect()
    }

    async fn ack(&self, queue: &str, receipt: &str) -> PortResult<()> {
        let url = self.url(queue).await?;
        match self.client.delete_message().queue_url(&url).receipt_handle(receipt).send().await {
            Ok(_) => Ok(()),
            // A receipt of a message already deleted (acked twice, or by
            // another consumer of a redelivery) is what SQS calls invalid;
            // the message is gone either way, which is all an ack asks.
            Err(e) if e.code() == Some("ReceiptHandleIsInvalid") => {
                tracing::debug!(queue, "ack of a receipt SQS no longer knows; the message is already deleted");
                Ok(())
            }
            Err(e) => Err(self.failed(queue, "deleting a message", e)),
        }
    }

    async fn retry_later(&self, queue: &str, receipt: &str, delay: Duration) -> PortResult<()> {
        if delay > MAX_DELAY {
            return Err(PortError::msg(ErrorKind::InvalidInput, "retry delay over 15 minutes"));
        }
        let url = self.url(queue).await?;
        match self
            .client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(receipt)
            .visibility_timeout(whole_secs(delay))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // The delivery is over (acked, or its visibility ran out and the
            // message is deliverable again): nothing left to postpone.
            Err(e)
                if matches!(
                    e.code(),
                    Some("ReceiptHandleIsInvalid" | "AWS.SimpleQueueService.MessageNotInflight" | "MessageNotInflight")
                ) =>
            {
                Err(PortError::msg(
                    ErrorKind::NotFound,
                    format_args!(
                        "retry of a delivery no longer in flight on SQS queue {}: {}",
                        self.sqs_name(queue),
                        DisplayErrorContext(&e)
                    ),
                ))
            }
            Err(e) => Err(self.failed(queue, "changing a message's visibility", e)),
        }
    }
}

/// SQS takes whole seconds as an `i32`; the callers bound every duration
/// well below that, and SQS rejects whatever still overflows.
fn whole_secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// Maps the SQS error codes a caller must tell apart, then defers to the
/// shared translation (dispatch failures and timeouts are `Unavailable`).
/// Codes arrive in their query-protocol spelling when SQS sends the
/// `x-amzn-query-error` header and in their JSON-protocol one otherwise, so
/// both are listed.
fn sqs_error<E>(what: &str, err: SdkError<E, aws_sdk_sqs::config::http::HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let kind = match err.code() {
        Some("AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist") => ErrorKind::NotFound,
        Some(
            "RequestThrottled"
            | "ThrottlingException"
            | "Throttling"
            | "OverLimit"
            | "KMS.ThrottlingException"
            | "KmsThrottled"
            | "AWS.SimpleQueueService.QueueDeletedRecently"
            | "QueueDeletedRecently"
            | "ServiceUnavailable"
            | "InternalFailure"
            | "InternalError",
        ) => ErrorKind::Unavailable,
        Some(
            "InvalidMessageContents"
            | "InvalidParameterValue"
            | "InvalidAttributeValue"
            | "InvalidAttributeName"
            | "MissingParameter"
            | "InvalidAddress",
        ) => ErrorKind::InvalidInput,
        _ => return sdk_error(what, err),
    };
    PortError::msg(kind, format_args!("{what}: {}", DisplayErrorContext(&err)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::{Duration, Instant};

    use super::*;
    use crate::testkit::{emulator_available, unique};

    async fn fresh() -> Option<((), SqsQueue)> {
        if !emulator_available("sqs queue") {
            return None;
        }
        let sdk = crate::aws::sdk_config(&AwsConfig::default()).await;
        Some(((), SqsQueue::with_prefix(&sdk, &unique("berth-test-"))))
    }

    crate::queue_conformance!(fresh);

    #[tokio::test]
    async fn check_finds_missing_then_ensured_queues() {
        let Some(((), q)) = fresh().await else { return };
        let err = q.check().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
        assert!(err.to_string().contains("berth migrate --backend aws"), "{err}");
        for name in ALL_QUEUES {
            q.ensure(name, QueueSpec::default()).await.unwrap();
        }
        q.check().await.unwrap();
        // A second handle with an empty cache sees the same queues.
        let again = SqsQueue { urls: Arc::default(), ..q.clone() };
        again.check().await.unwrap();
    }

    #[tokio::test]
    async fn check_reports_an_unreachable_endpoint_quickly() {
        if !emulator_available("sqs check unreachable") {
            return;
        }
        let cfg =
            AwsConfig { endpoint: Some("http://127.0.0.1:9".into()), connect_timeout_secs: 1, ..Default::default() };
        let q = SqsQueue::from_config(&cfg, &crate::aws::sdk_config(&cfg).await);
        let started = Instant::now();
        let err = q.check().await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    }

    #[tokio::test]
    async fn ensure_updates_a_changed_spec_and_refuses_a_bad_one() {
        let Some(((), q)) = fresh().await else { return };
        let name = unique("t");
        q.ensure(&name, QueueSpec { max_attempts: 3 }).await.unwrap();
        q.send(&name, "kept", Duration::ZERO).await.unwrap();
        q.ensure(&name, QueueSpec { max_attempts: 4 }).await.unwrap();
        let url = q.url(&name).await.unwrap();
        let attrs = q
            .client
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::RedrivePolicy)
            .send()
            .await
            .unwrap();
        let policy: serde_json::Value =
            serde_json::from_str(&attrs.attributes().unwrap()[&QueueAttributeName::RedrivePolicy]).unwrap();
        assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), "4");
        let got = q.receive(&name, 10, Duration::from_secs(5), Duration::from_secs(1)).await.unwrap();
        assert_eq!(got.len(), 1, "updating the spec keeps messages");
        let err = q.ensure(&name, QueueSpec { max_attempts: 0 }).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    /// A deployment (the Terraform module) sets a queue's visibility
    /// timeout for its Lambda consumer; `berth migrate` afterwards keeps it.
    #[tokio::test]
    async fn ensure_keeps_the_visibility_timeout_of_an_existing_queue() {
        let Some(((), q)) = fresh().await else { return };
        let name = unique("t");
        let visibility = |url: String| {
            let q = q.clone();
            async move {
                let out = q
                    .client
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(QueueAttributeName::VisibilityTimeout)
                    .send()
                    .await
                    .unwrap();
                out.attributes().unwrap()[&QueueAttributeName::VisibilityTimeout].clone()
            }
        };
        q.ensure(&name, QueueSpec::default()).await.unwrap();
        let url = q.url(&name).await.unwrap();
        assert_eq!(visibility(url.clone()).await, DEFAULT_VISIBILITY_SECS.to_string(), "a new queue gets the default");
        q.client
            .set_queue_attributes()
            .queue_url(&url)
            .attributes(QueueAttributeName::VisibilityTimeout, "720")
            .send()
            .await
            .unwrap();
        q.ensure(&name, QueueSpec { max_attempts: 4 }).await.unwrap();
        assert_eq!(visibility(url).await, "720");
    }

    #[tokio::test]
    async fn retry_of_a_finished_delivery_is_not_found() {
        let Some(((), q)) = fresh().await else { return };
        let name = unique("t");
        q.ensure(&name, QueueSpec::default()).await.unwrap();
        q.send(&name, "x", Duration::ZERO).await.unwrap();
        let got = q.receive(&name, 1, Duration::from_secs(30), Duration::from_secs(1)).await.unwrap();
        q.ack(&name, &got[0].receipt).await.unwrap();
        let err = q.retry_later(&name, &got[0].receipt, Duration::ZERO).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
        let err = q.retry_later(&name, &got[0].receipt, Duration::from_secs(901)).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}
