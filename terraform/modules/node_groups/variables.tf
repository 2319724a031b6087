variable "cluster_name" {
  description = "EKS cluster the node groups join."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the nodes (the cluster's)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the nodes run in."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the nodes' root volumes."
  type        = string
}

variable "node_groups" {
  description = <<-EOT
    Node groups by name. Each: instance_types (first is preferred; several give SPOT a deeper
    pool), capacity_type (ON_DEMAND or SPOT), min/desired/max sizes, disk_gib, ami_type,
    labels and taints. The pool label node.kubernetes.io/pool is what workloads select.
  EOT
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    desired_size   = number
    max_size       = number
    disk_gib       = optional(number, 100)
    ami_type       = optional(string, "AL2023_x86_64_STANDARD")
    labels         = map(string)
    taints = optional(list(object({
      key    = string
      value  = string
      effect = string
    })), [])
  }))

  validation {
    condition     = length(var.node_groups) > 0 && alltrue([for k, _ in var.node_groups : can(regex("^[a-z][a-z0-9-]{0,37}$", k))])
    error_message = "Give at least one node group; names are up to 38 lower-case letters, digits or dashes, starting with a letter."
  }

  validation {
    condition     = alltrue([for g in var.node_groups : g.min_size >= 0 && g.min_size <= g.desired_size && g.desired_size <= g.max_size && g.max_size >= 1])
    error_message = "Every node group needs 0 <= min_size <= desired_size <= max_size, and max_size of at least 1."
  }

  validation {
    condition     = alltrue([for g in var.node_groups : length(g.instance_types) > 0 && alltrue([for t in g.instance_types : can(regex("^[a-z][a-z0-9-]*\\.[0-9]*[a-z0-9]+$", t))])])
    error_message = "instance_types lists EC2 instance types such as m5.xlarge or g5.2xlarge (family, a dot, a size); at least one per group."
  }

  validation {
    condition     = alltrue([for g in var.node_groups : alltrue([for t in g.instance_types : contains(local.allowed_instance_types, t)])])
    error_message = "An instance type is not one a node group may launch (instance_types.tf lists them: each has a price in the cost rule and, for GPUs, a CUDA compute capability the training image is built for)."
  }

  validation {
    condition     = alltrue([for g in var.node_groups : contains(["ON_DEMAND", "SPOT"], g.capacity_type)])
    error_message = "capacity_type is ON_DEMAND or SPOT."
  }

  validation {
    condition     = alltrue([for g in var.node_groups : alltrue([for t in g.taints : contains(["NO_SCHEDULE", "NO_EXECUTE", "PREFER_NO_SCHEDULE"], t.effect)])])
    error_message = "Taint effects are written NO_SCHEDULE, NO_EXECUTE or PREFER_NO_SCHEDULE (the EKS API spelling)."
  }

  validation {
    condition     = alltrue([for g in var.node_groups : contains(keys(g.labels), "node.kubernetes.io/pool")])
    error_message = "Every node group needs the label node.kubernetes.io/pool: workloads select their pool by it."
  }

  validation {
    condition     = alltrue([for g in var.node_groups : g.disk_gib >= 20 && g.disk_gib <= 16384])
    error_message = "disk_gib is the root volume size in GiB, 20 to 16384 (GPU AMIs need about 60)."
  }
}
