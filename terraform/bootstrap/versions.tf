terraform {
  required_version = ">= 1.7.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }

  # The bootstrap's own state stays local (commit nothing: keep terraform.tfstate in the
  # operators' vault) or, once the bucket exists, move it in with
  #   terraform init -migrate-state -backend-config=... (see terraform/README.md).
}
