terraform {
  required_version = ">= 1.7.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
  }

  # Partial configuration: bucket, key, region and lock table come from backend.hcl
  # (see backend.hcl.example and terraform/README.md), made by terraform/bootstrap.
  backend "s3" {}
}
