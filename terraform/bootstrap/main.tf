provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = { project = "mlcp", managed-by = "terraform", purpose = "terraform-state" }
  }
}

module "kms" {
  source = "../modules/kms"

  name        = "${var.name}-tfstate"
  description = "Terraform state of ${var.name}"
  account_id  = var.account_id
  region      = var.region
}

# Versioned, encrypted, private and TLS-only: every state version can be restored
# (noncurrent versions are kept a year).
module "state_bucket" {
  source = "../modules/bucket"

  name        = "${var.name}-tfstate-${var.account_id}"
  kms_key_arn = module.kms.key_arn
  lifecycle_rules = [{
    id              = "keep-state-history"
    prefix          = ""
    transitions     = {}
    noncurrent_days = 365
  }]
}

resource "aws_dynamodb_table" "lock" {
  name                        = "${var.name}-tfstate-lock"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "LockID"
  deletion_protection_enabled = true

  attribute {
    name = "LockID"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = module.kms.key_arn
  }
}
