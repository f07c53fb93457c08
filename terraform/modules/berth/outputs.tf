output "registry_url" {
  description = "The registry's URL (docker login <host of it>)."
  value       = local.registry_url
}

output "registry_host" {
  description = "The registry's host name, as docker and podman name it in image references."
  value       = replace(local.registry_url, "/^https?://([^/]+).*$/", "$1")
}

output "upload_host_url" {
  description = "Base URL of the upload host (null without one); point a DNS name at upload_host_lb_dns_name for a stable one."
  value       = local.upload_base_url
}

output "upload_host_lb_dns_name" {
  description = "DNS name of the upload host's load balancer (null without one)."
  value       = local.upload_host ? aws_lb.upload[0].dns_name : null
}

output "bucket" {
  description = "The blob bucket (BERTH_AWS_BUCKET)."
  value       = aws_s3_bucket.blobs.bucket
}

output "table" {
  description = "The metadata table (BERTH_AWS_TABLE)."
  value       = aws_dynamodb_table.meta.name
}

output "queue_urls" {
  description = "The events, webhooks and jobs queues, and their dead-letter queues."
  value       = merge({ for k, q in aws_sqs_queue.queue : k => q.url }, { for k, q in aws_sqs_queue.dlq : "${k}-dlq" => q.url })
}

output "function_names" {
  description = "Lambda function names by berth function."
  value       = { for k, f in aws_lambda_function.function : k => f.function_name }
}

output "kms_key_arn" {
  description = "The deployment's KMS key."
  value       = aws_kms_key.berth.arn
}

output "token_key_secret_arn" {
  description = "The Secrets Manager secret with the token-signing key, when one was given (null: berth keeps the key in its table)."
  value       = var.token_key_secret_arn
}

output "tick_schedule" {
  description = "The EventBridge Scheduler schedule that invokes the jobs worker every minute (null without a jobs worker)."
  value       = local.tick_worker == null ? null : aws_scheduler_schedule.tick[0].name
}

output "migrate_environment" {
  description = "Variables for `berth migrate --backend aws` (run once after each apply: it records the schema version and creates the administrator; with these resources in place it creates nothing else)."
  value = {
    AWS_REGION               = local.region
    BERTH_AWS_BUCKET         = aws_s3_bucket.blobs.bucket
    BERTH_AWS_TABLE          = aws_dynamodb_table.meta.name
    BERTH_AWS_QUEUE_PREFIX   = local.queue_prefix
    BERTH_QUEUE_MAX_ATTEMPTS = tostring(var.max_receive_count)
  }
}
