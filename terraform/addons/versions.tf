# In-cluster add-ons. The helm and kubernetes providers cannot be downloaded on the offline
# development machines, so this root is checked by `terraform fmt` and HCL parse tests only
# (tests/terraform); `terraform init/validate/plan` run where the registry is reachable.
terraform {
  required_version = ">= 1.7.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.60, < 7.0"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 2.16"
    }
  }

  backend "s3" {}
}
