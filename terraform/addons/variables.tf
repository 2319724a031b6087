variable "region" {
  description = "AWS region of the platform."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region is an AWS region name such as eu-west-1."
  }
}

variable "platform_state" {
  description = "Where the platform environment's state lives (the same values as its backend.hcl): bucket, key, region."
  type = object({
    bucket = string
    key    = string
    region = string
  })
}

variable "prometheus_retention" {
  description = "How long Prometheus keeps samples (Prometheus duration, for example 15d)."
  type        = string
  default     = "15d"

  validation {
    condition     = can(regex("^[0-9]+(h|d|w|y)$", var.prometheus_retention))
    error_message = "prometheus_retention is a Prometheus duration such as 15d or 2w."
  }
}

variable "mpi_operator_chart" {
  description = "Path of the mpi-operator v0.8.0 chart (Kubeflow publishes manifests, not a Helm repository); null means the repository's terraform/charts/mpi-operator."
  type        = string
  default     = null
}
