# Optional DR copy of the artifacts bucket in a second region: models and their metadata are
# the product of paid GPU hours; data can be uploaded again, the registry has PITR.
locals {
  replicate = var.replication_region != null
}


resource "aws_kms_key" "replica" {
  count    = local.replicate ? 1 : 0
  provider = aws.replica

  description             = "${var.name} artifacts replica"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "AccountAdministers"
      Effect    = "Allow"
      Principal = { AWS = "arn:aws:iam::${var.account_id}:root" }
      Action = [
        "kms:CancelKeyDeletion", "kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DeleteAlias",
        "kms:DescribeKey", "kms:DisableKey", "kms:EnableKey", "kms:EnableKeyRotation", "kms:Encrypt",
        "kms:GenerateDataKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListAliases",
        "kms:ListGrants", "kms:ListResourceTags", "kms:PutKeyPolicy", "kms:ReEncryptFrom", "kms:ReEncryptTo",
        "kms:RetireGrant", "kms:RevokeGrant", "kms:ScheduleKeyDeletion", "kms:TagResource",
        "kms:UntagResource", "kms:UpdateAlias", "kms:UpdateKeyDescription",
      ]
      Resource = "*"
    }]
  })
}

module "artifacts_replica" {
  source = "../bucket"
  count  = local.replicate ? 1 : 0
  providers = {
    aws = aws.replica
  }

  name          = "${var.bucket_prefix}-artifacts-${var.replication_region}"
  kms_key_arn   = aws_kms_key.replica[0].arn
  force_destroy = var.force_destroy
  lifecycle_rules = [{
    id              = "replica-to-archive"
    prefix          = "models/"
    transitions     = { "30" = "GLACIER_IR" }
    noncurrent_days = 90
  }]
}

resource "aws_iam_role" "replication" {
  count = local.replicate ? 1 : 0

  name = "${var.name}-artifacts-replication"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "s3.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "replication" {
  count = local.replicate ? 1 : 0

  name = "replicate-artifacts"
  role = aws_iam_role.replication[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        Sid      = "ReadSource"
        Effect   = "Allow"
        Action   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
        Resource = [module.artifacts_bucket.arn]
      },
      {
        Sid      = "ReadSourceVersions"
        Effect   = "Allow"
        Action   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
        Resource = ["${module.artifacts_bucket.arn}/*"]
      },
      {
        Sid      = "WriteReplica"
        Effect   = "Allow"
        Action   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
        Resource = ["${module.artifacts_replica[0].arn}/*"]
      },
      {
        Sid      = "DecryptSource"
        Effect   = "Allow"
        Action   = ["kms:Decrypt"]
        Resource = [var.kms_key_arn]
      },
      {
        Sid      = "EncryptReplica"
        Effect   = "Allow"
        Action   = ["kms:Encrypt", "kms:GenerateDataKey"]
        Resource = [aws_kms_key.replica[0].arn]
      },
    ]
  })
}

resource "aws_s3_bucket_replication_configuration" "artifacts" {
  count = local.replicate ? 1 : 0

  bucket = module.artifacts_bucket.id
  role   = aws_iam_role.replication[0].arn

  rule {
    id     = "artifacts-to-${var.replication_region}"
    status = "Enabled"
    filter {}
    delete_marker_replication {
      status = "Enabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket        = module.artifacts_replica[0].arn
      storage_class = "STANDARD_IA"
      encryption_configuration {
        replica_kms_key_id = aws_kms_key.replica[0].arn
      }
    }
  }

  depends_on = [module.artifacts_bucket, module.artifacts_replica]
}
