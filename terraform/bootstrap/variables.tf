variable "name" {
  description = "Prefix of the state bucket, lock table and key (for example acme-mlcp). The bucket is <name>-tfstate-<account_id>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,30}$", var.name))
    error_message = "name is 3 to 31 lower-case letters, digits or dashes, starting with a letter."
  }
}

variable "region" {
  description = "Region of the state bucket and lock table (for example eu-west-1)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region is an AWS region name such as eu-west-1."
  }
}

variable "account_id" {
  description = "AWS account that holds the state; the provider refuses any other."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id is the 12-digit AWS account number."
  }
}

variable "github_repository" {
  description = "owner/name of the GitHub repository whose Actions deploy (OIDC roles github-plan and github-deploy); null: none."
  type        = string
  default     = null

  validation {
    condition     = var.github_repository == null || can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository is owner/name."
  }
}
