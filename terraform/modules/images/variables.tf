variable "name" {
  description = "Prefix of the repository names (for example mlcp-prod); repositories are <name>/training and <name>/inference."
  type        = string
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the images."
  type        = string
}

variable "keep_images" {
  description = "How many images each repository keeps (older ones expire)."
  type        = number
  default     = 50

  validation {
    condition     = var.keep_images >= 5 && var.keep_images <= 1000
    error_message = "Keep between 5 and 1000 images: rollbacks need the previous ones."
  }
}
