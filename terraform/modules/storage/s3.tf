module "logs_bucket" {
  source = "../bucket"

  name                              = "${var.bucket_prefix}-logs"
  kms_key_arn                       = var.kms_key_arn
  receives_access_logs_from_account = var.account_id
  force_destroy                     = var.force_destroy
  lifecycle_rules = [{
    id          = "expire-access-logs"
    prefix      = "s3-access/"
    transitions = { "30" = "STANDARD_IA" }
    expire_days = 400
  }]
}

module "data_bucket" {
  source = "../bucket"

  name          = "${var.bucket_prefix}-data"
  kms_key_arn   = var.kms_key_arn
  access_logs   = { bucket = module.logs_bucket.id }
  force_destroy = var.force_destroy
  lifecycle_rules = [{
    id              = "retain-training-data"
    prefix          = "datasets/"
    transitions     = { "30" = "INTELLIGENT_TIERING" }
    expire_days     = var.training_data_retention_days
    noncurrent_days = 30
  }]
}

module "artifacts_bucket" {
  source = "../bucket"

  name          = "${var.bucket_prefix}-artifacts"
  kms_key_arn   = var.kms_key_arn
  access_logs   = { bucket = module.logs_bucket.id }
  force_destroy = var.force_destroy
  lifecycle_rules = [{
    id = "age-model-artifacts"
    # Old runs are rarely read again but must stay restorable for rollbacks and audits.
    prefix          = "models/"
    transitions     = zipmap(["30", tostring(var.artifact_archive_after_days)], ["STANDARD_IA", "GLACIER_IR"])
    noncurrent_days = 90
  }]
}
