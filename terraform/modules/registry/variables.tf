variable "table_name" {
  description = "Name of the registry table (docs/contracts.md: one table, keys pk/sk, index gsi1)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9_.-]{3,255}$", var.table_name))
    error_message = "DynamoDB table names are 3 to 255 letters, digits, '_', '-' or '.'."
  }
}

variable "kms_key_arn" {
  description = "Customer managed KMS key that encrypts the table."
  type        = string
}

variable "deletion_protection" {
  description = "Refuse DeleteTable while true (keep it on outside throw-away environments)."
  type        = bool
  default     = true
}

variable "replica_region" {
  description = "DR region of the table's replica (global table), or null for none."
  type        = string
  default     = null
}

variable "replica_kms_key_arn" {
  description = "KMS key in replica_region that encrypts the replica (required with replica_region)."
  type        = string
  default     = null

  validation {
    condition     = var.replica_region == null || var.replica_kms_key_arn != null
    error_message = "replica_kms_key_arn is required when replica_region is set."
  }
}
