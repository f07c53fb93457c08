# berth on AWS: blobs in S3, metadata in one DynamoDB table, background work
# on SQS, the API and the queue workers as Lambda functions.
# Everything is encrypted with one customer-managed KMS key of the
# deployment.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account      = data.aws_caller_identity.current.account_id
  region       = data.aws_region.current.name
  partition    = data.aws_partition.current.partition
  bucket_name  = coalesce(var.bucket_name, "${var.name}-blobs-${local.account}")
  table_name   = coalesce(var.table_name, var.name)
  queue_prefix = coalesce(var.queue_prefix, "${var.name}-")
  # The queues berth uses (shared/src/queue: ALL_QUEUES), each with a
  # dead-letter queue named <queue>-dlq.
  queues = toset(["events", "webhooks", "jobs"])
  # Every function: the api (api.zip) plus one function per worker, all of
  # them the one worker binary (worker.zip) with its queue in
  # BERTH_WORKER_QUEUE.
  functions = merge(
    { api = { zip = "api", memory_mb = var.api_memory_mb, timeout_seconds = var.api_timeout_seconds, queue = null } },
    { for k, w in var.workers : "worker-${k}" => { zip = "worker", memory_mb = w.memory_mb, timeout_seconds = w.timeout_seconds, queue = w.queue } },
  )
  # Visibility timeout per queue: six times the longest timeout of the
  # workers consuming it (AWS's advice for SQS event sources), at least
  # 30 s, unless set.
  queue_visibility = { for q in local.queues : q => lookup(var.queue_visibility_timeout_seconds, q,
    max(30, [for w in values(var.workers) : 6 * w.timeout_seconds if w.queue == q]...)
  ) }
  # The worker that gets the scheduler tick: the first consumer of the
  # jobs queue, if any.
  tick_worker = try(sort([for k, w in var.workers : k if w.queue == "jobs"])[0], null)
  # What var.emulator leaves out, and why (everything else is deployed
  # exactly as on AWS):
  # - the bucket policy (storage.tf): its one statement denies requests
  #   without TLS, and moto evaluates aws:SecureTransport as false even over
  #   TLS, so it would deny every S3 call;
  # - the DLQs' redrive allow policies (queues.tf): moto never finishes
  #   creating aws_sqs_queue_redrive_allow_policy (the provider waits until
  #   it times out); the source queues' redrive policies work without it.
  upload_host = var.upload_host.enabled
  upload_base_url = local.upload_host ? (
    var.upload_host.domain_name != null ? "https://${var.upload_host.domain_name}" : "https://${aws_lb.upload[0].dns_name}"
  ) : null
  # The configuration every host of this deployment shares (BERTH_<SECTION>_<KEY>).
  berth_env = merge(
    {
      BERTH_BACKEND            = "aws"
      BERTH_AWS_BUCKET         = aws_s3_bucket.blobs.bucket
      BERTH_AWS_TABLE          = aws_dynamodb_table.meta.name
      BERTH_AWS_QUEUE_PREFIX   = local.queue_prefix
      BERTH_QUEUE_MAX_ATTEMPTS = tostring(var.max_receive_count)
      BERTH_LOG_FORMAT         = "json"
    },
    var.custom_domain != null && var.api_exposure == "http_api" ? { BERTH_SERVER_EXTERNAL_URL = "https://${var.custom_domain.domain_name}" } : {},
    var.extra_environment,
  )
  tags = merge({ "app" = "berth", "berth:deployment" = var.name }, var.tags)
}

resource "aws_kms_key" "berth" {
  description             = "berth ${var.name}: blobs, metadata, queues, logs, secrets"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = local.tags
}

resource "aws_kms_alias" "berth" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.berth.key_id
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_111:In a key policy, Resource "*" means this key alone; use by roles is granted in their IAM policies (iam.tf).
  #checkov:skip=CKV_AWS_356:In a key policy, Resource "*" means this key alone.
  #checkov:skip=CKV_AWS_109:The account's own administrators manage the key (the standard key-policy root statement); nothing outside the account is granted.
  # The account administers the key; IAM policies grant its use to the
  # functions' roles (see iam.tf).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }
  # CloudWatch Logs encrypts this deployment's log groups with it.
  statement {
    sid       = "CloudWatchLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*"]
    }
  }
  # CloudWatch alarms publish to encrypted SNS topics and read SQS metrics;
  # EventBridge Scheduler reads its encrypted schedule through its role
  # (schedules.tf), which needs no key policy entry.
}
