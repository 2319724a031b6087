# Optional DR copies in a second region: the artifacts bucket (models and their metadata, the
# product of paid GPU hours), the data bucket's source datasets (datasets/, which registry lineage
# points at) and the EFS file system of staged datasets and checkpoints. The registry has its own
# replica (modules/registry, global table) under the same key.
locals {
  replicate = var.replication_region != null
}


resource "aws_kms_key" "replica" {
  count    = local.replicate ? 1 : 0
  provider = aws.replica

  description             = "${var.name} DR replicas (artifacts, datasets, checkpoint file system, registry)"
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

module "data_replica" {
  source = "../bucket"
  count  = local.replicate ? 1 : 0
  providers = {
    aws = aws.replica
  }

  name          = "${var.bucket_prefix}-data-${var.replication_region}"
  kms_key_arn   = aws_kms_key.replica[0].arn
  force_destroy = var.force_destroy
  # Lifecycle expirations are not replicated: the replica expires datasets on the source's schedule.
  lifecycle_rules = [{
    id              = "replica-retain-training-data"
    prefix          = "datasets/"
    transitions     = {}
    expire_days     = var.training_data_retention_days
    noncurrent_days = 30
  }]
}

# One role replicates both buckets (its name predates the data replica; renaming would replace it).
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
        Resource = [module.artifacts_bucket.arn, module.data_bucket.arn]
      },
      {
        Sid    = "ReadSourceVersions"
        Effect = "Allow"
        Action = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
        # Only the prefix the data bucket replicates (datasets/).
        Resource = ["${module.artifacts_bucket.arn}/*", "${module.data_bucket.arn}/datasets/*"]
      },
      {
        Sid      = "WriteReplica"
        Effect   = "Allow"
        Action   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
        Resource = ["${module.artifacts_replica[0].arn}/*", "${module.data_replica[0].arn}/datasets/*"]
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

# Source datasets (datasets/<model>/<version>/...): registry lineage points at these versions.
resource "aws_s3_bucket_replication_configuration" "data" {
  count = local.replicate ? 1 : 0

  bucket = module.data_bucket.id
  role   = aws_iam_role.replication[0].arn

  rule {
    id     = "datasets-to-${var.replication_region}"
    status = "Enabled"
    filter {
      prefix = "datasets/"
    }
    delete_marker_replication {
      status = "Enabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket        = module.data_replica[0].arn
      storage_class = "STANDARD_IA"
      encryption_configuration {
        replica_kms_key_id = aws_kms_key.replica[0].arn
      }
    }
  }

  depends_on = [module.data_bucket, module.data_replica]
}

# Staged datasets and checkpoints: EFS creates a read-only copy of the file system in the DR
# region, encrypted with the replica key (EFS replication's RPO: 15 minutes for most file systems).
# In a region loss, delete this replication to make the copy writable and mount it there.
resource "aws_efs_replication_configuration" "checkpoints" {
  count = local.replicate ? 1 : 0

  source_file_system_id = aws_efs_file_system.checkpoints.id

  destination {
    region     = var.replication_region
    kms_key_id = aws_kms_key.replica[0].arn
  }
}
