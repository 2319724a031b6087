variable "environment" {
  description = "Environment name; resources are named mlcp-<environment>-... (for example prod, staging)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,11}$", var.environment))
    error_message = "environment is 2 to 12 lower-case letters or digits, starting with a letter (it becomes part of many AWS names)."
  }
}

variable "region" {
  description = "AWS region of the platform (for example eu-west-1)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region is an AWS region name such as eu-west-1 or us-east-1."
  }
}

variable "account_id" {
  description = "AWS account the platform lives in; the provider refuses to touch any other."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id is the 12-digit AWS account number (for example 123456789012)."
  }
}

variable "availability_zones" {
  description = "Availability zones of the VPC (2 to 4, the design uses 3), for example [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 4
    error_message = "Give 2 to 4 availability zones (3 is the design's choice; EKS needs at least 2)."
  }
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC, /16 to /20."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr))
    error_message = "vpc_cidr must be an IPv4 CIDR block such as 10.40.0.0/16."
  }
}

variable "one_nat_gateway_per_az" {
  description = "One NAT gateway per zone (resilient) or one shared NAT gateway (cheaper)."
  type        = bool
  default     = true
}

variable "bucket_prefix" {
  description = "Start of the globally unique bucket names (<prefix>-data, -artifacts, -logs), for example acme-mlcp-prod."
  type        = string
}

variable "replication_region" {
  description = "Region of the disaster-recovery replicas (artifacts, datasets, checkpoint file system, registry); null for none."
  type        = string
  default     = null

  validation {
    condition     = var.replication_region == null || can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.replication_region))
    error_message = "replication_region is an AWS region name such as eu-central-1, or null."
  }
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version, 1.29 or newer."
  type        = string
  default     = "1.31"
}

variable "cluster_public_access_cidrs" {
  description = "Networks that may reach the EKS API from the internet (operators, CI); empty keeps the API private to the VPC."
  type        = list(string)
  default     = []
}

variable "cluster_admin_role_arns" {
  description = "IAM roles given cluster-admin on EKS (operators, CI)."
  type        = list(string)
  default     = []
}

variable "node_groups" {
  description = "EKS managed node groups (see modules/node_groups for the fields). The default is the design's three pools at example sizes."
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
  default = {
    gpu-training = {
      instance_types = ["g5.2xlarge", "g5.12xlarge"]
      min_size       = 0
      desired_size   = 0
      max_size       = 4
      disk_gib       = 200
      ami_type       = "AL2023_x86_64_NVIDIA"
      labels         = { "node.kubernetes.io/pool" = "gpu-training", "nvidia.com/gpu.present" = "true" }
      taints         = [{ key = "nvidia.com/gpu", value = "true", effect = "NO_SCHEDULE" }]
    }
    cpu-inference = {
      instance_types = ["m5.xlarge", "m5a.xlarge", "m5n.xlarge", "r5.large", "m6i.xlarge"]
      capacity_type  = "SPOT"
      min_size       = 2
      desired_size   = 2
      max_size       = 10
      labels         = { "node.kubernetes.io/pool" = "cpu-inference" }
      # Spot capacity kept for model servers; they tolerate it (control/manifests/serving.py).
      taints = [{ key = "node.kubernetes.io/pool", value = "cpu-inference", effect = "NO_SCHEDULE" }]
    }
    memory = {
      instance_types = ["r5.2xlarge", "r5.xlarge"]
      min_size       = 1
      desired_size   = 1
      max_size       = 4
      labels         = { "node.kubernetes.io/pool" = "memory" }
    }
  }

  validation {
    condition     = contains(keys(var.node_groups), "gpu-training") && contains(keys(var.node_groups), "cpu-inference")
    error_message = "node_groups must keep the gpu-training and cpu-inference pools: the training MPIJob and the model servers select them."
  }
}

variable "lambda_package_path" {
  description = "The Chalice app's deployment zip (one zip for every function), built by scripts/package_functions.sh: ../../../build/lambda/mlcp-functions.zip."
  type        = string
}

variable "statemachines_dir" {
  description = "Folder of training_pipeline.asl.json and rollout.asl.json; null means the repository's statemachines/."
  type        = string
  default     = null
}

variable "image_tag" {
  description = "Tag of the training and inference images in ECR (immutable tags: use the git commit)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag is a Docker tag (letters, digits, _ . -) and not 'latest': the ECR repositories are immutable and rollouts need a precise image."
  }
}

variable "code_version" {
  description = "Version of the control-plane code (git commit), recorded in the registry lineage (CONTROL_CODE_VERSION)."
  type        = string
}

variable "prometheus_url" {
  description = "URL of Prometheus inside the VPC that the functions query for rollout analysis (CONTROL_PROMETHEUS_URL), for example http://prometheus.internal.example:9090."
  type        = string

  validation {
    condition     = can(regex("^https?://[^\\s/]+", var.prometheus_url))
    error_message = "prometheus_url is an http(s) URL such as http://prometheus.mlcp.internal:9090."
  }
}

variable "ingress_scheme" {
  description = "Scheme of the ALB in front of the model deployments (CONTROL_INGRESS_SCHEME): internal (reached from the VPC) or internet-facing (needs ingress_certificate_arn)."
  type        = string
  default     = "internal"

  validation {
    condition     = contains(["internal", "internet-facing"], var.ingress_scheme)
    error_message = "ingress_scheme is internal or internet-facing."
  }
}

variable "ingress_certificate_arn" {
  description = "ACM certificate ARN of the deployments' ALB HTTPS listener (CONTROL_INGRESS_CERTIFICATE_ARN); empty serves HTTP only (internal scheme only)."
  type        = string
  default     = ""

  validation {
    condition     = var.ingress_certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$", var.ingress_certificate_arn))
    error_message = "ingress_certificate_arn is an ACM certificate ARN such as arn:aws:acm:eu-west-1:123456789012:certificate/<id>, or empty."
  }
}

variable "log_retention_days" {
  description = "Days to keep CloudWatch logs (functions, state machines, EKS control plane, flow logs)."
  type        = number
  default     = 365
}

variable "force_destroy" {
  description = "Allow terraform destroy to remove non-empty buckets and the registry (throw-away environments only)."
  type        = bool
  default     = false
}

variable "image_digests" {
  description = "Digests of the pushed images by name (training, inference), as the deploy pipeline passes them; an image without one is referenced by image_tag."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for name, digest in var.image_digests : contains(["training", "inference"], name) && can(regex("^sha256:[0-9a-f]{64}$", digest))])
    error_message = "image_digests maps training/inference to sha256:<64 hex>."
  }
}
