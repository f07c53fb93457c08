# Least privilege per function: each role may touch this deployment's
# bucket, table, queues, key and its own log group; only the workers may
# consume queues.

data "aws_iam_policy_document" "lambda_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each           = local.functions
  name               = "${var.name}-${each.key}"
  assume_role_policy = data.aws_iam_policy_document.lambda_assume.json
  tags               = local.tags
}

locals {
  queue_arns = concat([for q in aws_sqs_queue.queue : q.arn], [for q in aws_sqs_queue.dlq : q.arn])
}

# What every berth host does with the backends: object reads and writes
# (multipart and server-side copies included), table items, sending to the
# queues and the startup checks of the three.
data "aws_iam_policy_document" "data_access" {
  statement {
    sid       = "BucketCheckAndList"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [aws_s3_bucket.blobs.arn]
  }
  statement {
    sid = "Objects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = ["${aws_s3_bucket.blobs.arn}/*"]
  }
  statement {
    sid = "Table"
    actions = [
      "dynamodb:DescribeTable",
      "dynamodb:GetItem",
      "dynamodb:BatchGetItem",
      "dynamodb:PutItem",
      "dynamodb:UpdateItem",
      "dynamodb:DeleteItem",
      "dynamodb:Query",
      "dynamodb:ConditionCheckItem",
    ]
    resources = [aws_dynamodb_table.meta.arn, "${aws_dynamodb_table.meta.arn}/index/*"]
  }
  statement {
    sid       = "Queues"
    actions   = ["sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage"]
    resources = local.queue_arns
  }
  statement {
    sid       = "Key"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = [aws_kms_key.berth.arn]
  }
}

data "aws_iam_policy_document" "function" {
  for_each                = local.functions
  source_policy_documents = [data.aws_iam_policy_document.data_access.json]

  statement {
    sid       = "OwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    #checkov:skip=CKV_AWS_356:X-Ray trace segment actions support no resource-level permissions.
    sid       = "Traces"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  # A worker consumes its queue through the event source mapping (which
  # receives and deletes with this role) and retries a message later by
  # changing its visibility; the rights cover every berth queue and
  # dead-letter queue, as the one worker binary serves any of them.
  dynamic "statement" {
    for_each = each.value.queue == null ? [] : ["worker"]
    content {
      sid       = "ConsumeQueues"
      actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes", "sqs:SendMessage"]
      resources = local.queue_arns
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions
  name     = "berth"
  role     = aws_iam_role.function[each.key].id
  policy   = data.aws_iam_policy_document.function[each.key].json
}
