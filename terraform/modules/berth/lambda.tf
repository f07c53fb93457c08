# The Lambda functions: the api (functions/api, api.zip), and one function
# per entry of var.workers, each the one worker binary (functions/worker,
# worker.zip) consuming its queue.

resource "aws_cloudwatch_log_group" "function" {
  for_each          = local.functions
  name              = "/aws/lambda/${var.name}-${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.berth.arn
  tags              = local.tags
}

resource "aws_lambda_function" "function" {
  #checkov:skip=CKV_AWS_117:The functions call only AWS APIs (S3, DynamoDB, SQS) over TLS with IAM auth; a VPC would add NAT or endpoints and cold-start cost without isolating anything.
  #checkov:skip=CKV_AWS_116:The api function is invoked synchronously (no async events to dead-letter); workers are fed by SQS, whose redrive policy dead-letters failed messages (queues.tf), and the scheduler tick is repeated every minute, so a lost one needs no dead-letter queue.
  #checkov:skip=CKV_AWS_272:The zips come from scripts/package-lambdas in the operator's own pipeline; AWS Signer code signing is an operator choice outside this module.
  #checkov:skip=CKV_AWS_115:Concurrency is left to the account pool unless var.reserved_concurrency caps it; a fixed default would throttle a busy registry.
  for_each      = local.functions
  function_name = "${var.name}-${each.key}"
  description   = "berth ${each.key}"
  role          = aws_iam_role.function[each.key].arn
  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = [var.lambda_architecture]
  filename      = "${var.lambda_zip_dir}/${each.value.zip}.zip"
  # Redeploys when the zip changes.
  source_code_hash               = filebase64sha256("${var.lambda_zip_dir}/${each.value.zip}.zip")
  memory_size                    = each.value.memory_mb
  timeout                        = each.value.timeout_seconds
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = aws_kms_key.berth.arn

  environment {
    variables = merge(
      local.berth_env,
      local.token_key_env,
      each.value.queue == null ? {} : { BERTH_WORKER_QUEUE = each.value.queue },
      each.key == "api" && local.upload_host ? { BERTH_SERVER_UPLOAD_BASE_URL = local.upload_base_url } : {},
    )
  }

  tracing_config {
    mode = "Active"
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tags       = local.tags
  depends_on = [aws_iam_role_policy.function]
}

resource "aws_lambda_event_source_mapping" "worker" {
  for_each                = var.workers
  event_source_arn        = aws_sqs_queue.queue[each.value.queue].arn
  function_name           = aws_lambda_function.function["worker-${each.key}"].arn
  batch_size              = each.value.batch_size
  function_response_types = ["ReportBatchItemFailures"]
  scaling_config {
    maximum_concurrency = each.value.max_concurrency
  }
  lifecycle {
    precondition {
      condition     = local.queue_visibility[each.value.queue] >= each.value.timeout_seconds
      error_message = "The ${each.value.queue} queue's visibility timeout (${local.queue_visibility[each.value.queue]} s) is shorter than the timeout of worker ${each.key} (${each.value.timeout_seconds} s): a message would be delivered again while it is still being handled."
    }
  }
}
