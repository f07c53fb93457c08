# Scheduled work (GC, retention, scheduled replication, audit purge): each
# schedule of var.schedules sends a job message to the jobs queue, where a
# jobs worker picks it up, as berth's in-process scheduler does locally.

resource "aws_iam_role" "scheduler" {
  count = length(var.schedules) > 0 ? 1 : 0
  name  = "${var.name}-scheduler"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "scheduler.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = local.account } }
    }]
  })
  tags = local.tags
}

resource "aws_iam_role_policy" "scheduler" {
  count = length(var.schedules) > 0 ? 1 : 0
  name  = "send-jobs"
  role  = aws_iam_role.scheduler[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["sqs:SendMessage"], Resource = [aws_sqs_queue.queue["jobs"].arn] },
      { Effect = "Allow", Action = ["kms:GenerateDataKey", "kms:Decrypt"], Resource = [aws_kms_key.berth.arn] },
    ]
  })
}

resource "aws_scheduler_schedule" "job" {
  for_each                     = var.schedules
  name                         = "${var.name}-${each.key}"
  schedule_expression          = each.value.expression
  schedule_expression_timezone = each.value.timezone
  kms_key_arn                  = aws_kms_key.berth.arn
  flexible_time_window {
    mode = "OFF"
  }
  target {
    arn      = aws_sqs_queue.queue["jobs"].arn
    role_arn = aws_iam_role.scheduler[0].arn
    input    = jsonencode(merge(each.value.payload, { kind = each.value.job, schedule = each.key }))
    retry_policy {
      maximum_retry_attempts = 3
    }
  }
}
