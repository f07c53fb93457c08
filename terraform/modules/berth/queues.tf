# The events and jobs queues, each with its dead-letter queue, named as
# berth names them (shared/src/queue/sqs.rs): <prefix><queue> and
# <prefix><queue>-dlq, with the same attributes `berth migrate` sets, so
# that running it changes nothing.

resource "aws_sqs_queue" "dlq" {
  for_each                          = local.queues
  name                              = "${local.queue_prefix}${each.key}-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = aws_kms_key.berth.arn
  kms_data_key_reuse_period_seconds = 300
  tags                              = local.tags
}

resource "aws_sqs_queue" "queue" {
  for_each                          = local.queues
  name                              = "${local.queue_prefix}${each.key}"
  visibility_timeout_seconds        = var.queue_visibility_timeout_seconds
  kms_master_key_id                 = aws_kms_key.berth.arn
  kms_data_key_reuse_period_seconds = 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = local.tags
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each  = local.queues
  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.queue[each.key].arn]
  })
}
