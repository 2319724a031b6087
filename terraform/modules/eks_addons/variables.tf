variable "cluster_name" {
  description = "EKS cluster the add-ons are installed in."
  type        = string
}

variable "addons" {
  description = "EKS managed add-ons that need running nodes, by add-on name, each with the IAM role of its service account (null: the node role) and an optional pinned version (null: the default for the cluster version)."
  type = map(object({
    service_account_role_arn = optional(string)
    version                  = optional(string)
  }))

  validation {
    condition     = alltrue([for k, _ in var.addons : can(regex("^[a-z0-9-]+$", k))])
    error_message = "Add-on names are EKS add-on names such as coredns or aws-ebs-csi-driver."
  }
}
