provider "aws" {
  region              = var.region
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = {
      project     = "mlcp"
      environment = var.environment
      managed-by  = "terraform"
    }
  }
}

# Region of the DR replicas (artifacts, datasets, checkpoint file system, registry). Unused while replication_region is null.
provider "aws" {
  alias               = "replica"
  region              = coalesce(var.replication_region, var.region)
  allowed_account_ids = [var.account_id]

  default_tags {
    tags = {
      project     = "mlcp"
      environment = var.environment
      managed-by  = "terraform"
    }
  }
}
