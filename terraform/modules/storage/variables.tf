variable "name" {
  description = "Prefix of every resource name (for example mlcp-prod)."
  type        = string
}

variable "bucket_prefix" {
  description = "Start of the globally unique bucket names; the buckets are <bucket_prefix>-data, -artifacts and -logs."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,48}[a-z0-9]$", var.bucket_prefix))
    error_message = "bucket_prefix is 3 to 50 lower-case letters, digits or dashes (the bucket names add up to 10 more characters), such as acme-mlcp-prod."
  }
}

variable "account_id" {
  description = "AWS account id (for the access-log delivery policy)."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key for the buckets and the file system."
  type        = string
}

variable "training_data_retention_days" {
  description = "Days to keep training data under datasets/ before it expires (null keeps it forever). Registry lineage points at dataset versions, so keep it at least as long as models trained on it serve."
  type        = number
  default     = 730

  validation {
    condition     = var.training_data_retention_days == null || try(var.training_data_retention_days >= 90, false)
    error_message = "Keep training data at least 90 days (or null for ever): models in the registry point at it."
  }
}

variable "artifact_archive_after_days" {
  description = "Days after which model artifacts move to Glacier Instant Retrieval (after 30 days in Standard-IA)."
  type        = number
  default     = 180

  validation {
    condition     = var.artifact_archive_after_days >= 60
    error_message = "Archive artifacts after 60 days or more (they first spend 30 days in Standard-IA, which bills at least 30 days)."
  }
}

variable "replication_region" {
  description = "Second region for disaster recovery, holding replicas of the artifacts bucket, the data bucket's datasets/ and the checkpoint file system; null for none. The aws.replica provider must point at this region."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC of the file system's mount targets."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets, one per zone: one EFS mount target in each."
  type        = list(string)
}

variable "nfs_client_security_group_id" {
  description = "Security group of the nodes allowed to mount the file system (NFS, TCP 2049)."
  type        = string
}

variable "force_destroy" {
  description = "Let terraform destroy delete non-empty buckets (throw-away environments only)."
  type        = bool
  default     = false
}
