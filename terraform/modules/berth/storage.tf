# The blob bucket and the metadata table.

resource "aws_s3_bucket" "blobs" {
  #checkov:skip=CKV_AWS_18:Server access logging needs a second bucket the operator chooses; CloudTrail data events are the usual audit trail for a registry bucket.
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice of the operator (it needs a second region and bucket), not a default.
  #checkov:skip=CKV2_AWS_62:berth consumes no S3 event notifications; every change already becomes an event on the events queue.
  bucket = local.bucket_name
  tags   = local.tags
}

resource "aws_s3_bucket_public_access_block" "blobs" {
  bucket                  = aws_s3_bucket.blobs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "blobs" {
  bucket = aws_s3_bucket.blobs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "blobs" {
  bucket = aws_s3_bucket.blobs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.berth.arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "blobs" {
  bucket = aws_s3_bucket.blobs.id
  versioning_configuration {
    status = var.s3_versioning ? "Enabled" : "Suspended"
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "blobs" {
  bucket = aws_s3_bucket.blobs.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = var.abort_incomplete_multipart_days
    }
  }

  # Staging objects of upload sessions that were never finished (sessions
  # expire after 7 days); a safety net under berth's own cleanup.
  rule {
    id     = "expire-abandoned-upload-objects"
    status = "Enabled"
    filter {
      prefix = "uploads/"
    }
    expiration {
      days = var.abort_incomplete_multipart_days + 1
    }
  }

  rule {
    id     = "expire-noncurrent-versions"
    status = var.s3_versioning ? "Enabled" : "Disabled"
    filter {}
    noncurrent_version_expiration {
      noncurrent_days = var.noncurrent_version_days
    }
  }

  depends_on = [aws_s3_bucket_versioning.blobs]
}

# Presigned URLs and every SDK call use TLS; plain HTTP is refused. Left
# out on the emulator: moto evaluates aws:SecureTransport as false even
# over TLS, so the statement would refuse every request (var.emulator).
resource "aws_s3_bucket_policy" "blobs" {
  count      = var.emulator ? 0 : 1
  bucket     = aws_s3_bucket.blobs.id
  policy     = data.aws_iam_policy_document.bucket.json
  depends_on = [aws_s3_bucket_public_access_block.blobs]
}

data "aws_iam_policy_document" "bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.blobs.arn, "${aws_s3_bucket.blobs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

# The single berth table: exactly migrations/table.json (a test compares
# them: tests/e2e/deploy_static.rs).
resource "aws_dynamodb_table" "meta" {
  name                        = local.table_name
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  range_key                   = "sk"
  deletion_protection_enabled = var.table_deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }
  attribute {
    name = "sk"
    type = "S"
  }
  attribute {
    name = "gsi1pk"
    type = "S"
  }
  attribute {
    name = "gsi1sk"
    type = "S"
  }
  attribute {
    name = "gsi2pk"
    type = "S"
  }
  attribute {
    name = "gsi2sk"
    type = "S"
  }

  global_secondary_index {
    name            = "gsi1"
    hash_key        = "gsi1pk"
    range_key       = "gsi1sk"
    projection_type = "ALL"
  }
  global_secondary_index {
    name            = "gsi2"
    hash_key        = "gsi2pk"
    range_key       = "gsi2sk"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.berth.arn
  }

  tags = local.tags
}
