variable "name" {
  description = "Alias name of the key, without the alias/ prefix (for example mlcp-prod-platform)."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9/_-]{1,250}$", var.name)) && !startswith(var.name, "aws/")
    error_message = "The key alias may contain letters, digits, '/', '_' and '-' only, and must not start with 'aws/'."
  }
}

variable "description" {
  description = "What the key protects, shown in the KMS console."
  type        = string
}

variable "account_id" {
  description = "AWS account that owns the key; its root principal administers the key."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "The AWS account id is the 12 digits shown in the console (for example 123456789012)."
  }
}

variable "region" {
  description = "Region of the key; CloudWatch Logs of this region may use it."
  type        = string
}

variable "partition" {
  description = "AWS partition (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"
}

variable "allow_autoscaling_ebs" {
  description = "Let the Auto Scaling service-linked role use the key for encrypted EBS volumes of node groups. The role must already exist in the account (it does once any Auto Scaling group was created)."
  type        = bool
  default     = false
}

variable "deletion_window_in_days" {
  description = "Days a deleted key waits before it is gone (7 to 30)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "KMS keeps a deleted key for 7 to 30 days; choose a number in that range."
  }
}
