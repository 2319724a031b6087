# One private S3 bucket with everything a store of the platform must have: SSE-KMS,
# versioning, public access blocked, TLS-only access, owner-enforced objects, lifecycle,
# and server access logs.
locals {
  is_log_bucket = var.receives_access_logs_from_account != null
  log_delivery = [for s in [{
    Sid       = "S3ServerAccessLogDelivery"
    Effect    = "Allow"
    Principal = { Service = "logging.s3.amazonaws.com" }
    Action    = ["s3:PutObject"]
    Resource  = ["${aws_s3_bucket.this.arn}/s3-access/*"]
    Condition = { StringEquals = { "aws:SourceAccount" = var.receives_access_logs_from_account } }
  }] : s if local.is_log_bucket]
}

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV2_AWS_62:Event notifications are attached by the caller where the platform consumes them (the data bucket's datasets/ prefix notifies the S3 Lambda in modules/functions).
  # checkov:skip=CKV_AWS_145:SSE-KMS is the default here; only the access-log bucket (receives_access_logs_from_account set) takes SSE-S3, because S3 server access logging cannot deliver to SSE-KMS buckets. Tests assert KMS on every other bucket.
  # checkov:skip=CKV_AWS_144:Cross-region replication is opt-in (replication_region) and configured by modules/storage for the artifacts bucket and the data bucket's datasets/; the access-log bucket and the replicas themselves are not replicated again (see terraform/README.md, DR).
  bucket        = var.name
  force_destroy = var.force_destroy
}

resource "aws_s3_bucket_ownership_controls" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  bucket                  = aws_s3_bucket.this.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "this" {
  bucket = aws_s3_bucket.this.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  bucket = aws_s3_bucket.this.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = local.is_log_bucket ? "AES256" : "aws:kms"
      kms_master_key_id = local.is_log_bucket ? null : var.kms_key_arn
    }
    bucket_key_enabled = !local.is_log_bucket
  }
}

resource "aws_s3_bucket_policy" "this" {
  bucket = aws_s3_bucket.this.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(local.log_delivery, [
      {
        Sid       = "DenyInsecureTransport"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket", "s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:PutBucketPolicy"]
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = { Bool = { "aws:SecureTransport" = "false" } }
      },
      {
        Sid       = "DenyOldTls"
        Effect    = "Deny"
        Principal = { AWS = "*" }
        Action    = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket"]
        Resource  = [aws_s3_bucket.this.arn, "${aws_s3_bucket.this.arn}/*"]
        Condition = { NumericLessThan = { "s3:TlsVersion" = "1.2" } }
      },
    ])
  })

  depends_on = [aws_s3_bucket_public_access_block.this]
}

resource "aws_s3_bucket_logging" "this" {
  count = var.access_logs == null ? 0 : 1

  bucket        = aws_s3_bucket.this.id
  target_bucket = var.access_logs.bucket
  target_prefix = "s3-access/${var.name}/"
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  bucket = aws_s3_bucket.this.id

  rule {
    id     = "abort-incomplete-uploads"
    status = "Enabled"
    filter {}
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  dynamic "rule" {
    for_each = var.lifecycle_rules
    content {
      id     = rule.value.id
      status = "Enabled"
      filter {
        prefix = rule.value.prefix
      }
      dynamic "transition" {
        for_each = rule.value.transitions
        content {
          days          = tonumber(transition.key)
          storage_class = transition.value
        }
      }
      dynamic "expiration" {
        for_each = rule.value.expire_days == null ? [] : [rule.value.expire_days]
        content {
          days = expiration.value
        }
      }
      noncurrent_version_expiration {
        noncurrent_days = rule.value.noncurrent_days
      }
      abort_incomplete_multipart_upload {
        days_after_initiation = 7
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
