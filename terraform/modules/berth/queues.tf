# The events, webhooks and jobs queues, each with its dead-letter queue,
# named as berth names them (shared/src/queue/sqs.rs): <prefix><queue> and
# <prefix><queue>-dlq, with the attributes `berth migrate` sets, so that
# running it changes nothing, and a visibility timeout that fits the
# workers consuming the queue (main.tf: local.queue_visibility; migrate
# keeps it).

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
  visibility_timeout_seconds        = local.queue_visibility[each.key]
  kms_master_key_id                 = aws_kms_key.berth.arn
  kms_data_key_reuse_period_seconds = 300
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq[each.key].arn
    maxReceiveCount     = var.max_receive_count
  })
  tags = local.tags
}

# Only the source queue may send to its dead-letter queue. Left out on the
# emulator: moto never finishes creating it (var.emulator).
resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  for_each  = var.emulator ? toset([]) : local.queues
  queue_url = aws_sqs_queue.dlq[each.key].id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.queue[each.key].arn]
  })
}
