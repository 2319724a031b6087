variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,99}$", var.cluster_name))
    error_message = "EKS cluster names start with a letter and hold up to 100 letters, digits or dashes."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane, 1.29 or newer (for example \"1.31\")."
  type        = string

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version)) && try(tonumber(split(".", var.kubernetes_version)[1]) >= 29, false)
    error_message = "kubernetes_version is a minor version such as \"1.31\", and at least 1.29."
  }
}

variable "subnet_ids" {
  description = "Private subnets (at least two zones) for the control plane's network interfaces."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "public_access_cidrs" {
  description = "Networks allowed to reach the public API endpoint (operators, CI). Empty: the endpoint is private only, reachable from the VPC."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.public_access_cidrs : can(cidrnetmask(c)) && !contains(["0.0.0.0/0", "::/0"], c)])
    error_message = "public_access_cidrs holds IPv4 CIDR blocks such as 203.0.113.0/24; the whole internet (0.0.0.0/0) is not allowed."
  }
}

variable "kms_key_arn" {
  description = "KMS key for Kubernetes secrets envelope encryption and the control-plane log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep control-plane logs."
  type        = number
  default     = 365
}

variable "admin_role_arns" {
  description = "IAM roles that get cluster-admin through EKS access entries (operators, CI)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.admin_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", a))])
    error_message = "admin_role_arns holds IAM role ARNs such as arn:aws:iam::123456789012:role/platform-admin."
  }
}

variable "control_plane_role_arn" {
  description = "IAM role of the control-plane Lambdas, mapped to the Kubernetes group control_plane_group (no AWS-managed access policy)."
  type        = string
}

variable "control_plane_group" {
  description = "Kubernetes group the control-plane Lambdas act as; the mlcp-platform chart binds it to narrow Roles in ml-training and ml-serving."
  type        = string
  default     = "mlcp:control-plane"

  validation {
    condition     = can(regex("^[a-z0-9:-]+$", var.control_plane_group)) && !startswith(var.control_plane_group, "system:")
    error_message = "The group name is lower-case letters, digits, ':' or '-', and must not start with the reserved 'system:' prefix."
  }
}
