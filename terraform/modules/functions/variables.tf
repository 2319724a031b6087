variable "name_prefix" {
  description = "Prefix of the function names: functions are <name_prefix>-<function> (mlcp-<env>-...)."
  type        = string

  validation {
    condition     = can(regex("^mlcp-[a-z][a-z0-9-]{0,20}$", var.name_prefix))
    error_message = "name_prefix is mlcp-<env>, with env made of lower-case letters, digits or dashes (docs/contracts.md names the functions mlcp-<stage>-<name>)."
  }
}

variable "account_id" {
  description = "AWS account id (the only account whose data bucket may invoke the S3 handler)."
  type        = string
}

variable "package_path" {
  description = "Path of the zip that holds the Chalice app and its dependencies (one zip for every function)."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path must point at the deployment .zip built from functions/ (scripts/package_functions.sh writes build/lambda/mlcp-functions.zip)."
  }
}

variable "memory_mb" {
  description = "Memory of each function in MB (CPU grows with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_mb >= 128 && var.memory_mb <= 10240
    error_message = "Lambda memory is 128 to 10240 MB."
  }
}

variable "reserved_concurrency" {
  description = "Reserved concurrent executions per function: a cap that protects the cluster API and the account's pool."
  type        = number
  default     = 10

  validation {
    condition     = var.reserved_concurrency >= 1 && var.reserved_concurrency <= 1000
    error_message = "reserved_concurrency is 1 to 1000 per function."
  }
}

variable "environment" {
  description = "CONTROL_* settings shared by every function (docs/contracts.md); the dead-letter queue URL, the alert-token secret ARN, the API auth mode and the Ingress settings are added here."
  type        = map(string)

  validation {
    condition     = alltrue([for k, _ in var.environment : startswith(k, "CONTROL_")])
    error_message = "Only CONTROL_* settings are passed to the functions."
  }

  validation {
    condition     = length(setintersection(keys(var.environment), ["CONTROL_API_TOKEN", "CONTROL_API_AUTH"])) == 0
    error_message = "The API is authenticated by IAM in AWS (this module sets CONTROL_API_AUTH=iam); a bearer token (CONTROL_API_TOKEN) is for the embedded platform only."
  }
}

variable "ingress" {
  description = "The deployments' ALB, set by the rollout's Ingress: scheme (internal or internet-facing) and the ACM certificate ARN of its HTTPS listener (empty: HTTP only). Becomes CONTROL_INGRESS_SCHEME and CONTROL_INGRESS_CERTIFICATE_ARN."
  type = object({
    scheme          = optional(string, "internal")
    certificate_arn = optional(string, "")
  })
  default = {}

  validation {
    condition     = contains(["internal", "internet-facing"], var.ingress.scheme)
    error_message = "ingress.scheme is internal or internet-facing (the ALB's scheme annotation)."
  }

  validation {
    condition     = var.ingress.certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+$", var.ingress.certificate_arn))
    error_message = "ingress.certificate_arn is an ACM certificate ARN (arn:aws:acm:<region>:<account>:certificate/<id>) or empty for HTTP only."
  }

  validation {
    condition     = !(var.ingress.scheme == "internet-facing" && var.ingress.certificate_arn == "")
    error_message = "An internet-facing ALB needs ingress.certificate_arn: model endpoints are not served over plain HTTP on the internet."
  }
}

variable "vpc_id" {
  description = "VPC the functions run in (they reach the private EKS endpoint and Prometheus)."
  type        = string
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC (Prometheus is reached inside it)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets of the functions."
  type        = list(string)
}

variable "kms_key_arn" {
  description = "KMS key for the functions' environment, logs, queue, topic and secret."
  type        = string
}

variable "data_bucket" {
  description = "Name and ARN of the data bucket (datasets/ notifies on_dataset_uploaded)."
  type        = object({ id = string, arn = string })
}

variable "artifacts_bucket_arn" {
  description = "ARN of the artifacts bucket."
  type        = string
}

variable "registry_table_arn" {
  description = "ARN of the registry table."
  type        = string
}

variable "cluster_arn" {
  description = "ARN of the EKS cluster the functions drive."
  type        = string
}

variable "state_machine_arns" {
  description = "ARNs of the state machines the functions start and describe."
  type        = list(string)
}

variable "metrics_namespace" {
  description = "CloudWatch namespace the functions' metrics go to (Powertools Metrics)."
  type        = string
  default     = "mlcp"
}

variable "log_retention_days" {
  description = "Days to keep function and API logs."
  type        = number
  default     = 365
}

variable "manage_api_gateway_account" {
  description = "Set the region-wide API Gateway CloudWatch role (needed once per account and region for execution logs). false if another stack owns it."
  type        = bool
  default     = true
}

variable "checkpoint_file_system" {
  description = "The checkpoint EFS that stage_dataset mounts (at /mnt/checkpoints, as the training pods do): the access point's ARN, the file system's ARN and its security group."
  type = object({
    access_point_arn  = string
    file_system_arn   = string
    security_group_id = string
  })
}
