variable "name" {
  description = "IAM role name."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9+=,.@_-]{1,64}$", var.name))
    error_message = "IAM role names are 1 to 64 letters, digits or +=,.@_- characters."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IRSA OIDC provider."
  type        = string
}

variable "oidc_issuer" {
  description = "Issuer host and path of the cluster's OIDC provider, without https://."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the service account."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace))
    error_message = "A Kubernetes namespace is lower-case letters, digits and dashes."
  }
}

variable "service_account" {
  description = "Name of the Kubernetes service account that may assume the role."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.service_account))
    error_message = "A service account name is lower-case letters, digits, dashes and dots."
  }
}

variable "policy_json" {
  description = "Inline policy of the role, as JSON (null for none). Every action is named: no wildcard."
  type        = string
  default     = null

  validation {
    condition = var.policy_json == null || try(alltrue([
      for s in jsondecode(var.policy_json).Statement : alltrue([for a in flatten([s.Action]) : !strcontains(a, "*")])
    ]), false)
    error_message = "The policy must be valid JSON whose statements name every action (no '*' in any Action)."
  }
}

variable "managed_policy_arns" {
  description = "AWS-managed policies to attach (for add-ons whose policies AWS maintains)."
  type        = list(string)
  default     = []
}
