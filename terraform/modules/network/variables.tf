variable "name" {
  description = "Prefix of every resource name (for example mlcp-prod)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}$", var.name))
    error_message = "The name must start with a lower-case letter and hold 2 to 31 lower-case letters, digits or dashes."
  }
}

variable "cluster_name" {
  description = "EKS cluster that uses the subnets (for the kubernetes.io/cluster tag the load balancer controller reads)."
  type        = string
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC, a /16 to /20 block (for example 10.40.0.0/16)."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.vpc_cidr)) && tonumber(try(split("/", var.vpc_cidr)[1], 0)) >= 16 && tonumber(try(split("/", var.vpc_cidr)[1], 0)) <= 20
    error_message = "vpc_cidr must be an IPv4 CIDR block from /16 to /20, such as 10.40.0.0/16."
  }
}

variable "availability_zones" {
  description = "Availability zones to spread subnets over (2 to 4, all in the provider's region), for example [\"eu-west-1a\", \"eu-west-1b\", \"eu-west-1c\"]."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 4 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "Give 2 to 4 different availability zones (3 is the design's choice: EKS needs at least 2)."
  }

  validation {
    condition     = alltrue([for az in var.availability_zones : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9][a-z]$", az))])
    error_message = "Each availability zone is a name such as eu-west-1a (region followed by a letter)."
  }
}

variable "one_nat_gateway_per_az" {
  description = "true: one NAT gateway per zone (a zone failure keeps egress in the others). false: one shared NAT gateway (cheaper, a single point of failure for egress)."
  type        = bool
  default     = true
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints instead of the NAT gateways (short names such as ecr.api, sts, logs)."
  type        = set(string)
  default     = ["ecr.api", "ecr.dkr", "sts", "logs", "states", "sqs", "secretsmanager"]

  validation {
    condition     = alltrue([for s in var.interface_endpoints : can(regex("^[a-z0-9.-]+$", s))])
    error_message = "Interface endpoints are short service names such as ecr.api or sts, in lower case."
  }
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the flow log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep VPC flow logs."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "CloudWatch Logs accepts only 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653 days."
  }
}
