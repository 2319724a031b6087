variable "name" {
  description = "Globally unique bucket name."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.name)) && !strcontains(var.name, "..")
    error_message = "S3 bucket names are 3 to 63 lower-case letters, digits, dots or dashes, and start and end with a letter or digit."
  }
}

variable "kms_key_arn" {
  description = "KMS key for SSE-KMS default encryption."
  type        = string
}

variable "access_logs" {
  description = "Where this bucket's server access logs go ({ bucket = name }); null for the access-log bucket itself and for replicas in another region."
  type        = object({ bucket = string })
  default     = null
}

variable "lifecycle_rules" {
  description = "Lifecycle rules: objects under prefix move to cheaper classes after transitions (days => storage class) and expire after expire_days (null = keep). Noncurrent versions expire after noncurrent_days."
  type = list(object({
    id              = string
    prefix          = string
    transitions     = map(string)
    expire_days     = optional(number)
    noncurrent_days = optional(number, 90)
  }))
  default = []

  validation {
    condition = alltrue([
      for r in var.lifecycle_rules : alltrue([
        for days, cls in r.transitions : can(tonumber(days)) && contains(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"], cls)
      ])
    ])
    error_message = "Each transition maps a number of days to one of STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR, GLACIER or DEEP_ARCHIVE."
  }
}

variable "force_destroy" {
  description = "Allow terraform destroy to delete a bucket that still holds objects (only for throw-away environments)."
  type        = bool
  default     = false
}

variable "receives_access_logs_from_account" {
  description = "Account id whose buckets deliver server access logs here; null unless this is the access-log bucket. Such a bucket uses SSE-S3, because S3 server access logging cannot write to SSE-KMS buckets."
  type        = string
  default     = null

  validation {
    condition     = var.receives_access_logs_from_account == null || can(regex("^[0-9]{12}$", var.receives_access_logs_from_account))
    error_message = "receives_access_logs_from_account is a 12-digit AWS account id, or null."
  }
}
