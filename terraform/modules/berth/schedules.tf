# Scheduled work: ONE EventBridge Scheduler schedule, every minute, invokes
# the jobs worker with {"berth": "tick"}. The tick runs berth's own
# scheduler (which finds the GC, retention, replication and other policies
# that are due, from their cron expressions in the table) and an outbox
# relay sweep, as `berth serve` does in-process. No cloud resource exists
# per policy. Without a worker of the jobs queue there is no tick.

resource "aws_iam_role" "scheduler" {
  count = local.tick_worker == null ? 0 : 1
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
  count = local.tick_worker == null ? 0 : 1
  name  = "invoke-tick"
  role  = aws_iam_role.scheduler[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["lambda:InvokeFunction"], Resource = [aws_lambda_function.function["worker-${local.tick_worker}"].arn] },
      # The schedule is encrypted with the deployment's key.
      { Effect = "Allow", Action = ["kms:Decrypt"], Resource = [aws_kms_key.berth.arn] },
    ]
  })
}

resource "aws_scheduler_schedule" "tick" {
  count                        = local.tick_worker == null ? 0 : 1
  name                         = "${var.name}-tick"
  description                  = "berth ${var.name}: the scheduler tick and outbox sweep, every minute"
  schedule_expression          = "rate(1 minute)"
  schedule_expression_timezone = "UTC"
  kms_key_arn                  = aws_kms_key.berth.arn
  flexible_time_window {
    mode = "OFF"
  }
  target {
    arn      = aws_lambda_function.function["worker-${local.tick_worker}"].arn
    role_arn = aws_iam_role.scheduler[0].arn
    input    = jsonencode({ berth = "tick" })
    # A tick is stale once the next one is due.
    retry_policy {
      maximum_event_age_in_seconds = 60
      maximum_retry_attempts       = 2
    }
  }
}
